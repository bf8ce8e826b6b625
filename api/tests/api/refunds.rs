//! Refunds asked for by ADMINs and the payment status beside the lifecycle. The payment system
//! is played by a plain NATS client: it reads `payments.cmd.refund` through its own durable
//! consumer on PAYMENTS_CMD and answers with envelopes it writes itself.

use crate::helpers::{PaidShop, assert_problem, id_of};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn a_refund_asked_for_is_sent_to_the_payment_system_and_gives_nothing_back_yet() {
    let paid = PaidShop::open("psp-pay-1").await;

    let requested = paid.ask_refund("r-1", 500, "one chip").await;

    assert_eq!(requested["status"], "REQUESTED");
    assert_eq!(requested["amount"], 500);
    let (command, msg_id) = paid.psp.next_command().await;
    assert_eq!(command["type"], "payments.refund");
    assert_eq!(command["data"]["refund_id"], requested["id"]);
    assert_eq!(command["data"]["amount"], 500);
    assert_eq!(command["data"]["payment_reference"], "psp-pay-1");
    assert_eq!(msg_id, format!("refund-{}", id_of(&requested)));
    let listed = paid
        .orders()
        .when(&paid.customer, &paid.order, |o| {
            o["refunds"][0]["status"] == "REQUESTED"
        })
        .await;
    assert_eq!(
        listed["payment_status"], "PAID",
        "a requested refund gave nothing back yet"
    );
}

/// The paid order refunded 500 then the remaining 750, both answered; with the subscription to
/// refund changes opened before; returns the order once REFUNDED.
async fn refunded_in_two_steps(paid: &PaidShop) -> (Value, async_nats::Subscriber) {
    let events = paid
        .psp
        .client
        .subscribe(format!(
            "{}orders.evt.refund_changed",
            paid.psp.subject_prefix
        ))
        .await
        .unwrap();
    paid.ask_refund("r-1", 500, "one chip").await;
    let (command, _) = paid.psp.next_command().await;
    paid.psp.refunded(&command, "psp-refund-1").await;
    let partly = paid
        .orders()
        .when(&paid.customer, &paid.order, |o| {
            o["payment_status"] == "PARTIALLY_REFUNDED"
        })
        .await;
    assert_eq!(partly["amount_refunded"], 500);
    assert_eq!(partly["refunds"][0]["status"], "SUCCEEDED");
    assert_eq!(partly["refunds"][0]["provider_reference"], "psp-refund-1");
    assert_eq!(partly["status"], "PAID", "the lifecycle does not change");
    paid.ask_refund("r-2", 750, "the rest").await;
    let (command, _) = paid.psp.next_command().await;
    assert_eq!(command["data"]["amount"], 750);
    paid.psp.refunded(&command, "psp-refund-2").await;
    let refunded = paid
        .orders()
        .when(&paid.customer, &paid.order, |o| {
            o["payment_status"] == "REFUNDED"
        })
        .await;
    (refunded, events)
}

#[tokio::test]
async fn a_partial_then_a_full_refund_move_the_payment_status() {
    let paid = PaidShop::open("psp-pay-1").await;

    let (refunded, _) = refunded_in_two_steps(&paid).await;

    assert_eq!(refunded["amount_paid"], 1250);
    assert_eq!(refunded["amount_refunded"], 1250);
    assert_eq!(refunded["refunds"].as_array().unwrap().len(), 2);
    let report = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
}

#[tokio::test]
async fn the_timeline_holds_each_change_of_each_refund_tagged_apart_from_status_changes() {
    let paid = PaidShop::open("psp-pay-1").await;

    let (refunded, _) = refunded_in_two_steps(&paid).await;

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
}

#[tokio::test]
async fn every_change_of_each_refund_is_announced_with_the_orders_money_after_it() {
    let paid = PaidShop::open("psp-pay-1").await;

    let (_, events) = refunded_in_two_steps(&paid).await;

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
}

#[tokio::test]
async fn the_api_refuses_refunds_it_can_tell_are_wrong() {
    let paid = PaidShop::open("psp-pay-2").await;
    let mug = paid.products().create("Unpaid", 300, 5).await;
    let unpaid = paid.confirmed_order(mug, 1).await;
    let unknown = Uuid::now_v7().to_string();
    let (admin, order) = (&paid.admin, paid.order.as_str());
    let goodwill = || json!({"amount": 100, "reason": "goodwill"});
    let too_much = json!({"amount": 1251, "reason": "x"});
    let nothing = json!({"amount": 0, "reason": "x"});
    let no_reason = json!({"amount": 10, "reason": " "});

    // Who asks, for which order, under which key, what; the problem and what it says.
    for (who, order, key, body, status, says) in [
        (
            admin,
            order,
            Some("k1"),
            too_much,
            409,
            Some(("/refundable", json!(1250))),
        ),
        (
            admin,
            order,
            Some("k2"),
            nothing,
            422,
            Some(("/errors/0/field", json!("amount"))),
        ),
        (
            admin,
            order,
            Some("k2"),
            no_reason,
            422,
            Some(("/errors/0/field", json!("reason"))),
        ),
        (admin, order, None, goodwill(), 400, None),
        (&paid.customer, order, Some("k3"), goodwill(), 403, None),
        (admin, unknown.as_str(), Some("k4"), goodwill(), 404, None),
        (
            admin,
            unpaid.as_str(),
            Some("k5"),
            goodwill(),
            409,
            Some(("/payment_status", json!("UNPAID"))),
        ),
    ] {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        let path = format!("/api/v1/orders/{order}/refunds");
        let problem = assert_problem(paid.post_as(who, &path, &body, &headers).await, status).await;
        if let Some((pointer, value)) = says {
            assert_eq!(problem.pointer(pointer), Some(&value), "{body}: {problem}");
        }
    }
}

/// A goodwill refund of 100 asked for under the key `k6` and recorded on the order.
async fn a_refund_recorded_under_k6(paid: &PaidShop) -> Value {
    let refund = paid.ask_refund("k6", 100, "goodwill").await;
    paid.orders()
        .when(&paid.customer, &paid.order, |o| {
            o["refunds"].as_array().is_some_and(|r| r.len() == 1)
        })
        .await;
    refund
}

#[tokio::test]
async fn a_refund_asked_for_again_under_its_key_is_the_same_refund_sent_once() {
    let paid = PaidShop::open("psp-pay-2").await;
    let first = a_refund_recorded_under_k6(&paid).await;

    let again = paid.ask_refund("k6", 100, "goodwill").await;

    assert_eq!(again["id"], first["id"]);
    paid.psp.next_command().await;
    paid.bus().quiescent().await;
    paid.psp.nothing_waiting().await;
}

#[tokio::test]
async fn another_refund_under_a_used_key_is_422() {
    let paid = PaidShop::open("psp-pay-2").await;
    a_refund_recorded_under_k6(&paid).await;

    let other = paid
        .payments()
        .refund(
            &paid.admin,
            &paid.order,
            "k6",
            json!({"amount": 101, "reason": "goodwill"}),
        )
        .await;

    assert_problem(other, 422).await;
}

#[tokio::test]
async fn another_refund_under_a_key_whose_refund_is_not_recorded_yet_is_422() {
    let paid = PaidShop::open("psp-pay-2").await;
    let first = paid.ask_refund("k7", 100, "goodwill").await;

    // At once: JetStream holds the first request, which the worker may not have recorded.
    let other = paid
        .payments()
        .refund(
            &paid.admin,
            &paid.order,
            "k7",
            json!({"amount": 101, "reason": "goodwill"}),
        )
        .await;

    assert_problem(other, 422).await;
    let order = paid
        .orders()
        .when(&paid.customer, &paid.order, |o| {
            o["refunds"].as_array().is_some_and(|r| r.len() == 1)
        })
        .await;
    assert_eq!(order["refunds"][0]["id"], first["id"]);
    assert_eq!(
        order["refunds"][0]["amount"], 100,
        "the first request's figures"
    );
}

#[tokio::test]
async fn the_same_refund_asked_again_at_once_is_the_same_refund() {
    let paid = PaidShop::open("psp-pay-2").await;
    let first = paid.ask_refund("k8", 100, "goodwill").await;

    let again = paid.ask_refund("k8", 100, "goodwill").await;

    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["amount"], 100);
    paid.psp.next_command().await;
    paid.bus().quiescent().await;
    paid.psp.nothing_waiting().await;
}

#[tokio::test]
async fn the_reconciliation_reports_money_that_does_not_add_up() {
    let paid = PaidShop::open("psp-pay-7").await;
    let report = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["money_drift"], json!([]));

    sqlx::query("UPDATE orders SET amount_paid = amount_paid + 1 WHERE id = $1::uuid")
        .bind(&paid.order)
        .execute(&paid.state.db)
        .await
        .unwrap();

    let report = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(report["consistent"], false);
    let drift = &report["money_drift"][0];
    assert_eq!(drift["order_id"], paid.order.as_str());
    assert_eq!(drift["amount_paid"], 1251);
    assert_eq!(drift["payments_applied"], 1250);
    assert_eq!(drift["difference"], 1);
    assert!(report["hint"].as_str().unwrap().contains("amount_paid"));
}
