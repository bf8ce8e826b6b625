//! Payments from an outside payment system, published with a plain NATS client: they pay an
//! order once, a wrong or late one is flagged for refund, a failed one cancels the order.

use crate::helpers::{Shop, TestApp, last_step, place_command, spawn_app};
use common::testing::eventually;
use std::time::Duration;
use uuid::Uuid;

/// How many deliveries the order worker's payment-event consumer has made.
async fn payment_deliveries(app: &TestApp) -> Option<u64> {
    let bus = &app.state.bus;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = bus
        .jetstream()
        .get_consumer_from_stream(
            bus.namespace().name(workers::kinds::ORDERS_PAYMENT_EVENTS),
            bus.namespace().name(common::nats::EVENTS),
        )
        .await
        .ok()?;
    Some(consumer.info().await.ok()?.delivered.consumer_sequence)
}

#[tokio::test]
async fn a_payment_published_by_a_plain_nats_client_pays_the_order() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 1999, 10).await;
    let order = shop.confirmed_order(p, 2).await;

    shop.payments().succeeded(&order, 3998, "psp-001").await;

    let paid = shop.order_in(&order, "PAID").await;
    assert_eq!(last_step(&paid)["actor"], "system:payments");
    assert_eq!(last_step(&paid)["reason"], "payment psp-001");
    assert_eq!(
        shop.payments().outcome("psp-001").await.as_deref(),
        Some("applied")
    );
}

#[tokio::test]
async fn a_payment_the_provider_delivers_twice_pays_the_order_once() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 1999, 10).await;
    let order = shop.confirmed_order(p, 2).await;
    shop.payments().succeeded(&order, 3998, "psp-001").await;
    shop.order_in(&order, "PAID").await;

    shop.payments().succeeded(&order, 3998, "psp-001").await;
    shop.bus().quiescent().await;

    assert_eq!(shop.orders().transitions_to("PAID").await, 1);
}

#[tokio::test]
async fn a_wrong_amount_leaves_the_order_unpaid_and_is_flagged_for_refund() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 1000, 10).await;
    let order = shop.confirmed_order(p, 1).await;

    shop.payments().succeeded(&order, 999, "psp-short").await;
    shop.bus().quiescent().await;

    assert_eq!(
        shop.payments().outcome("psp-short").await.as_deref(),
        Some("refund_required")
    );
    assert_eq!(
        shop.orders().read(&shop.customer, &order).await["status"],
        "CONFIRMED"
    );
}

#[tokio::test]
async fn a_failed_payment_cancels_the_order_and_releases_its_stock() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 1000, 10).await;
    let order = shop.confirmed_order(p, 4).await;

    shop.payments().failed(&order, 4000, "psp-declined").await;

    let cancelled = shop.order_in(&order, "CANCELLED").await;
    assert_eq!(
        last_step(&cancelled)["reason"],
        "payment_failed: card declined"
    );
    shop.bus().quiescent().await;
    assert_eq!(shop.products().stock_of(p).await, 10);
}

#[tokio::test]
async fn a_payment_for_an_expired_order_is_recorded_for_refund_and_changes_nothing() {
    let shop = Shop::around(spawn_app().await).await;
    shop.start_workers(shop.env.config_with(&[
        ("RESERVATION_TTL_SECS", "1"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "100"),
    ]))
    .await;
    let p = shop.products().create("P", 1000, 10).await;
    let order = shop.confirmed_order(p, 1).await;
    shop.order_in(&order, "CANCELLED").await;

    shop.payments().succeeded(&order, 1000, "psp-late").await;
    shop.bus().quiescent().await;

    assert_eq!(
        shop.payments().outcome("psp-late").await.as_deref(),
        Some("refund_required")
    );
    assert_eq!(shop.products().stock_of(p).await, 10);
}

#[tokio::test]
async fn a_payment_that_arrives_before_the_confirmation_is_retried_until_it_applies() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 500, 10).await;
    // The payment is on the bus, and tried, before the order even exists. A first delivery
    // only says the worker took it (its handler may run once the order exists); a second one
    // says the first was refused.
    let order_id = Uuid::new_v4();
    shop.payments()
        .succeeded(&order_id.to_string(), 500, "psp-early")
        .await;
    eventually(
        Duration::from_secs(10),
        "the payment tried, refused and delivered again",
        || async { (payment_deliveries(&shop).await? >= 2).then_some(()) },
    )
    .await;

    shop.bus()
        .publish(place_command(order_id, shop.customer.id, p, 1), "c")
        .await;

    let paid = shop
        .orders()
        .when(&shop.customer, &order_id.to_string(), |o| {
            o["status"] == "PAID"
        })
        .await;
    assert_eq!(paid["status"], "PAID");
    let deliveries = payment_deliveries(&shop).await.unwrap();
    assert!(deliveries >= 2, "the payment was delivered more than once");
}
