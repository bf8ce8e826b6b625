//! Live order tracking over Server-Sent Events, read by a real SSE client (`eventsource-stream`
//! over a streaming HTTP response) against the api, the workers, PostgreSQL and JetStream.

use crate::helpers::{
    PATIENCE, Shop, TestApp, TestUser, assert_problem, entry_id, open, order_of, request, spawn_app,
};
use common::domain::Role;
use futures::StreamExt;
use serde_json::Value;

/// A lamp ordered by `customer` and confirmed; returns the order's id.
async fn lamp_ordered(app: &TestApp, customer: &TestUser) -> String {
    let product = app.products().create("Lamp", 1500, 10).await;
    let order = app.orders().place_settled(customer, product, 1).await;
    assert_eq!(order["status"], "CONFIRMED");
    crate::helpers::id_of(&order)
}

#[tokio::test]
async fn a_customer_follows_an_order_from_placement_to_delivered() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let order = lamp_ordered(app, customer).await;

    let mut sse = open(
        &app.address,
        customer,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    let (opening, current) = sse.next_of("order").await;
    assert_eq!(current["id"], order.as_str());
    assert_eq!(current["status"], "CONFIRMED");
    let placed: Vec<&str> = current["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(placed, ["CONFIRMED"], "recorded once, with its stock");
    let mut last = entry_id(&opening);

    for (from, to) in [
        ("CONFIRMED", "PAID"),
        ("PAID", "SHIPPED"),
        ("SHIPPED", "DELIVERED"),
    ] {
        app.orders().move_through(admin, &order, &[to]).await;
        let (event, change) = sse.next_of("status_changed").await;
        assert_eq!(change["order_id"], order.as_str());
        assert_eq!(
            (change["from"].as_str(), change["to"].as_str()),
            (Some(from), Some(to))
        );
        // A customer sees the ADMIN as staff, never the account's id.
        assert_eq!(change["actor"], "staff");
        assert!(entry_id(&event) > last, "ids grow: {event:?}");
        assert_eq!(change["id"], entry_id(&event));
        last = entry_id(&event);
    }
    assert!(
        sse.next_or_end().await.is_none(),
        "the stream ends after DELIVERED"
    );
}

#[tokio::test]
async fn a_stream_resumed_with_last_event_id_replays_what_was_missed_while_disconnected() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let order = lamp_ordered(app, customer).await;
    let path = format!("/api/v1/orders/{order}/events");

    let mut sse = open(&app.address, customer, &path, None).await;
    let (opening, _) = sse.next_of("order").await;
    drop(sse);
    app.orders().move_through(admin, &order, &["PAID"]).await;
    app.orders().move_through(admin, &order, &["SHIPPED"]).await;

    // Through another replica: the missed entries come from PostgreSQL.
    let other = app.replica(&[]).await;
    let mut sse = open(&other.address, customer, &path, Some(&opening.id)).await;
    let (paid, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "PAID");
    assert!(entry_id(&paid) > entry_id(&opening));
    let (shipped, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "SHIPPED");
    assert!(entry_id(&shipped) > entry_id(&paid));

    // Then live again.
    app.orders()
        .move_through(admin, &order, &["DELIVERED"])
        .await;
    let (_, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "DELIVERED");
    assert!(sse.next_or_end().await.is_none());
}

#[tokio::test]
async fn a_stream_opened_on_one_replica_sees_a_change_made_through_another() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let order = lamp_ordered(app, customer).await;
    let other = app.replica(&[]).await;

    let mut sse = open(
        &other.address,
        customer,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    sse.next_of("order").await;
    app.orders().move_through(admin, &order, &["PAID"]).await;
    let (_, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "PAID");
}

#[tokio::test]
async fn resuming_after_the_final_change_is_answered_204_so_browsers_stop_reconnecting() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let order = lamp_ordered(app, customer).await;
    app.orders()
        .move_through(admin, &order, &["CANCELLED"])
        .await;
    let path = format!("/api/v1/orders/{order}/events");

    let mut sse = open(&app.address, customer, &path, None).await;
    let (last, current) = sse.next_of("order").await;
    assert_eq!(current["status"], "CANCELLED");
    assert!(
        sse.next_or_end().await.is_none(),
        "a final order's stream ends at once"
    );
    let res = request(&app.address, customer, &path, Some(&last.id)).await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn another_customers_order_cannot_be_followed() {
    let shop = Shop::open().await;
    let (app, customer) = (&shop, &shop.customer);
    let stranger = app.create_user(Role::Client).await;
    let order = lamp_ordered(app, customer).await;
    let res = request(
        &app.address,
        &stranger,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    assert_problem(res, 404).await;
    let res = reqwest::get(app.url(&format!("/api/v1/orders/{order}/events")))
        .await
        .unwrap();
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_bad_request() {
    let shop = Shop::open().await;
    let (app, customer) = (&shop, &shop.customer);
    let order = lamp_ordered(app, customer).await;
    let res = request(
        &app.address,
        customer,
        &format!("/api/v1/orders/{order}/events"),
        Some("yesterday"),
    )
    .await;
    assert_problem(res, 400).await;
}

#[tokio::test]
async fn the_stream_of_all_orders_carries_only_the_callers_own_orders_to_a_customer() {
    let shop = Shop::open().await;
    let (app, customer) = (&shop, &shop.customer);
    let stranger = app.create_user(Role::Client).await;
    let mut sse = open(&app.address, customer, "/api/v1/orders/events", None).await;

    // Someone else's order first: had it reached this stream, it would come first.
    let theirs = lamp_ordered(app, &stranger).await;
    let mine = lamp_ordered(app, customer).await;
    loop {
        let (_, change) = sse.next_of("status_changed").await;
        assert_ne!(change["order_id"], theirs.as_str());
        assert_eq!(change["order_id"], mine.as_str());
        if change["to"] == "CONFIRMED" {
            break;
        }
    }
}

#[tokio::test]
async fn an_admin_follows_every_order_filtered_by_status() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let mut sse = open(
        &app.address,
        admin,
        "/api/v1/orders/events?status=PAID",
        None,
    )
    .await;
    let order = lamp_ordered(app, customer).await;
    app.orders().move_through(admin, &order, &["PAID"]).await;
    let (_, change) = sse.next_of("status_changed").await;
    assert_eq!(change["order_id"], order.as_str());
    assert_eq!(
        change["to"], "PAID",
        "PENDING and CONFIRMED were filtered out"
    );
}

#[tokio::test]
async fn the_stream_of_all_orders_resumes_from_last_event_id() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let order = lamp_ordered(app, customer).await;
    let confirmed_entry: i64 = sqlx::query_scalar(
        "SELECT id FROM order_events WHERE order_id = $1::uuid AND to_status = 'CONFIRMED'",
    )
    .bind(&order)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    app.orders().move_through(admin, &order, &["PAID"]).await;

    let mut sse = open(
        &app.address,
        customer,
        "/api/v1/orders/events",
        Some(&confirmed_entry.to_string()),
    )
    .await;
    let (event, change) = sse.next_of("status_changed").await;
    assert_eq!(
        (change["order_id"].as_str(), change["to"].as_str()),
        (Some(order.as_str()), Some("PAID"))
    );
    assert!(entry_id(&event) > confirmed_entry);
}

#[tokio::test]
async fn a_stream_opened_before_the_order_is_recorded_starts_pending_and_hears_the_outcome() {
    // No workers yet: the order is accepted, not recorded.
    let shop = Shop::around(spawn_app().await).await;
    let (app, customer) = (&shop, &shop.customer);
    let product = app.products().create("Lamp", 1500, 10).await;
    let res = app
        .orders()
        .place(customer, &order_of(&[(product, 1)]), &[])
        .await;
    assert_eq!(res.status(), 202);
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap();

    let mut sse = open(
        &app.address,
        customer,
        &format!("/api/v1/orders/{id}/events"),
        None,
    )
    .await;
    let (_, opening) = sse.next_of("order").await;
    assert_eq!(opening["status"], "PENDING");

    app.start_workers(app.env.config()).await;
    let (_, recorded) = sse.next_of("status_changed").await;
    assert_eq!(recorded["to"], "CONFIRMED");
    assert_eq!(recorded["from"], Value::Null);
}

#[tokio::test]
async fn a_resumed_stream_of_all_orders_never_sends_a_change_at_or_before_last_event_id() {
    let shop = Shop::open().await;
    let (app, customer, admin) = (&shop, &shop.customer, &shop.admin);
    let mut statuses = app.bus().status_events().await;
    let order = lamp_ordered(app, customer).await;
    app.orders().move_through(admin, &order, &["PAID"]).await;
    let paid = tokio::time::timeout(PATIENCE, async {
        loop {
            let message = statuses.next().await.expect("subscribed");
            let envelope: Value = serde_json::from_slice(&message.payload).unwrap();
            if envelope["data"]["order_id"] == order.as_str() && envelope["data"]["to"] == "PAID" {
                return (message, envelope["data"]["entry_id"].as_i64().unwrap());
            }
        }
    })
    .await
    .expect("the PAID event");
    let (message, paid_entry) = paid;

    // Resumed from the PAID entry, with nothing after it to replay; then the PAID change is
    // heard again, as a replica hears one published late.
    let resume = paid_entry.to_string();
    let mut sse = open(
        &app.address,
        customer,
        "/api/v1/orders/events",
        Some(&resume),
    )
    .await;
    app.state
        .nats
        .publish_with_headers(
            message.subject,
            message.headers.unwrap_or_default(),
            message.payload,
        )
        .await
        .unwrap();
    app.orders().move_through(admin, &order, &["SHIPPED"]).await;
    let (event, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "SHIPPED", "{change}");
    assert!(entry_id(&event) > paid_entry);
}
