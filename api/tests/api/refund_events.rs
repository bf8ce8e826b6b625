//! Refund changes on the order event streams (Server-Sent Events): heard live, and replayed from
//! the timeline with `Last-Event-ID`, in order with the status changes. The payment system is a
//! plain NATS client (see `refunds`).

use crate::helpers::{PaidShop, Sse, entry_id, id_of, open, request};
use serde_json::{Value, json};

/// The reason every refund here is asked for.
const BROKEN: &str = "one mug arrived broken";

/// The next event, which must be a `refund_changed` of `refund` into `status`, with an id
/// above `after` that is also its data's.
async fn next_refund_change(sse: &mut Sse, refund: &str, status: &str, after: i64) -> (i64, Value) {
    let (event, change) = sse.next_of("refund_changed").await;
    assert_eq!(change["refund_id"], refund, "{change}");
    assert_eq!(change["refund_status"], status, "{change}");
    assert!(entry_id(&event) > after, "ids grow: {event:?}");
    assert_eq!(change["id"], entry_id(&event));
    (entry_id(&event), change)
}

#[tokio::test]
async fn a_refund_requested_and_answered_by_the_payment_system_appears_live_on_open_streams() {
    let paid = PaidShop::open("psp-pay-live").await;
    let (app, psp, client, admin, order) =
        (&paid, &paid.psp, &paid.customer, &paid.admin, &paid.order);
    let mut one = open(
        &app.address,
        client,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    let (opening, _) = one.next_of("order").await;
    // From the order's latest entry: opened without `Last-Event-ID`, it could also carry the
    // payment, committed before it opened but heard live after.
    let all_path = "/api/v1/orders/events";
    let mut all = open(&app.address, client, all_path, Some(&opening.id)).await;

    let asked = paid.ask_refund("live-1", 500, BROKEN).await;
    let refund_id = asked["id"].as_str().unwrap();
    let (requested, change) =
        next_refund_change(&mut one, refund_id, "REQUESTED", entry_id(&opening)).await;
    assert_eq!(change["order_id"], order.as_str());
    assert_eq!(change["amount"], 500);
    assert_eq!(change["currency"], "USD");
    assert_eq!(change["reason"], BROKEN);
    // A customer sees the ADMIN as staff, never the account's id.
    assert_eq!(change["actor"], "staff");
    assert!(!change.to_string().contains(&admin.id.to_string()));
    assert_eq!(
        (
            &change["payment_status"],
            &change["amount_paid"],
            &change["amount_refunded"]
        ),
        (&json!("PAID"), &json!(1250), &json!(0))
    );

    let (command, _) = psp.next_command().await;
    psp.refunded(&command, "psp-refund-live").await;
    let (succeeded, change) = next_refund_change(&mut one, refund_id, "SUCCEEDED", requested).await;
    assert_eq!(change["actor"], "system:payments");
    assert_eq!(
        (
            &change["payment_status"],
            &change["amount_paid"],
            &change["amount_refunded"]
        ),
        (&json!("PARTIALLY_REFUNDED"), &json!(1250), &json!(500))
    );

    // The customer's stream of every order carries the same two changes, with the same ids.
    let (id, _) = next_refund_change(&mut all, refund_id, "REQUESTED", 0).await;
    assert_eq!(id, requested);
    let (id, _) = next_refund_change(&mut all, refund_id, "SUCCEEDED", requested).await;
    assert_eq!(id, succeeded);
}

#[tokio::test]
async fn a_stream_resumed_from_before_a_refund_replays_its_changes_in_order_with_status_changes() {
    let paid = PaidShop::open("psp-pay-resume").await;
    let (app, psp, client, admin, order) =
        (&paid, &paid.psp, &paid.customer, &paid.admin, &paid.order);
    let path = format!("/api/v1/orders/{order}/events");
    let mut sse = open(&app.address, client, &path, None).await;
    let (opening, _) = sse.next_of("order").await;
    drop(sse);

    // While disconnected: a refund that fails, one that succeeds, and a status change.
    let failing = paid.ask_refund("resume-1", 300, BROKEN).await;
    let (command, _) = psp.next_command().await;
    psp.refund_failed(&command, "psp-refund-resume-1").await;
    app.orders()
        .when(client, order, |o| o["refunds"][0]["status"] == "FAILED")
        .await;
    let given = paid.ask_refund("resume-2", 1250, BROKEN).await;
    let (command, _) = psp.next_command().await;
    psp.refunded(&command, "psp-refund-resume-2").await;
    app.orders()
        .when(client, order, |o| o["payment_status"] == "REFUNDED")
        .await;
    app.orders().move_through(admin, order, &["SHIPPED"]).await;

    // Through another replica, on the order's stream and on the stream of every order: the
    // missed entries of both kinds, in the order they were made, from PostgreSQL.
    let other = app.replica(&[]).await;
    for path in [path.as_str(), "/api/v1/orders/events"] {
        let mut sse = open(&other.address, client, path, Some(&opening.id)).await;
        let failing_id = failing["id"].as_str().unwrap();
        let given_id = given["id"].as_str().unwrap();
        let (id, change) =
            next_refund_change(&mut sse, failing_id, "REQUESTED", entry_id(&opening)).await;
        assert_eq!(change["amount"], 300);
        assert!(
            change.get("payment_status").is_none(),
            "not replayed: {change}"
        );
        let (id, change) = next_refund_change(&mut sse, failing_id, "FAILED", id).await;
        assert_eq!(change["reason"], "card closed");
        assert_eq!(change["actor"], "system:payments");
        let (id, _) = next_refund_change(&mut sse, given_id, "REQUESTED", id).await;
        let (id, _) = next_refund_change(&mut sse, given_id, "SUCCEEDED", id).await;
        let (event, change) = sse.next_of("status_changed").await;
        assert_eq!(change["to"], "SHIPPED");
        assert!(entry_id(&event) > id, "{event:?}");
    }

    // Filtered by status, the stream of every order leaves refund changes out.
    let mut shipped = open(
        &other.address,
        client,
        "/api/v1/orders/events?status=SHIPPED",
        Some(&opening.id),
    )
    .await;
    let (_, change) = shipped.next_of("status_changed").await;
    assert_eq!(change["to"], "SHIPPED");
}

#[tokio::test]
async fn a_cancelled_paid_orders_stream_ends_once_its_refund_is_answered() {
    let paid = PaidShop::open("psp-pay-cancel").await;
    let (app, psp, client, admin, order) =
        (&paid, &paid.psp, &paid.customer, &paid.admin, &paid.order);
    let path = format!("/api/v1/orders/{order}/events");
    let mut sse = open(&app.address, client, &path, None).await;
    let (opening, _) = sse.next_of("order").await;

    let cancelled = app.orders().cancel_settled(admin, order).await;
    let refund_id = &id_of(&cancelled["refunds"][0]);
    let (event, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "CANCELLED");
    assert!(entry_id(&event) > entry_id(&opening));
    // The order is final, but its refund waits for the payment system: the stream goes on.
    let (requested, change) =
        next_refund_change(&mut sse, refund_id, "REQUESTED", entry_id(&event)).await;
    assert_eq!(change["amount"], 1250);

    // Resumed meanwhile, it is not over either.
    let mut resumed = open(&app.address, client, &path, Some(&requested.to_string())).await;

    let (command, _) = psp.next_command().await;
    psp.refunded(&command, "psp-refund-cancel").await;
    let (last, change) = next_refund_change(&mut sse, refund_id, "SUCCEEDED", requested).await;
    // Heard live, the change carries the order's money; when the answer is committed before the
    // stream looks again, the stream settles from the timeline, which does not.
    assert!(
        change["payment_status"].is_null() || change["payment_status"] == "REFUNDED",
        "{change}"
    );
    assert!(
        sse.next_or_end().await.is_none(),
        "ends once nothing is pending"
    );
    let (id, _) = next_refund_change(&mut resumed, refund_id, "SUCCEEDED", requested).await;
    assert_eq!(id, last);
    assert!(resumed.next_or_end().await.is_none());

    let res = request(&app.address, client, &path, Some(&last.to_string())).await;
    assert_eq!(res.status(), 204);
}
