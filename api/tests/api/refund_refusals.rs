//! Refunds the order worker refuses: two refunds over what is left that both pass the api's
//! check are recorded, the second `REFUSED` with its reason, on the order, its timeline and its
//! event streams; `Prefer: wait` answers the worker's record. The order worker starts only once
//! the requests wait for it in the stream, so both pass the api's check.

use crate::helpers::{Shop, assert_problem, id_of, open, spawn_app};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use workers::dispatch::Incoming;

/// The api and the inventory worker, and the customer's order of one 1250 mug paid through
/// the order worker's own payment handler; the order worker is not running. Returns the order.
async fn paid_order_waiting_for_the_order_worker() -> (Shop, String) {
    let shop = Shop::around(spawn_app().await).await;
    shop.start_worker_kinds(shop.env.config(), &[workers::Kind::Inventory])
        .await;
    let mug = shop.products().create("Mug", 1250, 10).await;
    let order = shop.confirmed_order(mug, 1).await;
    let payment = crate::private_nats::payment(order.parse().unwrap(), 1250, "psp-refusals");
    let paid = workers::payments::succeeded(
        shop.bus().worker_context(),
        vec![Incoming::new(payment, "psp")],
    )
    .await;
    assert!(paid[0].is_ok(), "{paid:?}");
    (shop, order)
}

/// A refund of `amount` of `order` under `key`, with extra headers.
async fn refund(
    shop: &Shop,
    order: &str,
    key: &str,
    amount: i64,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let headers: Vec<(&str, &str)> = [("idempotency-key", key)]
        .into_iter()
        .chain(headers.iter().copied())
        .collect();
    shop.post_as(
        &shop.admin,
        &format!("/api/v1/orders/{order}/refunds"),
        &json!({"amount": amount, "reason": "damaged in transit"}),
        &headers,
    )
    .await
}

#[tokio::test]
async fn refunds_over_what_is_left_that_pass_the_api_together_are_recorded_the_second_refused() {
    let (shop, order) = paid_order_waiting_for_the_order_worker().await;
    let mut events = shop
        .state
        .nats
        .subscribe(
            shop.state
                .bus
                .namespace()
                .subject("orders.evt.refund_changed"),
        )
        .await
        .unwrap();
    let mut stream = open(
        &shop.address,
        &shop.admin,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    stream.next_of("order").await;
    assert_eq!(refund(&shop, &order, "r-1", 1000, &[]).await.status(), 202);
    assert_eq!(refund(&shop, &order, "r-2", 1000, &[]).await.status(), 202);

    shop.start_worker_kinds(shop.env.config(), &[workers::Kind::Orders])
        .await;

    let recorded = shop
        .orders()
        .when(&shop.admin, &order, |o| {
            o["refunds"].as_array().is_some_and(|r| r.len() == 2)
        })
        .await;
    let statuses: Vec<&str> = recorded["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["REQUESTED", "REFUSED"]);
    let refused = &recorded["refunds"][1];
    assert_eq!(refused["amount"], 1000);
    assert_eq!(refused["reason"], "damaged in transit");
    let why = refused["failure_reason"].as_str().unwrap();
    assert!(why.starts_with("over-refund"), "{why}");
    assert!(why.contains("250 left to refund"), "{why}");
    let entry = recorded["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["refund_status"] == "REFUSED")
        .expect("the refusal in the timeline");
    assert_eq!(entry["kind"], "refund");
    assert_eq!(entry["reason"], why);
    assert_eq!(entry["refund_id"], refused["id"]);
    // Announced like every refund change, and carried by the order's event stream.
    let announced = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = events.next().await.expect("subscribed");
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            if event["data"]["status"] == "REFUSED" {
                break event;
            }
        }
    })
    .await
    .expect("the refusal announced");
    assert_eq!(announced["data"]["reason"], why);
    assert_eq!(announced["data"]["amount_refunded"], 0);
    let (_, change) = stream.next_of("refund_changed").await;
    let change = if change["refund_status"] == "REQUESTED" {
        stream.next_of("refund_changed").await.1
    } else {
        change
    };
    assert_eq!(change["refund_status"], "REFUSED");
    assert_eq!(change["reason"], why);
    shop.bus().quiescent().await;
    assert!(
        shop.bus().dead_letter_reasons().await.is_empty(),
        "a refusal is recorded, not dead-lettered"
    );
    assert_eq!(
        shop.payments().reconciliation(&shop.admin).await["consistent"],
        true
    );
}

#[tokio::test]
async fn a_refund_waited_for_is_answered_409_naming_why_it_was_refused_or_201_once_requested() {
    let (shop, order) = paid_order_waiting_for_the_order_worker().await;
    assert_eq!(refund(&shop, &order, "w-1", 1000, &[]).await.status(), 202);
    let waited = refund(&shop, &order, "w-2", 1000, &[("prefer", "wait=10")]);
    let started = async {
        shop.bus()
            .commands_waiting(common::nats::ORDERS_CMD, 2)
            .await;
        shop.start_worker_kinds(shop.env.config(), &[workers::Kind::Orders])
            .await;
    };

    let (refused, ()) = tokio::join!(waited, started);

    let problem = assert_problem(refused, 409).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("over-refund"), "{detail}");
    assert_eq!(problem["refund_status"], "REFUSED");
    assert_eq!(problem["refundable"], 250);
    let refund_id = problem["refund_id"].as_str().unwrap().to_owned();
    // Its retry is the same refusal; a refund within what is left is recorded and answered.
    let retried = refund(&shop, &order, "w-2", 1000, &[]).await;
    assert_eq!(assert_problem(retried, 409).await["refund_id"], refund_id);
    let requested = refund(&shop, &order, "w-3", 250, &[("prefer", "wait=10")]).await;
    assert_eq!(requested.status(), 201);
    assert_eq!(requested.headers()["preference-applied"], "wait=10");
    let requested: Value = requested.json().await.unwrap();
    assert_eq!(requested["status"], "REQUESTED");
    assert_eq!(requested["amount"], 250);
    let order_now = shop.orders().read(&shop.admin, &order).await;
    let refunds = order_now["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 3);
    assert!(refunds.iter().any(|r| id_of(r) == refund_id));
    assert!(refunds.iter().any(|r| r["id"] == requested["id"]));
}
