//! Refunds, the payment status beside the lifecycle, and the refund-required queue. The
//! payment system is played by a plain NATS client: it reads `payments.cmd.refund` through its
//! own durable consumer on PAYMENTS_CMD and answers with envelopes it writes itself.

use crate::helpers::{TestApp, TestUser, assert_problem, spawn_system};
use async_nats::jetstream::{self, consumer::PullConsumer};
use common::domain::Role;
use common::messages::RefundOrder;
use common::testing::eventually;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// An outside payment system on a plain NATS connection.
pub struct PaymentSystem {
    client: async_nats::Client,
    consumer: PullConsumer,
    subject_prefix: String,
}

impl PaymentSystem {
    pub async fn connect(app: &TestApp) -> Self {
        let client = async_nats::connect(common::testing::nats_url())
            .await
            .unwrap();
        let js = jetstream::new(client.clone());
        let ns = app.state.bus.namespace();
        let stream = js.get_stream(ns.name("PAYMENTS_CMD")).await.unwrap();
        let consumer = stream
            .get_or_create_consumer(
                "payments",
                jetstream::consumer::pull::Config {
                    durable_name: Some("payments".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        PaymentSystem {
            client,
            consumer,
            subject_prefix: ns.subject(""),
        }
    }

    /// The next refund command, acknowledged, with its `Nats-Msg-Id`.
    pub async fn next_command(&self) -> (Value, String) {
        eventually(Duration::from_secs(20), "a refund command", || async {
            let mut batch = self
                .consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .ok()?;
            let message = batch.next().await?.ok()?;
            message.ack().await.ok()?;
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            let envelope: Value = serde_json::from_slice(&message.payload).ok()?;
            Some((envelope, id))
        })
        .await
    }

    /// No refund command waits for the payment system.
    async fn nothing_waiting(&self) {
        let mut consumer = self.consumer.clone();
        let info = consumer.info().await.unwrap();
        assert_eq!(info.num_pending, 0, "a refund command is waiting");
    }

    /// Publishes an event as the payment system would (core NATS, no message id: each
    /// publish is stored and delivered).
    async fn publish(&self, kind: &str, data: Value) {
        let envelope = json!({
            "id": Uuid::new_v4(),
            "type": format!("payments.{kind}"),
            "version": 1,
            "occurred_at": chrono::Utc::now(),
            "correlation_id": "psp",
            "data": data,
        });
        let subject = match kind {
            "refunded" | "refund_failed" | "succeeded" | "failed" => {
                format!("{}payments.evt.{kind}", self.subject_prefix)
            }
            other => panic!("unknown kind {other}"),
        };
        self.client
            .publish(subject, envelope.to_string().into())
            .await
            .unwrap();
        self.client.flush().await.unwrap();
    }

    async fn pay(&self, order: &str, amount: i64, reference: &str) {
        self.publish(
            "succeeded",
            json!({"order_id": order, "amount": amount, "currency": "USD",
                   "provider_reference": reference}),
        )
        .await;
    }

    /// Answers a refund command: the money went back.
    pub async fn refunded(&self, command: &Value, reference: &str) {
        let data = &command["data"];
        self.publish(
            "refunded",
            json!({"refund_id": data["refund_id"], "order_id": data["order_id"],
                   "amount": data["amount"], "currency": data["currency"],
                   "provider_reference": reference}),
        )
        .await;
    }

    /// Answers a refund command: the money could not go back.
    pub async fn refund_failed(&self, command: &Value, reference: &str) {
        let data = &command["data"];
        self.publish(
            "refund_failed",
            json!({"refund_id": data["refund_id"], "order_id": data["order_id"],
                   "provider_reference": reference, "reason": "card closed"}),
        )
        .await;
    }
}

/// An order of one 1250 mug, paid by the payment system under `reference`.
pub async fn paid_order(
    app: &TestApp,
    psp: &PaymentSystem,
    client: &TestUser,
    reference: &str,
) -> String {
    let mug = app.create_product("Mug", 1250, 10).await;
    let order = app.place_settled(client, mug, 1).await;
    assert_eq!(order["status"], "CONFIRMED");
    let id = order["id"].as_str().unwrap().to_owned();
    psp.pay(&id, 1250, reference).await;
    let paid = app.order_when(client, &id, |o| o["status"] == "PAID").await;
    assert_eq!(paid["payment_status"], "PAID");
    assert_eq!(paid["amount_paid"], 1250);
    assert_eq!(paid["amount_refunded"], 0);
    assert_eq!(paid["payments"][0]["provider_reference"], reference);
    id
}

pub async fn refund(
    app: &TestApp,
    admin: &TestUser,
    order: &str,
    key: &str,
    body: Value,
) -> reqwest::Response {
    app.post_as(
        admin,
        &format!("/api/v1/orders/{order}/refunds"),
        &body,
        &[("idempotency-key", key)],
    )
    .await
}

async fn reconciliation(app: &TestApp, admin: &TestUser) -> Value {
    let res = app
        .get_as(admin, "/api/v1/admin/stock-reconciliation")
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_partial_then_a_full_refund_move_the_payment_status() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let events = psp
        .client
        .subscribe(format!("{}orders.evt.refund_changed", psp.subject_prefix))
        .await
        .unwrap();
    let order = paid_order(&app, &psp, &client, "psp-pay-1").await;

    let res = refund(
        &app,
        &admin,
        &order,
        "r-1",
        json!({"amount": 500, "reason": "one chip"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let requested: Value = res.json().await.unwrap();
    assert_eq!(requested["status"], "REQUESTED");
    assert_eq!(requested["amount"], 500);
    let (command, msg_id) = psp.next_command().await;
    assert_eq!(command["type"], "payments.refund");
    assert_eq!(command["data"]["refund_id"], requested["id"]);
    assert_eq!(command["data"]["amount"], 500);
    assert_eq!(command["data"]["payment_reference"], "psp-pay-1");
    assert_eq!(
        msg_id,
        format!("refund-{}", requested["id"].as_str().unwrap())
    );
    let listed = app
        .order_when(&client, &order, |o| {
            o["refunds"][0]["status"] == "REQUESTED"
        })
        .await;
    assert_eq!(
        listed["payment_status"], "PAID",
        "a requested refund gave nothing back yet"
    );

    psp.refunded(&command, "psp-refund-1").await;
    let partly = app
        .order_when(&client, &order, |o| {
            o["payment_status"] == "PARTIALLY_REFUNDED"
        })
        .await;
    assert_eq!(partly["amount_refunded"], 500);
    assert_eq!(partly["refunds"][0]["status"], "SUCCEEDED");
    assert_eq!(partly["refunds"][0]["provider_reference"], "psp-refund-1");
    assert_eq!(partly["status"], "PAID", "the lifecycle does not change");

    let res = refund(
        &app,
        &admin,
        &order,
        "r-2",
        json!({"amount": 750, "reason": "the rest"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let (command, _) = psp.next_command().await;
    assert_eq!(command["data"]["amount"], 750);
    psp.refunded(&command, "psp-refund-2").await;
    let refunded = app
        .order_when(&client, &order, |o| o["payment_status"] == "REFUNDED")
        .await;
    assert_eq!(refunded["amount_paid"], 1250);
    assert_eq!(refunded["amount_refunded"], 1250);
    assert_eq!(refunded["refunds"].as_array().unwrap().len(), 2);
    // The timeline holds the status changes and, tagged apart, each change of each refund.
    let timeline = refunded["timeline"].as_array().unwrap();
    let status_entries: Vec<&str> = timeline
        .iter()
        .filter(|e| e["kind"] == "status")
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(status_entries, ["CONFIRMED", "PAID"]);
    let refund_entries: Vec<(&str, i64)> = timeline
        .iter()
        .filter(|e| e["kind"] == "refund")
        .map(|e| {
            (
                e["refund_status"].as_str().unwrap(),
                e["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refund_entries,
        [
            ("REQUESTED", 500),
            ("SUCCEEDED", 500),
            ("REQUESTED", 750),
            ("SUCCEEDED", 750)
        ]
    );
    assert_eq!(timeline.last().unwrap()["actor"], "system:payments");

    // Every change of each refund was announced, with the order's money after it.
    let seen: Vec<Value> = events
        .take(4)
        .map(|m| serde_json::from_slice::<Value>(&m.payload).unwrap())
        .collect::<Vec<_>>()
        .await;
    let statuses: Vec<(&str, i64)> = seen
        .iter()
        .map(|e| {
            (
                e["data"]["status"].as_str().unwrap(),
                e["data"]["amount_refunded"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("REQUESTED", 0),
            ("SUCCEEDED", 500),
            ("REQUESTED", 500),
            ("SUCCEEDED", 1250)
        ]
    );
    assert_eq!(seen[3]["data"]["payment_status"], "REFUNDED");
    let report = reconciliation(&app, &admin).await;
    assert_eq!(report["consistent"], true, "{report}");
}

#[tokio::test]
async fn the_api_refuses_refunds_it_can_tell_are_wrong() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = paid_order(&app, &psp, &client, "psp-pay-2").await;
    let body = json!({"amount": 100, "reason": "goodwill"});

    let too_much = refund(
        &app,
        &admin,
        &order,
        "k1",
        json!({"amount": 1251, "reason": "x"}),
    )
    .await;
    let problem = assert_problem(too_much, 409).await;
    assert_eq!(problem["refundable"], 1250);
    for (bad, field) in [
        (json!({"amount": 0, "reason": "x"}), "amount"),
        (json!({"amount": 10, "reason": " "}), "reason"),
    ] {
        let problem = assert_problem(refund(&app, &admin, &order, "k2", bad).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let no_key = app
        .post_as(
            &admin,
            &format!("/api/v1/orders/{order}/refunds"),
            &body,
            &[],
        )
        .await;
    assert_problem(no_key, 400).await;
    let by_client = app
        .post_as(
            &client,
            &format!("/api/v1/orders/{order}/refunds"),
            &body,
            &[("idempotency-key", "k3")],
        )
        .await;
    assert_problem(by_client, 403).await;
    let unknown = refund(
        &app,
        &admin,
        &Uuid::now_v7().to_string(),
        "k4",
        body.clone(),
    )
    .await;
    assert_problem(unknown, 404).await;
    let mug = app.create_product("Unpaid", 300, 5).await;
    let unpaid = app.place_settled(&client, mug, 1).await;
    let unpaid = refund(
        &app,
        &admin,
        unpaid["id"].as_str().unwrap(),
        "k5",
        body.clone(),
    )
    .await;
    let problem = assert_problem(unpaid, 409).await;
    assert_eq!(problem["payment_status"], "UNPAID");

    // The same key is the same refund; with another body it is refused.
    let first: Value = refund(&app, &admin, &order, "k6", body.clone())
        .await
        .json()
        .await
        .unwrap();
    app.order_when(&client, &order, |o| {
        o["refunds"].as_array().is_some_and(|r| r.len() == 1)
    })
    .await;
    let again = refund(&app, &admin, &order, "k6", body.clone()).await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = refund(
        &app,
        &admin,
        &order,
        "k6",
        json!({"amount": 101, "reason": "goodwill"}),
    )
    .await;
    assert_problem(other, 422).await;
    psp.next_command().await;
    app.quiescent().await;
    psp.nothing_waiting().await;
}

#[tokio::test]
async fn racing_refunds_never_add_up_to_more_than_was_paid() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = paid_order(&app, &psp, &client, "psp-pay-3").await;

    // Over HTTP: both pass the api's check at once; the order worker takes one.
    let body = json!({"amount": 1000, "reason": "race"});
    let (a, b) = tokio::join!(
        refund(&app, &admin, &order, "race-a", body.clone()),
        refund(&app, &admin, &order, "race-b", body.clone()),
    );
    let accepted = [a.status(), b.status()]
        .iter()
        .filter(|s| s.as_u16() == 202)
        .count();
    assert!(accepted >= 1, "{} {}", a.status(), b.status());
    app.quiescent().await;
    // On the bus, past the api: two commands that each fit but not together.
    let order_id: Uuid = order.parse().unwrap();
    for key in ["bus-a", "bus-b"] {
        let command = RefundOrder {
            refund_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()),
            order_id,
            amount: common::money::Money::new(200).unwrap(),
            reason: "bus".into(),
            actor: "system:test".into(),
            payment_reference: None,
        };
        app.state.bus.publish(command, "test").await.unwrap();
    }
    app.quiescent().await;

    let held: Vec<i64> = sqlx::query_scalar(
        "SELECT amount FROM refunds WHERE order_id = $1 AND status <> 'FAILED' ORDER BY amount",
    )
    .bind(order_id)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert_eq!(held, [200, 1000], "one of each pair recorded");
    let over: Vec<String> = app
        .dead_letter_reasons()
        .await
        .into_iter()
        .filter(|r| r.contains("over-refund"))
        .collect();
    assert_eq!(over.len(), accepted, "{over:?}");
    for _ in 0..2 {
        psp.next_command().await;
    }
    psp.nothing_waiting().await;
}

#[tokio::test]
async fn a_duplicate_refunded_event_is_applied_once() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = paid_order(&app, &psp, &client, "psp-pay-4").await;
    let res = refund(
        &app,
        &admin,
        &order,
        "d-1",
        json!({"amount": 300, "reason": "late"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let (command, _) = psp.next_command().await;

    psp.refunded(&command, "psp-refund-4").await;
    psp.refunded(&command, "psp-refund-4").await;
    app.quiescent().await;
    let order_now = app
        .order_when(&client, &order, |o| {
            o["refunds"][0]["status"] == "SUCCEEDED"
        })
        .await;
    assert_eq!(order_now["amount_refunded"], 300);
    assert_eq!(order_now["payment_status"], "PARTIALLY_REFUNDED");
    assert!(
        app.dead_letter_reasons().await.is_empty(),
        "a duplicate is not an error"
    );

    // Another outcome for a refund already settled is refused, visibly, and changes nothing.
    psp.refunded(&command, "psp-refund-4-again").await;
    app.quiescent().await;
    let reasons = app.dead_letter_reasons().await;
    assert!(
        reasons.iter().any(|r| r.contains("already SUCCEEDED")),
        "{reasons:?}"
    );
    let order_now = app.order_when(&client, &order, |_| true).await;
    assert_eq!(order_now["amount_refunded"], 300);
}

#[tokio::test]
async fn a_failed_refund_leaves_the_money_counted_as_paid() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = paid_order(&app, &psp, &client, "psp-pay-5").await;
    let res = refund(
        &app,
        &admin,
        &order,
        "f-1",
        json!({"amount": 1250, "reason": "all"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let (command, _) = psp.next_command().await;

    psp.refund_failed(&command, "psp-fail-5").await;
    let failed = app
        .order_when(&client, &order, |o| o["refunds"][0]["status"] == "FAILED")
        .await;
    assert_eq!(failed["payment_status"], "PAID");
    assert_eq!(failed["amount_paid"], 1250);
    assert_eq!(failed["amount_refunded"], 0);
    assert_eq!(failed["refunds"][0]["failure_reason"], "card closed");

    // The amount it held is free again: the refund may be asked for anew.
    let res = refund(
        &app,
        &admin,
        &order,
        "f-2",
        json!({"amount": 1250, "reason": "again"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let (command, _) = psp.next_command().await;
    psp.refunded(&command, "psp-refund-5").await;
    app.order_when(&client, &order, |o| o["payment_status"] == "REFUNDED")
        .await;
    assert_eq!(reconciliation(&app, &admin).await["consistent"], true);
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it_in_full() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = paid_order(&app, &psp, &client, "psp-pay-6").await;
    let path = format!("/api/v1/orders/{order}/cancel");

    let by_customer = app
        .post_empty_as(&client, &path, &[("prefer", "wait=5")])
        .await;
    assert_problem(by_customer, 409).await;
    let res = app
        .post_empty_as(&admin, &path, &[("prefer", "wait=10")])
        .await;
    assert_eq!(res.status(), 200);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["refunds"][0]["status"], "REQUESTED");
    assert_eq!(cancelled["refunds"][0]["amount"], 1250);

    let (command, msg_id) = psp.next_command().await;
    assert_eq!(command["data"]["amount"], 1250);
    assert_eq!(command["data"]["payment_reference"], "psp-pay-6");
    assert_eq!(
        msg_id,
        format!("refund-{}", cancelled["refunds"][0]["id"].as_str().unwrap())
    );
    psp.refunded(&command, "psp-refund-6").await;
    let refunded = app
        .order_when(&client, &order, |o| o["payment_status"] == "REFUNDED")
        .await;
    assert_eq!(refunded["amount_refunded"], 1250);
    assert_eq!(refunded["status"], "CANCELLED");
    // Nothing is left to refund.
    let more = refund(
        &app,
        &admin,
        &order,
        "c-1",
        json!({"amount": 1, "reason": "x"}),
    )
    .await;
    assert_problem(more, 409).await;
}

/// The refund queue: payments with money still to give back.
async fn queue(app: &TestApp, admin: &TestUser) -> Vec<Value> {
    let res = app
        .get_as(admin, "/api/v1/admin/payments?outcome=refund_required")
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_refund_required_queue_is_emptied_by_refunds() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    // Paid the wrong amount; paid twice; paid after it was cancelled.
    let wrong = app.place_settled(&client, mug, 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    psp.pay(&wrong, 999, "q-wrong").await;
    let twice = paid_order(&app, &psp, &client, "q-first").await;
    psp.pay(&twice, 1250, "q-twice").await;
    let late = app.place_settled(&client, mug, 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_empty_as(
            &client,
            &format!("/api/v1/orders/{late}/cancel"),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(res.status(), 200);
    psp.pay(&late, 1250, "q-late").await;

    let waiting = eventually(
        Duration::from_secs(20),
        "three payments to refund",
        || async {
            let items = queue(&app, &admin).await;
            (items.len() == 3).then_some(items)
        },
    )
    .await;
    let mut references: Vec<&str> = waiting
        .iter()
        .map(|p| p["provider_reference"].as_str().unwrap())
        .collect();
    references.sort_unstable();
    assert_eq!(references, ["q-late", "q-twice", "q-wrong"]);

    for payment in &waiting {
        let reference = payment["provider_reference"].as_str().unwrap();
        let res = refund(
            &app,
            &admin,
            payment["order_id"].as_str().unwrap(),
            reference,
            json!({"amount": payment["awaiting_refund"], "reason": "not ours to keep",
                   "payment_reference": reference}),
        )
        .await;
        assert_eq!(res.status(), 202, "{reference}");
        let (command, _) = psp.next_command().await;
        assert_eq!(command["data"]["payment_reference"], reference);
        psp.refunded(&command, &format!("{reference}-back")).await;
    }
    eventually(Duration::from_secs(20), "the queue emptied", || async {
        queue(&app, &admin).await.is_empty().then_some(())
    })
    .await;
    // The order paid twice keeps the payment that paid it.
    let kept = app.order_when(&client, &twice, |_| true).await;
    assert_eq!(kept["payment_status"], "PAID");
    assert_eq!(kept["amount_paid"], 1250);
    assert_eq!(kept["amount_refunded"], 0);
    assert_eq!(kept["refunds"][0]["payment_reference"], "q-twice");
    assert_eq!(kept["refunds"][0]["status"], "SUCCEEDED");
    let all: Value = app
        .get_as(&admin, "/api/v1/admin/payments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    assert_eq!(reconciliation(&app, &admin).await["consistent"], true);
}

#[tokio::test]
async fn the_reconciliation_reports_money_that_does_not_add_up() {
    let app = spawn_system().await;
    let psp = PaymentSystem::connect(&app).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = paid_order(&app, &psp, &client, "psp-pay-7").await;
    let report = reconciliation(&app, &admin).await;
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["money_drift"], json!([]));

    sqlx::query("UPDATE orders SET amount_paid = amount_paid + 1 WHERE id = $1::uuid")
        .bind(&order)
        .execute(&app.state.db)
        .await
        .unwrap();
    let report = reconciliation(&app, &admin).await;
    assert_eq!(report["consistent"], false);
    let drift = &report["money_drift"][0];
    assert_eq!(drift["order_id"], order.as_str());
    assert_eq!(drift["amount_paid"], 1251);
    assert_eq!(drift["payments_applied"], 1250);
    assert_eq!(drift["difference"], 1);
    assert!(report["hint"].as_str().unwrap().contains("amount_paid"));
}
