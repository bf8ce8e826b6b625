//! Exactly-once effects under at-least-once delivery, rule by rule (docs/architecture.md,
//! "Delivery rules"): redelivered commands and re-run handlers change nothing twice.

use crate::helpers::{Shop, TestApp, place_command, spawn_app, transition_command};
use common::domain::OrderStatus;
use common::testing::eventually;
use std::time::Duration;
use uuid::Uuid;
use workers::dispatch::Incoming;

/// `message` as a handler receives it.
pub(crate) fn incoming<M>(message: M) -> Incoming<M> {
    Incoming::new(message, "test-correlation")
}

/// What the inventory worker's consumer of place commands has delivered and has pending.
pub(crate) async fn place_consumer(app: &TestApp) -> Option<async_nats::jetstream::consumer::Info> {
    let bus = &app.state.bus;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = bus
        .jetstream()
        .get_consumer_from_stream(
            bus.namespace().name(workers::kinds::INVENTORY_PLACE),
            bus.namespace().name(common::nats::ORDERS_CMD),
        )
        .await
        .ok()?;
    consumer.info().await.ok().cloned()
}

#[tokio::test]
async fn the_same_place_command_delivered_twice_creates_one_order_and_one_reservation() {
    let shop = Shop::open().await;
    let product = shop.products().create("P", 100, 10).await;
    let order_id = Uuid::now_v7();
    let command = place_command(order_id, shop.customer.id, product, 3);

    // Two copies with different message ids get past the server's duplicate check, as a
    // redelivery would.
    shop.bus().publish_copy(command.clone(), "copy-a").await;
    shop.bus().publish_copy(command, "copy-b").await;

    let order = shop
        .orders()
        .when(&shop.customer, &order_id.to_string(), |o| {
            o["status"] != "PENDING"
        })
        .await;
    assert_eq!(order["status"], "CONFIRMED");
    // Let the second copy be processed too before counting.
    eventually(Duration::from_secs(20), "both copies consumed", || async {
        let info = place_consumer(&shop).await?;
        (info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence >= 2)
            .then_some(())
    })
    .await;
    assert_eq!(shop.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(shop.count("SELECT count(*) FROM reservations").await, 1);
    assert_eq!(shop.products().stock_of(product).await, 7);
    assert_eq!(shop.orders().transitions_to("CONFIRMED").await, 1);
}

/// An api without workers, its customer, and a product of stock 10 to drive handlers with.
async fn handlers_by_hand() -> (Shop, Uuid) {
    let shop = Shop::around(spawn_app().await).await;
    let product = shop.products().create("P", 100, 10).await;
    (shop, product)
}

/// Runs the place handler on `command`, which must succeed.
async fn place_by_hand(app: &TestApp, command: common::messages::PlaceOrder) {
    let results =
        workers::placing::place(app.bus().worker_context(), vec![incoming(command)]).await;
    assert!(results[0].is_ok(), "{results:?}");
}

#[tokio::test]
async fn a_place_handler_rerun_after_a_crash_between_commit_and_ack_changes_nothing_twice() {
    // No workers running: the handlers are driven by hand, exactly as a redelivery drives them.
    let (shop, product) = handlers_by_hand().await;
    let order_id = Uuid::now_v7();

    for _ in 0..2 {
        place_by_hand(&shop, place_command(order_id, shop.customer.id, product, 4)).await;
    }

    assert_eq!(shop.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(shop.count("SELECT count(*) FROM order_items").await, 1);
    assert_eq!(shop.count("SELECT count(*) FROM reservations").await, 1);
    assert_eq!(shop.products().stock_of(product).await, 6, "reserved once");
}

#[tokio::test]
async fn a_cancel_handler_rerun_after_a_crash_between_commit_and_ack_changes_nothing_twice() {
    let (shop, product) = handlers_by_hand().await;
    let order_id = Uuid::now_v7();
    place_by_hand(&shop, place_command(order_id, shop.customer.id, product, 4)).await;

    for _ in 0..2 {
        let cancel = incoming(transition_command(order_id, OrderStatus::Cancelled));
        let results =
            workers::transitions::transition(shop.bus().worker_context(), vec![cancel]).await;
        assert!(results[0].is_ok(), "{results:?}");
    }

    assert_eq!(shop.products().stock_of(product).await, 10, "released once");
    assert_eq!(
        shop.count("SELECT count(*) FROM order_events").await,
        2,
        "recorded and cancelled once each"
    );
}

#[tokio::test]
async fn a_publish_retried_inside_the_duplicate_window_is_dropped_by_the_server() {
    let shop = Shop::open().await;
    let product = shop.products().create("P", 100, 10).await;
    let order_id = Uuid::now_v7();
    let command = place_command(order_id, shop.customer.id, product, 1);

    let first = shop.bus().publish(command.clone(), "c").await;
    let retry = shop.bus().publish(command, "c").await;

    assert!(!first.duplicate);
    assert!(
        retry.duplicate,
        "the retried publish is recognised as a duplicate"
    );
    assert_eq!(retry.sequence, first.sequence);
    shop.orders()
        .when(&shop.customer, &order_id.to_string(), |o| {
            o["status"] == "CONFIRMED"
        })
        .await;
    assert_eq!(shop.products().stock_of(product).await, 9);
}

#[tokio::test]
async fn a_place_command_reusing_an_order_id_with_other_lines_is_dead_lettered() {
    let shop = Shop::open().await;
    let product = shop.products().create("P", 100, 10).await;
    let order_id = Uuid::now_v7();
    shop.bus()
        .publish(place_command(order_id, shop.customer.id, product, 1), "c")
        .await;
    shop.orders()
        .when(&shop.customer, &order_id.to_string(), |o| {
            o["status"] == "CONFIRMED"
        })
        .await;

    shop.bus()
        .publish_copy(
            place_command(order_id, shop.customer.id, product, 5),
            "impostor",
        )
        .await;

    let reasons = eventually(Duration::from_secs(20), "a dead letter", || async {
        let reasons = shop.bus().dead_letter_reasons().await;
        (!reasons.is_empty()).then_some(reasons)
    })
    .await;
    assert!(
        reasons[0].contains("already used by a different order"),
        "{reasons:?}"
    );
    assert_eq!(shop.products().stock_of(product).await, 9);
}

#[tokio::test]
async fn copies_of_a_place_command_received_together_record_one_order_and_share_the_outcome() {
    let (shop, product) = handlers_by_hand().await;
    let (twice, once) = (Uuid::now_v7(), Uuid::now_v7());
    let place =
        |order_id, quantity| incoming(place_command(order_id, shop.customer.id, product, quantity));

    let outcomes = workers::placing::place(
        shop.bus().worker_context(),
        vec![place(twice, 4), place(once, 9), place(twice, 4)],
    )
    .await;

    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(
        shop.products().stock_of(product).await,
        6,
        "decremented once, for 4"
    );
    let statuses: Vec<(Uuid, OrderStatus)> =
        sqlx::query_as("SELECT id, status FROM orders ORDER BY status")
            .fetch_all(&shop.state.db)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        vec![
            (twice, OrderStatus::Confirmed),
            (once, OrderStatus::Rejected)
        ]
    );
    assert_eq!(shop.count("SELECT count(*) FROM reservations").await, 1);
}
