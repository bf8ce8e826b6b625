//! A replica hears order changes only while something on it needs them: an event stream, a
//! request waiting for an outcome, an order it accepted and not recorded yet. One serving none
//! of them holds no subscription to them, so it spends nothing on the orders placed through the
//! others; it subscribes again, before going on, as soon as something needs them.

use crate::helpers::{PATIENCE, Shop, TestUser, id_of, open, order_of};
use common::testing::eventually;
use serde_json::Value;
use uuid::Uuid;

/// One unit of `product` ordered by `customer` through the replica at `base`, with `Prefer`
/// if given: the answer's status and body.
async fn place_on(
    base: &str,
    customer: &TestUser,
    product: Uuid,
    prefer: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&customer.token)
        .json(&order_of(&[(product, 1)]));
    if let Some(prefer) = prefer {
        req = req.header("prefer", prefer);
    }
    let res = req.send().await.expect("request");
    (res.status().as_u16(), res.json().await.expect("json"))
}

#[tokio::test]
async fn a_replica_hears_order_changes_only_while_something_on_it_needs_them() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let other = app.replica(&[("ORDER_EVENTS_IDLE_SECS", "1")]).await;
    let lamp = app.products().create("Lamp", 1500, 10).await;
    let order = id_of(&app.orders().place_settled(customer, lamp, 1).await);
    assert!(
        !other.state.watch.hearing(),
        "nothing on the other replica needs the changes of an order placed here"
    );

    // A stream opened there hears a change made here.
    let mut all = open(&other.address, customer, "/api/v1/orders/events", None).await;
    assert!(other.state.watch.hearing());
    app.orders().move_through(admin, &order, &["PAID"]).await;
    let (_, change) = all.next_of("status_changed").await;
    assert_eq!(
        (change["order_id"].as_str(), change["to"].as_str()),
        (Some(order.as_str()), Some("PAID"))
    );

    // Closed, and nothing else there needs the changes: it unsubscribes.
    drop(all);
    eventually(PATIENCE, "the other replica to stop hearing", || async {
        (!other.state.watch.hearing()).then_some(())
    })
    .await;

    // A placement waiting there subscribes again before its command is published, and hears
    // its outcome.
    let (status, placed) = place_on(&other.address, customer, lamp, Some("wait=5")).await;
    assert_eq!(
        (status, placed["status"].as_str()),
        (201, Some("CONFIRMED"))
    );
    assert!(other.state.watch.hearing());

    // So does an order accepted there without waiting: the replica hears it recorded, and
    // forgets it.
    eventually(PATIENCE, "the other replica to stop hearing", || async {
        (!other.state.watch.hearing()).then_some(())
    })
    .await;
    let (status, accepted) = place_on(&other.address, customer, lamp, None).await;
    assert_eq!(status, 202);
    let accepted = id_of(&accepted);
    assert!(other.state.watch.hearing());
    let id = accepted.parse().unwrap();
    eventually(
        PATIENCE,
        "the accepted order forgotten once recorded",
        || async { other.state.accepted.get(id).is_none().then_some(()) },
    )
    .await;
}
