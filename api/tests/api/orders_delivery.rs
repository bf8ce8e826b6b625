//! Exactly-once effects under at-least-once delivery, rule by rule (docs/architecture.md,
//! "Delivery rules").

use crate::helpers::{assert_problem, spawn_app, spawn_app_behind_proxies, spawn_system};
use common::domain::OrderStatus;
use common::domain::Role;
use common::messages::{LineRequest, PlaceOrder, TransitionOrder};
use common::messaging::{Bus, Envelope};
use common::nats;
use common::testing::{TcpProxy, eventually, socket_addr_of};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;
use workers::dispatch::Incoming;

fn place_command(order_id: Uuid, user_id: Uuid, product: Uuid, quantity: i32) -> PlaceOrder {
    PlaceOrder {
        order_id,
        user_id,
        shipping_address: None,
        items: vec![LineRequest {
            product_id: product,
            quantity,
        }],
    }
}

fn incoming<M>(message: M) -> Incoming<M> {
    Incoming::new(message, "test-correlation")
}

/// The workers' context over the test app's database and bus, to call handlers directly.
pub(crate) fn worker_context(app: &crate::helpers::TestApp) -> workers::Context {
    workers::Context::new(
        app.state.db.clone(),
        app.state.bus.clone(),
        app.state.config.clone(),
    )
}

async fn count(app: &crate::helpers::TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

async fn dead_letters(bus: &Bus) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let stream = bus
        .jetstream()
        .get_stream(bus.namespace().name(nats::DEAD_LETTERS))
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut seq = 1;
    while let Ok(m) = stream.get_raw_message(seq).await {
        out.push(m);
        seq += 1;
    }
    out
}

#[tokio::test]
async fn the_same_place_command_delivered_twice_creates_one_order_and_one_reservation() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;
    let order_id = Uuid::now_v7();
    let command = place_command(order_id, client.id, product, 3);
    let payload = serde_json::to_vec(&Envelope::<PlaceOrder>::new(command.clone(), "c")).unwrap();
    // Two copies with different message ids get past the server's duplicate check, as a
    // redelivery would.
    for copy in ["a", "b"] {
        app.state
            .bus
            .publish_raw(
                app.state.bus.namespace().subject("orders.cmd.place"),
                format!("copy-{copy}"),
                async_nats::HeaderMap::new(),
                payload.clone().into(),
            )
            .await
            .unwrap();
    }
    let order = app
        .order_when(&client, &order_id.to_string(), |o| o["status"] != "PENDING")
        .await;
    assert_eq!(order["status"], "CONFIRMED");
    // Let the second copy be processed too before counting.
    eventually(Duration::from_secs(20), "both copies consumed", || async {
        let mut c: async_nats::jetstream::consumer::PullConsumer = app
            .state
            .bus
            .jetstream()
            .get_consumer_from_stream(
                app.state
                    .bus
                    .namespace()
                    .name(workers::kinds::INVENTORY_PLACE),
                app.state.bus.namespace().name(nats::ORDERS_CMD),
            )
            .await
            .ok()?;
        let info = c.info().await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence >= 2)
            .then_some(())
    })
    .await;
    assert_eq!(count(&app, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM reservations").await, 1);
    assert_eq!(app.stock_of(product).await, 7);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM order_events WHERE to_status = 'CONFIRMED'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_handler_rerun_after_a_crash_between_commit_and_ack_changes_nothing_twice() {
    // No workers running: the handlers are driven by hand, exactly as a redelivery drives them.
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;
    let ctx = worker_context(&app);
    let order_id = Uuid::now_v7();
    for _ in 0..2 {
        let place = incoming(place_command(order_id, client.id, product, 4));
        let results = workers::placing::place(ctx.clone(), vec![place]).await;
        assert!(results[0].is_ok(), "{results:?}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM order_items").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM reservations").await, 1);
    assert_eq!(app.stock_of(product).await, 6, "reserved once");

    for _ in 0..2 {
        let cancel = incoming(TransitionOrder {
            order_id,
            to: OrderStatus::Cancelled,
            actor: "system:test".into(),
            reason: None,
            allowed_from: None,
            carrier: None,
            tracking_number: None,
            tracking_url: None,
        });
        let results = workers::transitions::transition(ctx.clone(), vec![cancel]).await;
        assert!(results[0].is_ok(), "{results:?}");
    }
    assert_eq!(app.stock_of(product).await, 10, "released once");
    assert_eq!(
        count(&app, "SELECT count(*) FROM order_events").await,
        2,
        "recorded and cancelled once each"
    );
}

#[tokio::test]
async fn a_publish_retried_inside_the_duplicate_window_is_dropped_by_the_server() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;
    let order_id = Uuid::now_v7();
    let first = app
        .state
        .bus
        .publish(place_command(order_id, client.id, product, 1), "c")
        .await
        .unwrap();
    let retry = app
        .state
        .bus
        .publish(place_command(order_id, client.id, product, 1), "c")
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(
        retry.duplicate,
        "the retried publish is recognised as a duplicate"
    );
    assert_eq!(retry.sequence, first.sequence);
    app.order_when(&client, &order_id.to_string(), |o| {
        o["status"] == "CONFIRMED"
    })
    .await;
    assert_eq!(app.stock_of(product).await, 9);
}

#[tokio::test]
async fn orders_wait_while_postgres_is_unreachable_for_the_workers_and_settle_afterwards() {
    let app = spawn_app().await;
    let pg = TcpProxy::start(socket_addr_of(&app.env.database_url)).await;
    let via_proxy = format!("postgres://postgres@{}/{}", pg.addr, app.env.database_name);
    app.start_workers(app.env.config_with(&[("DATABASE_URL", &via_proxy)]))
        .await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;

    pg.cut();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let res = app
            .post_as(
                &client,
                "/api/v1/orders",
                &json!({"items": [{"product_id": product, "quantity": 1}]}),
                &[],
            )
            .await;
        assert_eq!(
            res.status(),
            202,
            "the api accepts while the workers' database is down"
        );
        let order: Value = res.json().await.unwrap();
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    // The workers are failing and retrying meanwhile; give them a few attempts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM orders").await,
        0,
        "nothing applied while down"
    );

    pg.restore();
    for id in &ids {
        let order = app
            .order_when(&client, id, |o| o["status"] == "CONFIRMED")
            .await;
        assert_eq!(order["status"], "CONFIRMED");
    }
    assert_eq!(app.stock_of(product).await, 5);
    assert!(
        dead_letters(&app.state.bus).await.is_empty(),
        "nothing was given up"
    );
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_with_their_reason_and_change_nothing() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;
    let bus = &app.state.bus;
    let subject = bus.namespace().subject("orders.cmd.place");

    bus.publish_raw(
        subject.clone(),
        "garbage".into(),
        async_nats::HeaderMap::new(),
        "{not json".into(),
    )
    .await
    .unwrap();
    let bad_quantity = json!({
        "id": Uuid::new_v4(), "type": "orders.place", "version": 1,
        "occurred_at": "2026-01-01T00:00:00Z", "correlation_id": "c",
        "data": {"order_id": Uuid::new_v4(), "user_id": client.id,
                 "items": [{"product_id": product, "quantity": 0}]}
    });
    bus.publish_raw(
        subject.clone(),
        "bad-quantity".into(),
        async_nats::HeaderMap::new(),
        bad_quantity.to_string().into(),
    )
    .await
    .unwrap();
    let unknown_user = serde_json::to_vec(&Envelope::<PlaceOrder>::new(
        place_command(Uuid::now_v7(), Uuid::new_v4(), product, 1),
        "c",
    ))
    .unwrap();
    bus.publish_raw(
        subject,
        "unknown-user".into(),
        async_nats::HeaderMap::new(),
        unknown_user.into(),
    )
    .await
    .unwrap();

    let letters = eventually(Duration::from_secs(20), "three dead letters", || async {
        let d = dead_letters(bus).await;
        (d.len() == 3).then_some(d)
    })
    .await;
    let reasons: Vec<String> = letters
        .iter()
        .map(|m| {
            m.headers
                .get(common::messaging::DLQ_REASON_HEADER)
                .unwrap()
                .as_str()
                .to_owned()
        })
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not a valid envelope")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("items[0].quantity")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("unknown user")),
        "{reasons:?}"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM orders").await, 0);
    assert_eq!(app.stock_of(product).await, 10);
}

#[tokio::test]
async fn placing_an_order_while_jetstream_is_unreachable_is_a_503_that_creates_nothing() {
    let (app, _pg, nats_proxy) = spawn_app_behind_proxies().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;
    let body = json!({"items": [{"product_id": product, "quantity": 1}]});
    let key = [("idempotency-key", "during-outage")];

    nats_proxy.cut();
    eventually(Duration::from_secs(10), "client notices", || async {
        (app.state.nats.connection_state() != async_nats::connection::State::Connected)
            .then_some(())
    })
    .await;
    let res = app.post_as(&client, "/api/v1/orders", &body, &key).await;
    assert_problem(res, 503).await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_keys").await,
        0
    );

    nats_proxy.restore();
    eventually(Duration::from_secs(30), "client reconnects", || async {
        (app.state.nats.connection_state() == async_nats::connection::State::Connected)
            .then_some(())
    })
    .await;
    let res = app.post_as(&client, "/api/v1/orders", &body, &key).await;
    assert_eq!(
        res.status(),
        202,
        "the same key works once the broker is back"
    );
}

#[tokio::test]
async fn a_place_command_reusing_an_order_id_with_other_lines_is_dead_lettered() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;
    let order_id = Uuid::now_v7();
    app.state
        .bus
        .publish(place_command(order_id, client.id, product, 1), "c")
        .await
        .unwrap();
    app.order_when(&client, &order_id.to_string(), |o| {
        o["status"] == "CONFIRMED"
    })
    .await;

    let impostor = serde_json::to_vec(&Envelope::<PlaceOrder>::new(
        place_command(order_id, client.id, product, 5),
        "c",
    ))
    .unwrap();
    app.state
        .bus
        .publish_raw(
            app.state.bus.namespace().subject("orders.cmd.place"),
            "impostor".into(),
            Default::default(),
            impostor.into(),
        )
        .await
        .unwrap();
    let letters = eventually(Duration::from_secs(20), "a dead letter", || async {
        let d = dead_letters(&app.state.bus).await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    let reason = letters[0]
        .headers
        .get(common::messaging::DLQ_REASON_HEADER)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(
        reason.contains("already used by a different order"),
        "{reason}"
    );
    assert_eq!(app.stock_of(product).await, 9);
}

#[tokio::test]
async fn commands_received_together_are_settled_in_shared_transactions_with_the_same_outcomes() {
    // The commands are all in the stream before the workers start, so each pull brings many
    // at once: the workers record, reserve and settle them in batches.
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let scarce = app.create_product("Scarce", 250, 30).await;
    let plenty = app.create_product("Plenty", 100, 1000).await;
    let bus = &app.state.bus;
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
            items,
        };
        bus.publish(command.clone(), "batch").await.unwrap();
        if i == 5 {
            // A copy under another message id, as a redelivery would arrive.
            let payload = serde_json::to_vec(&Envelope::<PlaceOrder>::new(command, "batch"));
            bus.publish_raw(
                bus.namespace().subject("orders.cmd.place"),
                "copy-of-5".into(),
                async_nats::HeaderMap::new(),
                payload.unwrap().into(),
            )
            .await
            .unwrap();
        }
        if i == 60 {
            // Two commands that can never succeed, in the middle of the others.
            bus.publish(
                place_command(Uuid::now_v7(), Uuid::now_v7(), plenty, 1),
                "bad",
            )
            .await
            .unwrap();
            let invalid = place_command(Uuid::now_v7(), client.id, plenty, 0);
            let payload = serde_json::to_vec(&Envelope::<PlaceOrder>::new(invalid, "bad"));
            bus.publish_raw(
                bus.namespace().subject("orders.cmd.place"),
                "invalid-quantity".into(),
                async_nats::HeaderMap::new(),
                payload.unwrap().into(),
            )
            .await
            .unwrap();
        }
    }
    app.start_workers(app.env.config()).await;
    app.quiescent().await;

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
    assert_eq!(count(&app, "SELECT count(*) FROM orders").await, 120);
    assert_eq!(app.stock_of(scarce).await, 0);
    let plenty_held: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(quantity), 0) FROM reservations WHERE product_id = $1",
    )
    .bind(plenty)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        i64::from(app.stock_of(plenty).await) + plenty_held,
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
    let recorded_at: i64 = sqlx::query_scalar("SELECT count(DISTINCT created_at) FROM orders")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    let reserved_at: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT created_at) FROM reservations")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert!(
        recorded_at <= 60,
        "120 orders recorded in {recorded_at} transactions"
    );
    assert!(
        reserved_at <= 15,
        "30 reservations made in {reserved_at} transactions"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM order_events WHERE from_status IS NULL"
        )
        .await,
        120,
        "one timeline entry per order, the copy of one changed nothing"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM order_events").await, 120);

    let mut reasons: Vec<String> = dead_letters(bus)
        .await
        .iter()
        .map(|m| {
            m.headers
                .get(common::messaging::DLQ_REASON_HEADER)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("invalid order: items[0].quantity"),
        "{reasons:?}"
    );
    assert!(reasons[1].starts_with("unknown user"), "{reasons:?}");
}

#[tokio::test]
async fn an_order_whose_total_overflows_is_refused_and_the_others_of_its_batch_are_recorded() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let dear = app.create_product("Dear", 100, 10).await;
    let cheap = app.create_product("Cheap", 100, 10).await;
    sqlx::query("UPDATE products SET price = $2 WHERE id = $1")
        .bind(dear)
        .bind(i64::MAX / 2)
        .execute(&app.state.db)
        .await
        .unwrap();
    let (overflowing, fine) = (Uuid::now_v7(), Uuid::now_v7());
    let outcomes = workers::placing::place(
        worker_context(&app),
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
    assert_eq!(count(&app, "SELECT count(*) FROM order_items").await, 1);
}

#[tokio::test]
async fn copies_of_a_place_command_received_together_record_one_order_and_share_the_outcome() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let product = app.create_product("P", 100, 10).await;
    let (twice, once) = (Uuid::now_v7(), Uuid::now_v7());
    let place =
        |order_id, quantity| incoming(place_command(order_id, client.id, product, quantity));
    let outcomes = workers::placing::place(
        worker_context(&app),
        vec![place(twice, 4), place(once, 9), place(twice, 4)],
    )
    .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(app.stock_of(product).await, 6, "decremented once, for 4");
    let statuses: Vec<(Uuid, OrderStatus)> =
        sqlx::query_as("SELECT id, status FROM orders ORDER BY status")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        vec![
            (twice, OrderStatus::Confirmed),
            (once, OrderStatus::Rejected)
        ]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM reservations").await, 1);
}
