//! The order lifecycle: staff transitions, cancellation with stock release, reservation expiry,
//! payments from outside systems, and stock conservation through all of it.

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_system};
use common::domain::{OrderStatus, Role};
use common::messages::TransitionOrder;
use common::messaging::Envelope;
use common::testing::eventually;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn id_of(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

async fn reservation_states(app: &TestApp, order: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT state::text FROM reservations WHERE order_id = $1::uuid ORDER BY product_id",
    )
    .bind(order)
    .fetch_all(&app.state.db)
    .await
    .unwrap()
}

/// Publishes a raw JSON payload with a plain NATS client, as an outside system would.
pub(crate) async fn publish_plain(app: &TestApp, subject: &str, payload: Value) {
    let client = async_nats::connect(common::testing::nats_url())
        .await
        .unwrap();
    client
        .publish(
            app.state.bus.namespace().subject(subject),
            payload.to_string().into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
}

fn payment(kind: &str, order: &str, amount: i64, reference: &str) -> Value {
    let data = if kind == "failed" {
        json!({"order_id": order, "amount": amount, "currency": "USD",
               "provider_reference": reference, "reason": "card declined"})
    } else {
        json!({"order_id": order, "amount": amount, "currency": "USD", "provider_reference": reference})
    };
    json!({
        "id": Uuid::new_v4(),
        "type": format!("payments.{kind}"),
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": format!("psp-{reference}"),
        "data": data,
    })
}

async fn payment_outcome(app: &TestApp, reference: &str) -> Option<String> {
    sqlx::query_scalar("SELECT outcome::text FROM payments WHERE provider_reference = $1")
        .bind(reference)
        .fetch_optional(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn staff_move_an_order_through_paid_shipped_and_delivered_and_shipping_commits_the_stock() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 700, 10).await;
    let order = app.place_settled(&client, p, 2).await;
    assert_eq!(order["status"], "CONFIRMED");
    let path = format!("/api/v1/orders/{}/status", id_of(&order));

    for (to, reason) in [
        ("PAID", "bank transfer"),
        ("SHIPPED", "tracking 1Z"),
        ("DELIVERED", "signed"),
    ] {
        let res = app
            .patch_as(
                &admin,
                &path,
                &json!({"status": to, "reason": reason}),
                &[("prefer", "wait=10")],
            )
            .await;
        assert_eq!(res.status(), 200, "{to}");
        let now: Value = res.json().await.unwrap();
        assert_eq!(now["status"], to);
        let last = now["timeline"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["to"], to);
        assert_eq!(last["actor"], format!("user:{}", admin.id));
        assert_eq!(last["reason"], reason);
    }
    // The commit follows the SHIPPED event through the inventory worker.
    let id = id_of(&order);
    let states = eventually(
        Duration::from_secs(10),
        "the reservation committed",
        || async {
            let states = reservation_states(&app, &id).await;
            (states != ["reserved"]).then_some(states)
        },
    )
    .await;
    assert_eq!(states, vec!["committed"]);
    assert_eq!(app.stock_of(p).await, 8, "a sale never gives stock back");
}

#[tokio::test]
async fn the_api_refuses_every_illegal_transition_with_409_naming_the_current_status() {
    // No workers: legal moves are only accepted (202), illegal ones refused up front.
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    // Orders are recorded once settled, so every stored status but PENDING.
    for from in OrderStatus::ALL
        .into_iter()
        .filter(|s| *s != OrderStatus::Pending)
    {
        for to in [
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
            OrderStatus::Cancelled,
        ] {
            let id = app.insert_order(&client, from.as_str()).await;
            let res = app
                .patch_as(
                    &admin,
                    &format!("/api/v1/orders/{id}/status"),
                    &json!({"status": to}),
                    &[],
                )
                .await;
            if from == to {
                assert_eq!(res.status(), 200, "{from} -> {to} is already there");
            } else if from.can_become(to) {
                assert_eq!(res.status(), 202, "{from} -> {to} is legal");
            } else {
                let body = assert_problem(res, 409).await;
                assert_eq!(body["current_status"], from.as_str(), "{from} -> {to}");
            }
        }
    }
}

#[tokio::test]
async fn statuses_set_by_the_system_cannot_be_requested_and_clients_cannot_patch() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.insert_order(&client, "CONFIRMED").await;
    let path = format!("/api/v1/orders/{id}/status");
    for status in ["PENDING", "CONFIRMED", "REJECTED"] {
        let body = assert_problem(
            app.patch_as(&admin, &path, &json!({"status": status}), &[])
                .await,
            422,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "status");
    }
    assert_problem(
        app.patch_as(&admin, &path, &json!({"status": "LOST"}), &[])
            .await,
        422,
    )
    .await;
    assert_problem(
        app.patch_as(&admin, &path, &json!({"status": "PAID", "reason": ""}), &[])
            .await,
        422,
    )
    .await;
    assert_problem(
        app.patch_as(&client, &path, &json!({"status": "PAID"}), &[])
            .await,
        403,
    )
    .await;
    let missing = format!("/api/v1/orders/{}/status", Uuid::new_v4());
    assert_problem(
        app.patch_as(&admin, &missing, &json!({"status": "PAID"}), &[])
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn the_worker_dead_letters_a_transition_that_became_illegal() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let id = app.insert_order(&client, "DELIVERED").await;
    app.state
        .bus
        .publish(
            TransitionOrder {
                order_id: id,
                to: OrderStatus::Cancelled,
                actor: "system:test".into(),
                reason: None,
                allowed_from: None,
                carrier: None,
                tracking_number: None,
                tracking_url: None,
            },
            "c",
        )
        .await
        .unwrap();
    app.quiescent().await;
    let stream = app
        .state
        .bus
        .jetstream()
        .get_stream(app.state.bus.namespace().name(common::nats::DEAD_LETTERS))
        .await
        .unwrap();
    let letter = stream.get_raw_message(1).await.unwrap();
    let reason = letter
        .headers
        .get(common::messaging::DLQ_REASON_HEADER)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(
        reason.contains("is DELIVERED, cannot move to CANCELLED"),
        "{reason}"
    );
    let status: String = sqlx::query_scalar("SELECT status::text FROM orders WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "DELIVERED");
}

#[tokio::test]
async fn a_customer_cancels_before_payment_and_the_stock_comes_back() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 100, 10).await;
    let order = app.place_settled(&client, p, 4).await;
    assert_eq!(app.stock_of(p).await, 6);

    let res = app
        .post_empty_as(
            &client,
            &format!("/api/v1/orders/{}/cancel", id_of(&order)),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    let last = cancelled["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], format!("user:{}", client.id));
    app.quiescent().await;
    assert_eq!(app.stock_of(p).await, 10);
    assert_eq!(
        reservation_states(&app, &id_of(&order)).await,
        vec!["released"]
    );

    // Cancelling again is harmless.
    let again = app
        .post_empty_as(
            &client,
            &format!("/api/v1/orders/{}/cancel", id_of(&order)),
            &[],
        )
        .await;
    assert_eq!(again.status(), 200);
    app.quiescent().await;
    assert_eq!(app.stock_of(p).await, 10);
}

#[tokio::test]
async fn only_the_owner_cancels_before_payment_and_staff_until_shipping() {
    let app = spawn_app().await;
    let alice = app.create_user(Role::Client).await;
    let bob = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let confirmed = app.insert_order(&alice, "CONFIRMED").await;
    let paid = app.insert_order(&alice, "PAID").await;
    let shipped = app.insert_order(&alice, "SHIPPED").await;

    assert_problem(
        app.post_empty_as(&bob, &format!("/api/v1/orders/{confirmed}/cancel"), &[])
            .await,
        404,
    )
    .await;
    let body = assert_problem(
        app.post_empty_as(&alice, &format!("/api/v1/orders/{paid}/cancel"), &[])
            .await,
        409,
    )
    .await;
    assert_eq!(body["current_status"], "PAID");
    assert_eq!(
        app.post_empty_as(&admin, &format!("/api/v1/orders/{paid}/cancel"), &[])
            .await
            .status(),
        202
    );
    assert_problem(
        app.post_empty_as(&admin, &format!("/api/v1/orders/{shipped}/cancel"), &[])
            .await,
        409,
    )
    .await;
    assert_eq!(
        app.post_empty_as(&alice, &format!("/api/v1/orders/{confirmed}/cancel"), &[])
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn duplicate_cancel_commands_give_stock_back_exactly_once() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 100, 10).await;
    let order = app.place_settled(&client, p, 3).await;
    let order_id: Uuid = id_of(&order).parse().unwrap();
    let res = app
        .post_empty_as(
            &admin,
            &format!("/api/v1/orders/{order_id}/cancel"),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(res.status(), 200);

    // Copies that get past the server's duplicate check, as redeliveries would.
    let bus = &app.state.bus;
    for copy in 0..3 {
        let cancel = TransitionOrder {
            order_id,
            to: OrderStatus::Cancelled,
            actor: "system:test".into(),
            reason: None,
            allowed_from: None,
            carrier: None,
            tracking_number: None,
            tracking_url: None,
        };
        let cancel = serde_json::to_vec(&Envelope::<TransitionOrder>::new(cancel, "c")).unwrap();
        bus.publish_raw(
            bus.namespace().subject("orders.cmd.transition"),
            format!("extra-cancel-{copy}"),
            Default::default(),
            cancel.into(),
        )
        .await
        .unwrap();
    }
    app.quiescent().await;
    assert_eq!(app.stock_of(p).await, 10, "released once");
    let cancellations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM order_events WHERE order_id = $1 AND to_status = 'CANCELLED'",
    )
    .bind(order_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(cancellations, 1);
}

#[tokio::test]
async fn a_cancel_after_shipping_is_refused_and_gives_nothing_back() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 100, 10).await;
    let order = app.place_settled(&client, p, 5).await;
    let order_id: Uuid = id_of(&order).parse().unwrap();
    for to in ["PAID", "SHIPPED"] {
        let res = app
            .patch_as(
                &admin,
                &format!("/api/v1/orders/{order_id}/status"),
                &json!({"status": to}),
                &[("prefer", "wait=10")],
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    app.quiescent().await;
    app.state
        .bus
        .publish(
            TransitionOrder {
                order_id,
                to: OrderStatus::Cancelled,
                actor: "system:test".into(),
                reason: None,
                allowed_from: None,
                carrier: None,
                tracking_number: None,
                tracking_url: None,
            },
            "c",
        )
        .await
        .unwrap();
    app.quiescent().await;
    assert_eq!(app.stock_of(p).await, 5);
    assert_eq!(
        reservation_states(&app, &order_id.to_string()).await,
        vec!["committed"]
    );
}

#[tokio::test]
async fn unpaid_reservations_expire_once_even_with_two_order_workers_sweeping() {
    let app = spawn_app().await;
    let fast_expiry = [
        ("RESERVATION_TTL_SECS", "1"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "100"),
    ];
    app.start_workers(app.env.config_with(&fast_expiry)).await;
    app.start_workers(app.env.config_with(&fast_expiry)).await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 100, 10).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        let order = app.place_settled(&client, p, 2).await;
        assert_eq!(order["status"], "CONFIRMED");
        orders.push(id_of(&order));
    }
    for id in &orders {
        let order = app
            .order_when(&client, id, |o| o["status"] == "CANCELLED")
            .await;
        let last = order["timeline"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["reason"], "reservation_expired");
        assert_eq!(last["actor"], "system:expiry");
    }
    app.quiescent().await;
    assert_eq!(
        app.stock_of(p).await,
        10,
        "each expired order released once"
    );
    let cancellations = app.transitions_to("CANCELLED").await;
    assert_eq!(cancellations, 3);
}

#[tokio::test]
async fn a_payment_published_by_a_plain_nats_client_pays_the_order() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 1999, 10).await;
    let order = app.place_settled(&client, p, 2).await;
    publish_plain(
        &app,
        "payments.evt.succeeded",
        payment("succeeded", &id_of(&order), 3998, "psp-001"),
    )
    .await;

    let paid = app
        .order_when(&client, &id_of(&order), |o| o["status"] == "PAID")
        .await;
    let last = paid["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "system:payments");
    assert_eq!(last["reason"], "payment psp-001");
    assert_eq!(
        payment_outcome(&app, "psp-001").await.as_deref(),
        Some("applied")
    );

    // The provider retries its delivery: nothing changes.
    publish_plain(
        &app,
        "payments.evt.succeeded",
        payment("succeeded", &id_of(&order), 3998, "psp-001"),
    )
    .await;
    app.quiescent().await;
    let events = app.transitions_to("PAID").await;
    assert_eq!(events, 1);
}

#[tokio::test]
async fn a_wrong_amount_leaves_the_order_unpaid_and_is_flagged_for_refund() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 1000, 10).await;
    let order = app.place_settled(&client, p, 1).await;
    publish_plain(
        &app,
        "payments.evt.succeeded",
        payment("succeeded", &id_of(&order), 999, "psp-short"),
    )
    .await;
    app.quiescent().await;
    assert_eq!(
        payment_outcome(&app, "psp-short").await.as_deref(),
        Some("refund_required")
    );
    let now: Value = app
        .get_as(&client, &format!("/api/v1/orders/{}", id_of(&order)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["status"], "CONFIRMED");
}

#[tokio::test]
async fn a_failed_payment_cancels_the_order_and_releases_its_stock() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 1000, 10).await;
    let order = app.place_settled(&client, p, 4).await;
    publish_plain(
        &app,
        "payments.evt.failed",
        payment("failed", &id_of(&order), 4000, "psp-declined"),
    )
    .await;
    let cancelled = app
        .order_when(&client, &id_of(&order), |o| o["status"] == "CANCELLED")
        .await;
    let last = cancelled["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "payment_failed: card declined");
    app.quiescent().await;
    assert_eq!(app.stock_of(p).await, 10);
}

#[tokio::test]
async fn a_payment_for_an_expired_order_is_recorded_for_refund_and_changes_nothing() {
    let app = spawn_app().await;
    app.start_workers(app.env.config_with(&[
        ("RESERVATION_TTL_SECS", "1"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "100"),
    ]))
    .await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 1000, 10).await;
    let order = app.place_settled(&client, p, 1).await;
    app.order_when(&client, &id_of(&order), |o| o["status"] == "CANCELLED")
        .await;
    publish_plain(
        &app,
        "payments.evt.succeeded",
        payment("succeeded", &id_of(&order), 1000, "psp-late"),
    )
    .await;
    app.quiescent().await;
    assert_eq!(
        payment_outcome(&app, "psp-late").await.as_deref(),
        Some("refund_required")
    );
    assert_eq!(app.stock_of(p).await, 10);
}

#[tokio::test]
async fn a_payment_that_arrives_before_the_confirmation_is_retried_until_it_applies() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;
    // The payment is on the bus before the order even exists.
    let order_id = Uuid::new_v4();
    publish_plain(
        &app,
        "payments.evt.succeeded",
        payment("succeeded", &order_id.to_string(), 500, "psp-early"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.state
        .bus
        .publish(
            common::messages::PlaceOrder {
                order_id,
                user_id: client.id,
                shipping_address: None,
                items: vec![common::messages::LineRequest {
                    product_id: p,
                    quantity: 1,
                }],
            },
            "c",
        )
        .await
        .unwrap();
    let paid = app
        .order_when(&client, &order_id.to_string(), |o| o["status"] == "PAID")
        .await;
    assert_eq!(paid["status"], "PAID");
    let redelivered: i64 = app
        .state
        .bus
        .jetstream()
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            app.state.bus.namespace().name("orders-payment-events"),
            app.state.bus.namespace().name(common::nats::EVENTS),
        )
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .delivered
        .consumer_sequence as i64;
    assert!(redelivered >= 2, "the payment was delivered more than once");
}

#[tokio::test]
async fn stock_is_conserved_through_a_random_mix_of_placements_cancellations_payments_expiries_and_adjustments()
 {
    let app = spawn_app().await;
    app.start_workers(app.env.config_with(&[
        ("RESERVATION_TTL_SECS", "2"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "200"),
    ]))
    .await;
    let admin = app.create_user(Role::Admin).await;
    let mut products = Vec::new();
    for i in 0..4 {
        products.push(app.create_product(&format!("P{i}"), 100 + i, 25).await);
    }
    let mut customers = Vec::new();
    for _ in 0..12 {
        customers.push(app.create_user(Role::Client).await);
    }

    // Placements, concurrently: random one- or two-line orders.
    let placements = (0..48).map(|n| {
        let customer = &customers[n % customers.len()];
        let a = products[rand::random::<u32>() as usize % products.len()];
        let b = products[rand::random::<u32>() as usize % products.len()];
        let body = json!({"items": [
            {"product_id": a, "quantity": 1 + rand::random::<u32>() % 4},
            {"product_id": b, "quantity": 1 + rand::random::<u32>() % 3},
        ]});
        let app = &app;
        async move {
            let res = app
                .post_as(customer, "/api/v1/orders", &body, &[("prefer", "wait=10")])
                .await;
            let order: Value = res.json().await.unwrap();
            (customer, order)
        }
    });
    let placed = futures::future::join_all(placements).await;

    // Then, for each order, one random fate; some left alone to expire.
    let fates = placed.iter().enumerate().map(|(n, (customer, order))| {
        let app = &app;
        let admin = &admin;
        async move {
            let id = id_of(order);
            match n % 6 {
                0 => {
                    app.post_empty_as(customer, &format!("/api/v1/orders/{id}/cancel"), &[])
                        .await;
                }
                1 => {
                    let total = order["total"].as_i64().unwrap_or(0);
                    publish_plain(
                        app,
                        "payments.evt.succeeded",
                        payment("succeeded", &id, total, &format!("ok-{n}")),
                    )
                    .await;
                }
                2 => {
                    publish_plain(
                        app,
                        "payments.evt.failed",
                        payment("failed", &id, 1, &format!("ko-{n}")),
                    )
                    .await;
                }
                3 => {
                    app.post_empty_as(admin, &format!("/api/v1/orders/{id}/cancel"), &[])
                        .await;
                }
                4 => {
                    publish_plain(
                        app,
                        "payments.evt.succeeded",
                        payment("succeeded", &id, 1, &format!("bad-{n}")),
                    )
                    .await;
                }
                _ => {}
            }
        }
    });
    futures::future::join_all(fates).await;

    // Stock adjustments from a warehouse system over the bus, racing the orders' fates (one
    // of them may be refused for taking stock below zero: it is dead-lettered, not applied).
    for (i, p) in products.iter().enumerate() {
        let delta = if i % 2 == 0 { 7 } else { -3 };
        publish_plain(
            &app,
            "inventory.cmd.adjust",
            json!({
                "id": Uuid::new_v4(), "type": "inventory.adjust", "version": 1,
                "occurred_at": chrono::Utc::now(), "correlation_id": "warehouse",
                "data": {"product_id": p, "delta": delta, "reason": "count",
                         "reference": format!("count-{i}")}
            }),
        )
        .await;
    }

    // Concurrent stock adjustments by staff too.
    for (i, p) in products.iter().enumerate() {
        let delta = if i % 2 == 0 { 5 } else { -1 };
        let res = app
            .post_as(
                &admin,
                &format!("/api/v1/products/{p}/stock-adjustments"),
                &json!({"delta": delta, "reason": "recount"}),
                &[],
            )
            .await;
        assert!(
            res.status().is_success() || res.status() == 409,
            "{}",
            res.status()
        );
    }

    // Quiescence: nothing pending, every unpaid reservation expired, every message handled.
    common::testing::eventually(
        Duration::from_secs(40),
        "orders settled and unpaid ones expired",
        || async {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders WHERE status IN ('PENDING', 'CONFIRMED')",
            )
            .fetch_one(&app.state.db)
            .await
            .ok()?;
            (open == 0).then_some(())
        },
    )
    .await;
    app.quiescent().await;

    let report: Value = app
        .get_as(&admin, "/api/v1/admin/stock-reconciliation")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["products_checked"], 4);
    let negative: i64 = sqlx::query_scalar("SELECT count(*) FROM products WHERE stock < 0")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(negative, 0);
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status::text FROM orders ORDER BY 1")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert!(statuses.contains(&"CANCELLED".to_owned()), "{statuses:?}");
}

#[tokio::test]
async fn admins_list_dead_letters_and_redrive_one_once_its_cause_is_fixed() {
    let app = spawn_system().await;
    let admin = app.create_user(Role::Admin).await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 100, 10).await;
    // A POS publishes an order for a customer account not created yet.
    let customer = Uuid::new_v4();
    let order_id = Uuid::now_v7();
    app.state
        .bus
        .publish(
            common::messages::PlaceOrder {
                order_id,
                user_id: customer,
                shipping_address: None,
                items: vec![common::messages::LineRequest {
                    product_id: p,
                    quantity: 2,
                }],
            },
            "pos-42",
        )
        .await
        .unwrap();
    let page: Value =
        common::testing::eventually(Duration::from_secs(20), "a dead letter", || async {
            let page: Value = app
                .get_as(&admin, "/api/v1/admin/dead-letters")
                .await
                .json()
                .await
                .ok()?;
            (page["items"].as_array()?.len() == 1).then_some(page)
        })
        .await;
    let letter = &page["items"][0];
    assert_eq!(letter["subject"], "orders.cmd.place");
    assert!(
        letter["reason"].as_str().unwrap().contains("unknown user"),
        "{letter}"
    );
    assert_eq!(letter["deliveries"], 1);
    assert_eq!(letter["payload"]["data"]["order_id"], order_id.to_string());
    assert_eq!(letter["correlation_id"], "pos-42");
    assert_problem(app.get_as(&client, "/api/v1/admin/dead-letters").await, 403).await;

    // Fix the cause, then re-drive.
    sqlx::query("INSERT INTO users (id, email, role, password_hash) VALUES ($1, 'pos-customer@example.com', 'CLIENT', 'x')")
        .bind(customer)
        .execute(&app.state.db)
        .await
        .unwrap();
    let sequence = letter["sequence"].as_u64().unwrap();
    let res = app
        .post_empty_as(
            &admin,
            &format!("/api/v1/admin/dead-letters/{sequence}/redrive"),
            &[],
        )
        .await;
    assert_eq!(res.status(), 202);
    common::testing::eventually(
        Duration::from_secs(20),
        "the re-driven order confirmed",
        || async {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status::text FROM orders WHERE id = $1")
                    .bind(order_id)
                    .fetch_optional(&app.state.db)
                    .await
                    .ok()?;
            (status.as_deref() == Some("CONFIRMED")).then_some(())
        },
    )
    .await;
    let after: Value = app
        .get_as(&admin, "/api/v1/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["items"].as_array().unwrap().len(), 0);
    assert_problem(
        app.post_empty_as(
            &admin,
            &format!("/api/v1/admin/dead-letters/{sequence}/redrive"),
            &[],
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn the_reconciliation_reports_drift_and_where_to_look() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 100, 10).await;
    let clean: Value = app
        .get_as(&admin, "/api/v1/admin/stock-reconciliation")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(clean["consistent"], true);
    // Stock vanishing outside any recorded path.
    sqlx::query("UPDATE products SET stock = 7 WHERE id = $1")
        .bind(p)
        .execute(&app.state.db)
        .await
        .unwrap();
    let report: Value = app
        .get_as(&admin, "/api/v1/admin/stock-reconciliation")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["consistent"], false);
    assert_eq!(report["drift"][0]["product_id"], p.to_string());
    assert_eq!(report["drift"][0]["difference"], 3);
    assert!(report["hint"].as_str().unwrap().contains("dead-letters"));
}
