//! Commands the workers receive together are settled in shared transactions, with the outcomes
//! each would have alone.

use crate::helpers::{Shop, place_command, spawn_app};
use crate::orders_delivery::incoming;
use common::domain::Lines;
use common::messages::{LineRequest, PlaceOrder};
use common::messaging::{Envelope, Message};
use uuid::Uuid;

#[tokio::test]
async fn commands_received_together_are_settled_in_shared_transactions_with_the_same_outcomes() {
    // The commands are all in the stream before the workers start, so each pull brings many
    // at once: the workers record, reserve and settle them in batches.
    let app = Shop::around(spawn_app().await).await;
    let client = &app.customer;
    let scarce = app.products().create("Scarce", 250, 30).await;
    let plenty = app.products().create("Plenty", 100, 1000).await;
    let mut order_ids = Vec::new();
    for i in 0..120 {
        let order_id = Uuid::now_v7();
        order_ids.push(order_id);
        let mut items = vec![LineRequest {
            product_id: scarce,
            quantity: 1,
        }];
        if i % 2 == 0 {
            items.push(LineRequest {
                product_id: plenty,
                quantity: 2,
            });
        }
        let command = PlaceOrder {
            order_id,
            user_id: client.id,
            shipping_address: None,
            items: Lines::merging(&items).expect("valid lines"),
        };
        app.bus().publish(command.clone(), "batch").await;
        if i == 5 {
            // A copy under another message id, as a redelivery would arrive.
            app.bus().publish_copy(command, "copy-of-5").await;
        }
        if i == 60 {
            // Two commands that can never succeed, in the middle of the others.
            app.bus()
                .publish(
                    place_command(Uuid::now_v7(), Uuid::now_v7(), plenty, 1),
                    "bad",
                )
                .await;
            // A quantity of 0 cannot be held by a `PlaceOrder`: written into its JSON, as
            // another publisher might send it.
            let command = place_command(Uuid::now_v7(), client.id, plenty, 1);
            let mut invalid =
                serde_json::to_value(Envelope::<PlaceOrder>::new(command, "copy")).unwrap();
            invalid["data"]["items"][0]["quantity"] = serde_json::json!(0);
            let payload = serde_json::to_vec(&invalid).unwrap();
            app.bus()
                .publish_bytes(PlaceOrder::SUBJECT, "invalid-quantity", payload)
                .await;
        }
    }
    // One customer's 120 orders, unpaid: no bound on unpaid orders here.
    app.start_workers(app.env.config_with(&[("MAX_UNPAID_ORDERS_PER_USER", "0")]))
        .await;
    app.bus().quiescent().await;

    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status::text, count(*) FROM orders WHERE id = ANY($1) GROUP BY status ORDER BY status",
    )
    .bind(&order_ids)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        statuses,
        vec![("CONFIRMED".to_owned(), 30), ("REJECTED".to_owned(), 90)]
    );
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 120);
    assert_eq!(app.products().stock_of(scarce).await, 0);
    let plenty_held = app.products().reserved_of(plenty).await;
    assert_eq!(
        i64::from(app.products().stock_of(plenty).await) + plenty_held,
        1000,
        "conservation"
    );
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT rejection_reason FROM orders WHERE status = 'REJECTED' AND id = ANY($1)",
    )
    .bind(&order_ids)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("line 1: product") && r.ends_with("1 requested, 0 available")),
        "{reasons:?}"
    );
    // Rows written in one transaction share its `now()`: far fewer distinct times than
    // orders means they were recorded many per transaction.
    let recorded_at = app
        .count("SELECT count(DISTINCT created_at) FROM orders")
        .await;
    let reserved_at = app
        .count("SELECT count(DISTINCT created_at) FROM reservations")
        .await;
    assert!(
        recorded_at <= 60,
        "120 orders recorded in {recorded_at} transactions"
    );
    assert!(
        reserved_at <= 15,
        "30 reservations made in {reserved_at} transactions"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM order_events WHERE from_status IS NULL")
            .await,
        120,
        "one timeline entry per order, the copy of one changed nothing"
    );
    assert_eq!(app.count("SELECT count(*) FROM order_events").await, 120);

    let mut reasons = app.bus().dead_letter_reasons().await;
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with(
            "invalid data for orders.place: items[0].quantity: must be between 1 and 10000"
        ),
        "{reasons:?}"
    );
    assert!(reasons[1].starts_with("unknown user"), "{reasons:?}");
}

#[tokio::test]
async fn an_order_whose_total_overflows_is_refused_and_the_others_of_its_batch_are_recorded() {
    let app = Shop::around(spawn_app().await).await;
    let client = &app.customer;
    let dear = app.products().create("Dear", 100, 10).await;
    let cheap = app.products().create("Cheap", 100, 10).await;
    sqlx::query("UPDATE products SET price = $2 WHERE id = $1")
        .bind(dear)
        .bind(i64::MAX / 2)
        .execute(&app.state.db)
        .await
        .unwrap();
    let (overflowing, fine) = (Uuid::now_v7(), Uuid::now_v7());
    let outcomes = workers::placing::place(
        app.bus().worker_context(),
        vec![
            incoming(place_command(overflowing, client.id, dear, 3)),
            incoming(place_command(fine, client.id, cheap, 2)),
        ],
    )
    .await;
    match &outcomes[0] {
        Err(workers::consumer::Failure::Permanent(reason)) => {
            assert_eq!(reason, "order total overflows")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(outcomes[1].is_ok(), "{:?}", outcomes[1]);
    let recorded: Vec<(Uuid, i64)> = sqlx::query_as("SELECT id, total FROM orders")
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(recorded, vec![(fine, 200)]);
    assert_eq!(app.count("SELECT count(*) FROM order_items").await, 1);
}
