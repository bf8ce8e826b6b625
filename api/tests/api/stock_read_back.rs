//! An order's status and the stock it holds are committed together, and every api replica
//! forgets the catalogue answers a stock change makes stale: whoever sees an order's new
//! status then reads the stock it left, even through a long-lived catalogue cache.

use crate::helpers::{TestApp, spawn_app_with};
use common::domain::{OrderStatus, Role};
use common::messages::{PaymentFailed, PaymentSucceeded};
use serde_json::{Value, json};
use uuid::Uuid;
use workers::dispatch::Incoming;

/// An api whose catalogue answers live a minute, so only an eviction makes them fresh; with
/// the workers running, expiring unpaid reservations after a second.
async fn system_with_a_long_catalogue_cache() -> TestApp {
    let app = spawn_app_with(&[("CATALOGUE_CACHE_TTL_MS", "60000")]).await;
    app.start_workers(app.env.config_with(&[
        ("RESERVATION_TTL_SECS", "1"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "100"),
    ]))
    .await;
    app
}

/// The product's stock as the public catalogue shows it (the detail and the first page).
async fn shown_stock(app: &TestApp, product: Uuid) -> (i64, i64) {
    let detail: Value = app
        .get(&format!("/api/v1/products/{product}"))
        .await
        .json()
        .await
        .unwrap();
    let page: Value = app.get("/api/v1/products").await.json().await.unwrap();
    let listed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == product.to_string())
        .map_or(-1, |p| p["stock"].as_i64().unwrap());
    (detail["stock"].as_i64().unwrap(), listed)
}

/// Places an order for all 3 units of a new product and checks the catalogue shows 0 left.
async fn all_units_ordered(app: &TestApp, client: &crate::helpers::TestUser) -> (Uuid, String) {
    let product = app.create_product("Last three", 500, 3).await;
    assert_eq!(shown_stock(app, product).await, (3, 3), "cached before");
    let order = app.place_settled(client, product, 3).await;
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(
        shown_stock(app, product).await,
        (0, 0),
        "the order took them"
    );
    (product, order["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn after_a_cancel_the_product_reads_its_stock_back_at_once() {
    let app = system_with_a_long_catalogue_cache().await;
    let client = app.create_user(Role::Client).await;
    let (product, id) = all_units_ordered(&app, &client).await;

    let res = app
        .post_empty_as(
            &client,
            &format!("/api/v1/orders/{id}/cancel"),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(shown_stock(&app, product).await, (3, 3));
}

#[tokio::test]
async fn after_an_expiry_the_product_reads_its_stock_back_at_once() {
    let app = system_with_a_long_catalogue_cache().await;
    let client = app.create_user(Role::Client).await;
    let (product, id) = all_units_ordered(&app, &client).await;

    let order = app
        .order_when(&client, &id, |o| o["status"] == "CANCELLED")
        .await;
    let last = order["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "reservation_expired");
    assert_eq!(shown_stock(&app, product).await, (3, 3));
}

#[tokio::test]
async fn after_a_failed_payment_the_product_reads_its_stock_back_at_once() {
    let app = system_with_a_long_catalogue_cache().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("Last three", 500, 3).await;
    let order = app.place_settled(&client, product, 3).await;
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown_stock(&app, product).await, (0, 0));

    app.state
        .bus
        .publish(
            PaymentFailed {
                order_id: id,
                amount: common::money::Money::new(1500).unwrap(),
                currency: common::money::Currency::new("USD").unwrap(),
                provider_reference: "card-declined-1".into(),
                reason: Some("card declined".into()),
            },
            "test",
        )
        .await
        .unwrap();
    let order = app
        .order_when(&client, &id.to_string(), |o| o["status"] == "CANCELLED")
        .await;
    let last = order["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "payment_failed: card declined");
    assert_eq!(shown_stock(&app, product).await, (3, 3));
}

#[tokio::test]
async fn a_customers_cancel_that_arrives_after_the_payment_leaves_the_order_paid() {
    // No workers yet: the cancel is accepted on a CONFIRMED order, then the payment is
    // applied first, as if the payment consumer got there before the transition consumer.
    let app = spawn_app_with(&[]).await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 500, 5).await;
    let ctx = workers::Context::new(
        app.state.db.clone(),
        app.state.bus.clone(),
        app.state.config.clone(),
    );
    let order_id = Uuid::now_v7();
    let placed = workers::placing::place(
        ctx.clone(),
        vec![Incoming::new(
            common::messages::PlaceOrder {
                order_id,
                user_id: client.id,
                shipping_address: None,
                items: vec![common::messages::LineRequest {
                    product_id: product,
                    quantity: 2,
                }],
            },
            "test",
        )],
    )
    .await;
    assert!(placed[0].is_ok(), "{placed:?}");

    let res = app
        .post_empty_as(&client, &format!("/api/v1/orders/{order_id}/cancel"), &[])
        .await;
    assert_eq!(res.status(), 202, "the api saw the order CONFIRMED");

    let paid = workers::payments::succeeded(
        ctx,
        vec![Incoming::new(
            PaymentSucceeded {
                order_id,
                amount: common::money::Money::new(1000).unwrap(),
                currency: common::money::Currency::new("USD").unwrap(),
                provider_reference: "paid-first".into(),
            },
            "test",
        )],
    )
    .await;
    assert!(paid[0].is_ok(), "{paid:?}");

    // Now the order worker takes the customer's cancel, published with the statuses a
    // customer may cancel from.
    app.start_workers(app.env.config()).await;
    app.quiescent().await;
    let status: OrderStatus = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        status,
        OrderStatus::Paid,
        "a paid order is never cancelled by its customer"
    );
    assert_eq!(app.stock_of(product).await, 3, "its stock is still held");
    let reasons = app.dead_letter_reasons().await;
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
    let app = spawn_app_with(&[]).await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 500, 5).await;
    app.start_worker_kinds(app.env.config(), &[workers::Kind::Inventory])
        .await;
    let order = app.place_settled(&client, product, 1).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let order_id: Uuid = id.parse().unwrap();

    let cancel = {
        let app = &app;
        let client = &client;
        let id = &id;
        async move {
            app.post_empty_as(
                client,
                &format!("/api/v1/orders/{id}/cancel"),
                &[("prefer", "wait=10")],
            )
            .await
        }
    };
    let pay_then_start = async {
        // Once the cancel command is stored (the api saw the order CONFIRMED), the payment is
        // applied, before the order worker sees the cancel.
        let stream = app.state.bus.namespace().name(common::nats::ORDERS_CMD);
        common::testing::eventually(
            std::time::Duration::from_secs(10),
            "the cancel command stored",
            || async {
                let mut stream = app.state.bus.jetstream().get_stream(&stream).await.ok()?;
                (stream.info().await.ok()?.state.messages == 1).then_some(())
            },
        )
        .await;
        let ctx = workers::Context::new(
            app.state.db.clone(),
            app.state.bus.clone(),
            app.state.config.clone(),
        );
        let paid = workers::payments::succeeded(
            ctx,
            vec![Incoming::new(
                PaymentSucceeded {
                    order_id,
                    amount: common::money::Money::new(500).unwrap(),
                    currency: common::money::Currency::new("USD").unwrap(),
                    provider_reference: "race".into(),
                },
                "test",
            )],
        )
        .await;
        assert!(paid[0].is_ok(), "{paid:?}");
        app.start_worker_kinds(app.env.config(), &[workers::Kind::Orders])
            .await;
    };
    let (res, ()) = tokio::join!(cancel, pay_then_start);
    let body = crate::helpers::assert_problem(res, 409).await;
    assert_eq!(body["current_status"], "PAID");
    assert_eq!(app.stock_of(product).await, 4, "its stock is still held");
}

#[tokio::test]
async fn an_accepted_order_reads_pending_until_it_is_recorded() {
    // No inventory worker: the order stays accepted, not recorded.
    let app = spawn_app_with(&[]).await;
    let client = app.create_user(Role::Client).await;
    let other = app.create_user(Role::Client).await;
    let product = app.create_product("P", 500, 5).await;
    let replica = app.replica(&[]).await;
    let res = app
        .post_as(
            &client,
            "/api/v1/orders",
            &json!({"items": [{"product_id": product, "quantity": 2}]}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    let path = format!("/api/v1/orders/{}", accepted["id"].as_str().unwrap());

    let read: Value = app.get_as(&client, &path).await.json().await.unwrap();
    assert_eq!(read["status"], "PENDING");
    assert_eq!(read["total"], 1000);
    assert_eq!(app.get_as(&other, &path).await.status(), 404, "not yours");

    // Another replica learns of it from the command itself.
    let seen = common::testing::eventually(
        std::time::Duration::from_secs(10),
        "the other replica shows it",
        || async {
            let res = replica.get_as(&client, &path).await;
            (res.status() == 200).then_some(res)
        },
    )
    .await;
    let read: Value = seen.json().await.unwrap();
    assert_eq!(read["status"], "PENDING");

    app.start_workers(app.env.config()).await;
    let recorded = app
        .order_when(&client, accepted["id"].as_str().unwrap(), |o| {
            o["status"] != "PENDING"
        })
        .await;
    assert_eq!(recorded["status"], "CONFIRMED");
}
