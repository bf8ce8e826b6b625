//! An order's status and the stock it holds are committed together, and every api replica
//! forgets the catalogue answers a stock change makes stale: whoever sees an order's new
//! status then reads the stock it left, even through a long-lived catalogue cache.

use crate::helpers::{
    Shop, TestApp, assert_problem, last_step, order_of, place_command, spawn_app, spawn_app_with,
};
use common::domain::OrderStatus;
use common::messages::{PaymentFailed, PaymentSucceeded};
use common::money::{Currency, Money};
use serde_json::Value;
use uuid::Uuid;
use workers::dispatch::Incoming;

/// An api whose catalogue answers live a minute, so only an eviction makes them fresh; with
/// the workers running, expiring unpaid reservations after a second.
async fn shop_with_a_long_catalogue_cache() -> Shop {
    let app = spawn_app_with(&[("CATALOGUE_CACHE_TTL_MS", "60000")]).await;
    app.start_workers(app.env.config_with(&[
        ("RESERVATION_TTL_SECS", "1"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "100"),
    ]))
    .await;
    Shop::around(app).await
}

/// The product's stock as the public catalogue shows it (the detail and the first page).
async fn shown_stock(app: &TestApp, product: Uuid) -> (i64, i64) {
    let page: Value = app.get("/api/v1/products").await.json().await.unwrap();
    let listed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == product.to_string())
        .map_or(-1, |p| p["stock"].as_i64().unwrap());
    (app.products().shown_stock(product).await, listed)
}

/// The customer orders all 3 units of a new product; checks the catalogue shows 0 left.
async fn all_units_ordered(shop: &Shop) -> (Uuid, String) {
    let product = shop.products().create("Last three", 500, 3).await;
    assert_eq!(shown_stock(shop, product).await, (3, 3), "cached before");
    let order = shop.confirmed_order(product, 3).await;
    assert_eq!(
        shown_stock(shop, product).await,
        (0, 0),
        "the order took them"
    );
    (product, order)
}

/// Applies a payment of `amount` for the order by calling the payment handler directly.
async fn payment_applied_by_hand(app: &TestApp, order_id: Uuid, amount: i64, reference: &str) {
    let paid = workers::payments::succeeded(
        app.bus().worker_context(),
        vec![Incoming::new(
            PaymentSucceeded {
                order_id,
                amount: Money::new(amount).unwrap(),
                currency: Currency::new("USD").unwrap(),
                provider_reference: common::domain::Reference::new(reference).unwrap(),
            },
            "test",
        )],
    )
    .await;
    assert!(paid[0].is_ok(), "{paid:?}");
}

#[tokio::test]
async fn after_a_cancel_the_product_reads_its_stock_back_at_once() {
    let shop = shop_with_a_long_catalogue_cache().await;
    let (product, id) = all_units_ordered(&shop).await;

    let order = shop.orders().cancel_settled(&shop.customer, &id).await;

    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(shown_stock(&shop, product).await, (3, 3));
}

#[tokio::test]
async fn after_an_expiry_the_product_reads_its_stock_back_at_once() {
    let shop = shop_with_a_long_catalogue_cache().await;
    let (product, id) = all_units_ordered(&shop).await;

    let order = shop.order_in(&id, "CANCELLED").await;

    assert_eq!(last_step(&order)["reason"], "reservation_expired");
    assert_eq!(shown_stock(&shop, product).await, (3, 3));
}

#[tokio::test]
async fn after_a_failed_payment_the_product_reads_its_stock_back_at_once() {
    let shop = shop_with_a_long_catalogue_cache().await;
    let (product, id) = all_units_ordered(&shop).await;

    shop.bus()
        .publish(
            PaymentFailed {
                order_id: id.parse().unwrap(),
                amount: Money::new(1500).unwrap(),
                currency: Currency::new("USD").unwrap(),
                provider_reference: common::domain::Reference::new("card-declined-1").unwrap(),
                reason: Some(common::domain::Reason::new("card declined").unwrap()),
            },
            "test",
        )
        .await;

    let order = shop.order_in(&id, "CANCELLED").await;
    assert_eq!(last_step(&order)["reason"], "payment_failed: card declined");
    assert_eq!(shown_stock(&shop, product).await, (3, 3));
}

#[tokio::test]
async fn a_customers_cancel_that_arrives_after_the_payment_leaves_the_order_paid() {
    // No workers yet: the cancel is accepted on a CONFIRMED order, then the payment is
    // applied first, as if the payment consumer got there before the transition consumer.
    let shop = Shop::around(spawn_app().await).await;
    let product = shop.products().create("P", 500, 5).await;
    let order_id = Uuid::now_v7();
    let placed = workers::placing::place(
        shop.bus().worker_context(),
        vec![Incoming::new(
            place_command(order_id, shop.customer.id, product, 2),
            "test",
        )],
    )
    .await;
    assert!(placed[0].is_ok(), "{placed:?}");

    let res = shop.orders().cancel(&shop.customer, order_id, &[]).await;
    assert_eq!(res.status(), 202, "the api saw the order CONFIRMED");
    payment_applied_by_hand(&shop, order_id, 1000, "paid-first").await;

    // Now the order worker takes the customer's cancel, published with the statuses a
    // customer may cancel from.
    shop.start_workers(shop.env.config()).await;
    shop.bus().quiescent().await;
    let status: OrderStatus = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&shop.state.db)
        .await
        .unwrap();
    assert_eq!(
        status,
        OrderStatus::Paid,
        "a paid order is never cancelled by its customer"
    );
    assert_eq!(
        shop.products().stock_of(product).await,
        3,
        "its stock is still held"
    );
    let reasons = shop.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("is PAID, cannot move to CANCELLED"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_cancel_that_races_a_payment_through_the_api_answers_409_once_refused() {
    // With `Prefer: wait` the api waits for the outcome: a payment that lands first makes the
    // customer's cancel impossible, and the answer says so.
    let shop = Shop::around(spawn_app().await).await;
    let product = shop.products().create("P", 500, 5).await;
    shop.start_worker_kinds(shop.env.config(), &[workers::Kind::Inventory])
        .await;
    let id = shop.confirmed_order(product, 1).await;
    let order_id: Uuid = id.parse().unwrap();

    let cancel = shop
        .orders()
        .cancel(&shop.customer, &id, &[("prefer", "wait=10")]);
    let pay_then_start = async {
        // Once the cancel command is stored (the api saw the order CONFIRMED), the payment is
        // applied, before the order worker sees the cancel.
        let stream = shop.state.bus.namespace().name(common::nats::ORDERS_CMD);
        common::testing::eventually(
            std::time::Duration::from_secs(10),
            "the cancel command stored",
            || async {
                let mut stream = shop.state.bus.jetstream().get_stream(&stream).await.ok()?;
                (stream.info().await.ok()?.state.messages == 1).then_some(())
            },
        )
        .await;
        payment_applied_by_hand(&shop, order_id, 500, "race").await;
        shop.start_worker_kinds(shop.env.config(), &[workers::Kind::Orders])
            .await;
    };
    let (res, ()) = tokio::join!(cancel, pay_then_start);

    let body = assert_problem(res, 409).await;
    assert_eq!(body["current_status"], "PAID");
    assert_eq!(
        shop.products().stock_of(product).await,
        4,
        "its stock is still held"
    );
}

/// An order of 2 units at 500 by the customer, accepted by an api without workers (202).
async fn an_accepted_order(shop: &Shop) -> String {
    let product = shop.products().create("P", 500, 5).await;
    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(product, 2)]), &[])
        .await;
    assert_eq!(res.status(), 202);
    crate::helpers::id_of(&res.json().await.unwrap())
}

#[tokio::test]
async fn an_accepted_order_reads_pending_to_its_owner_only_until_it_is_recorded() {
    // No inventory worker: the order stays accepted, not recorded.
    let shop = Shop::around(spawn_app().await).await;
    let other = shop.create_user(common::domain::Role::Client).await;
    let id = an_accepted_order(&shop).await;

    let read = shop.orders().read(&shop.customer, &id).await;

    assert_eq!(read["status"], "PENDING");
    assert_eq!(read["total"], 1000);
    let path = format!("/api/v1/orders/{id}");
    assert_eq!(shop.get_as(&other, &path).await.status(), 404, "not yours");
    shop.start_workers(shop.env.config()).await;
    let recorded = shop
        .orders()
        .when(&shop.customer, &id, |o| o["status"] != "PENDING")
        .await;
    assert_eq!(recorded["status"], "CONFIRMED");
}

#[tokio::test]
async fn another_replica_shows_an_accepted_order_pending_from_its_command() {
    let shop = Shop::around(spawn_app().await).await;
    let replica = shop.replica(&[]).await;

    let id = an_accepted_order(&shop).await;

    let path = format!("/api/v1/orders/{id}");
    let seen = common::testing::eventually(
        std::time::Duration::from_secs(10),
        "the other replica shows it",
        || async {
            let res = replica.get_as(&shop.customer, &path).await;
            (res.status() == 200).then_some(res)
        },
    )
    .await;
    let read: Value = seen.json().await.unwrap();
    assert_eq!(read["status"], "PENDING");
}
