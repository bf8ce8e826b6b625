//! The payment system's answers to refund commands: applied once, a failure frees the amount
//! again, and refunds racing each other never give back more than was paid (the losers are
//! recorded REFUSED and never reach the payment system).

use crate::helpers::PaidShop;
use common::messages::RefundOrder;
use serde_json::{Value, json};
use uuid::Uuid;

/// The paid order with a refund of 300 asked for; returns the refund command as the payment
/// system read it.
async fn a_refund_of_300_sent(paid: &PaidShop) -> Value {
    paid.ask_refund("d-1", 300, "late").await;
    paid.psp.next_command().await.0
}

#[tokio::test]
async fn a_duplicate_refunded_event_is_applied_once() {
    let paid = PaidShop::open("psp-pay-4").await;
    let command = a_refund_of_300_sent(&paid).await;

    paid.psp.refunded(&command, "psp-refund-4").await;
    paid.psp.refunded(&command, "psp-refund-4").await;
    paid.bus().quiescent().await;

    let order_now = paid
        .orders()
        .when(&paid.customer, &paid.order, |o| {
            o["refunds"][0]["status"] == "SUCCEEDED"
        })
        .await;
    assert_eq!(order_now["amount_refunded"], 300);
    assert_eq!(order_now["payment_status"], "PARTIALLY_REFUNDED");
    assert!(
        paid.bus().dead_letter_reasons().await.is_empty(),
        "a duplicate is not an error"
    );
}

#[tokio::test]
async fn another_outcome_for_a_settled_refund_is_refused_visibly_and_changes_nothing() {
    let paid = PaidShop::open("psp-pay-4").await;
    let command = a_refund_of_300_sent(&paid).await;
    paid.psp.refunded(&command, "psp-refund-4").await;
    paid.orders()
        .when(&paid.customer, &paid.order, |o| {
            o["refunds"][0]["status"] == "SUCCEEDED"
        })
        .await;

    paid.psp.refunded(&command, "psp-refund-4-again").await;
    paid.bus().quiescent().await;

    let reasons = paid.bus().dead_letter_reasons().await;
    assert!(
        reasons.iter().any(|r| r.contains("already SUCCEEDED")),
        "{reasons:?}"
    );
    let order_now = paid.orders().read(&paid.customer, &paid.order).await;
    assert_eq!(order_now["amount_refunded"], 300);
}

/// The paid order with a full refund asked for and refused by the payment system; returns the
/// order once the refund is FAILED.
async fn a_failed_full_refund(paid: &PaidShop) -> Value {
    paid.ask_refund("f-1", 1250, "all").await;
    let (command, _) = paid.psp.next_command().await;
    paid.psp.refund_failed(&command, "psp-fail-5").await;
    paid.orders()
        .when(&paid.customer, &paid.order, |o| {
            o["refunds"][0]["status"] == "FAILED"
        })
        .await
}

#[tokio::test]
async fn a_failed_refund_leaves_the_money_counted_as_paid() {
    let paid = PaidShop::open("psp-pay-5").await;

    let failed = a_failed_full_refund(&paid).await;

    assert_eq!(failed["payment_status"], "PAID");
    assert_eq!(failed["amount_paid"], 1250);
    assert_eq!(failed["amount_refunded"], 0);
    assert_eq!(failed["refunds"][0]["failure_reason"], "card closed");
}

#[tokio::test]
async fn the_amount_a_failed_refund_held_may_be_refunded_anew() {
    let paid = PaidShop::open("psp-pay-5").await;
    a_failed_full_refund(&paid).await;

    paid.ask_refund("f-2", 1250, "again").await;
    let (command, _) = paid.psp.next_command().await;
    paid.psp.refunded(&command, "psp-refund-5").await;

    paid.orders()
        .when(&paid.customer, &paid.order, |o| {
            o["payment_status"] == "REFUNDED"
        })
        .await;
    assert_eq!(
        paid.payments().reconciliation(&paid.admin).await["consistent"],
        true
    );
}

#[tokio::test]
async fn racing_refunds_never_add_up_to_more_than_was_paid() {
    let paid = PaidShop::open("psp-pay-3").await;
    let ask = |key| {
        paid.payments().refund(
            &paid.admin,
            &paid.order,
            key,
            json!({"amount": 1000, "reason": "race"}),
        )
    };

    // Over HTTP: both pass the api's check at once; the order worker takes one.
    let (a, b) = tokio::join!(ask("race-a"), ask("race-b"));
    let accepted = [a.status(), b.status()]
        .iter()
        .filter(|s| s.as_u16() == 202)
        .count();
    assert!(accepted >= 1, "{} {}", a.status(), b.status());
    paid.bus().quiescent().await;
    // On the bus, past the api: two commands that each fit but not together.
    let order_id: Uuid = paid.order.parse().unwrap();
    for key in ["bus-a", "bus-b"] {
        let command = RefundOrder {
            refund_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()),
            order_id,
            amount: common::money::Money::new(200).unwrap(),
            reason: common::domain::Reason::new("bus").unwrap(),
            actor: common::domain::Actor::new("system:test").unwrap(),
            payment_reference: None,
        };
        paid.bus().publish(command, "test").await;
    }
    paid.bus().quiescent().await;

    let held: Vec<i64> = sqlx::query_scalar(
        "SELECT amount FROM refunds WHERE order_id = $1 AND status = 'REQUESTED' ORDER BY amount",
    )
    .bind(order_id)
    .fetch_all(&paid.state.db)
    .await
    .unwrap();
    assert_eq!(held, [200, 1000], "one of each pair requested");
    let refused: Vec<String> = sqlx::query_scalar(
        "SELECT failure_reason FROM refunds WHERE order_id = $1 AND status = 'REFUSED'",
    )
    .bind(order_id)
    .fetch_all(&paid.state.db)
    .await
    .unwrap();
    assert_eq!(refused.len(), accepted, "the others recorded REFUSED");
    assert!(
        refused.iter().all(|r| r.starts_with("over-refund")),
        "{refused:?}"
    );
    for _ in 0..2 {
        paid.psp.next_command().await;
    }
    paid.psp.nothing_waiting().await;
}
