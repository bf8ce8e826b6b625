//! Money to give back: a paid order cancelled is refunded in full, and payments that should not
//! have been taken wait in the refund-required queue until refunded.

use crate::helpers::{PaidShop, PaymentSystem, Shop, TestApp, TestUser, assert_problem, id_of};
use common::testing::eventually;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn a_customer_cannot_cancel_a_paid_order() {
    let paid = PaidShop::open("psp-pay-6").await;

    let by_customer = paid
        .orders()
        .cancel(&paid.customer, &paid.order, &[("prefer", "wait=5")])
        .await;

    assert_problem(by_customer, 409).await;
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it_in_full() {
    let paid = PaidShop::open("psp-pay-6").await;

    let cancelled = paid.orders().cancel_settled(&paid.admin, &paid.order).await;

    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["refunds"][0]["status"], "REQUESTED");
    assert_eq!(cancelled["refunds"][0]["amount"], 1250);
    let (command, msg_id) = paid.psp.next_command().await;
    assert_eq!(command["data"]["amount"], 1250);
    assert_eq!(command["data"]["payment_reference"], "psp-pay-6");
    assert_eq!(
        msg_id,
        format!("refund-{}", id_of(&cancelled["refunds"][0]))
    );
    paid.psp.refunded(&command, "psp-refund-6").await;
    let refunded = paid
        .orders()
        .when(&paid.customer, &paid.order, |o| {
            o["payment_status"] == "REFUNDED"
        })
        .await;
    assert_eq!(refunded["amount_refunded"], 1250);
    assert_eq!(refunded["status"], "CANCELLED");
    let more = paid
        .payments()
        .refund(
            &paid.admin,
            &paid.order,
            "c-1",
            json!({"amount": 1, "reason": "x"}),
        )
        .await;
    assert_problem(more, 409).await;
}

/// The refund queue: payments with money still to give back.
async fn queue(app: &TestApp, admin: &TestUser) -> Vec<Value> {
    let page = app
        .read(admin, "/api/v1/admin/payments?outcome=refund_required")
        .await;
    page["items"].as_array().unwrap().clone()
}

/// Three payments to give back: of the wrong amount, a second one for a paid order, and one
/// for an order cancelled before. Returns the queue once it holds them and the order paid twice.
async fn three_payments_to_refund(shop: &Shop, psp: &PaymentSystem) -> (Vec<Value>, String) {
    let mug = shop.products().create("Mug", 1250, 10).await;
    let wrong = shop.confirmed_order(mug, 1).await;
    psp.pay(&wrong, 999, "q-wrong").await;
    let twice = psp.paid_order(shop, &shop.customer, "q-first").await;
    psp.pay(&twice, 1250, "q-twice").await;
    let late = shop.confirmed_order(mug, 1).await;
    shop.orders().cancel_settled(&shop.customer, &late).await;
    psp.pay(&late, 1250, "q-late").await;
    let waiting = eventually(
        Duration::from_secs(20),
        "three payments to refund",
        || async {
            let items = queue(shop, &shop.admin).await;
            (items.len() == 3).then_some(items)
        },
    )
    .await;
    (waiting, twice)
}

#[tokio::test]
async fn wrong_double_and_late_payments_wait_in_the_refund_required_queue() {
    let shop = Shop::open().await;
    let psp = PaymentSystem::connect(&shop).await;

    let (waiting, _) = three_payments_to_refund(&shop, &psp).await;

    let mut references: Vec<&str> = waiting
        .iter()
        .map(|p| p["provider_reference"].as_str().unwrap())
        .collect();
    references.sort_unstable();
    assert_eq!(references, ["q-late", "q-twice", "q-wrong"]);
}

#[tokio::test]
async fn the_refund_required_queue_is_emptied_by_refunds() {
    let shop = Shop::open().await;
    let psp = PaymentSystem::connect(&shop).await;
    let (waiting, twice) = three_payments_to_refund(&shop, &psp).await;

    for payment in &waiting {
        let reference = payment["provider_reference"].as_str().unwrap();
        let res = shop
            .payments()
            .refund(
                &shop.admin,
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
        queue(&shop, &shop.admin).await.is_empty().then_some(())
    })
    .await;
    // A refund asked for already empties the queue; its answer is recorded after. The order
    // paid twice keeps the payment that paid it.
    let kept = shop
        .orders()
        .when(&shop.customer, &twice, |o| {
            o["refunds"][0]["status"] == "SUCCEEDED"
        })
        .await;
    assert_eq!(kept["payment_status"], "PAID");
    assert_eq!(kept["amount_paid"], 1250);
    assert_eq!(kept["amount_refunded"], 0);
    assert_eq!(kept["refunds"][0]["payment_reference"], "q-twice");
    assert_eq!(kept["refunds"][0]["status"], "SUCCEEDED");
    let all = shop.read(&shop.admin, "/api/v1/admin/payments").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    assert_eq!(
        shop.payments().reconciliation(&shop.admin).await["consistent"],
        true
    );
}
