//! Retried order placements: under one idempotency key a retry is the same order, reserved
//! once, answered at once when its outcome is already known.

use crate::helpers::{Shop, assert_problem, id_of, order_of, place_command};
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_retry_of_a_settled_order_with_prefer_wait_answers_201_without_waiting() {
    let shop = Shop::open().await;
    let mug = shop.products().create("Mug", 1250, 10).await;
    let headers = [("prefer", "wait=10"), ("idempotency-key", "settled-retry")];
    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(mug, 1)]), &headers)
        .await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.unwrap();

    let started = Instant::now();
    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(mug, 1)]), &headers)
        .await;

    assert_eq!(res.status(), 201);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}: it waited for an outcome already known",
        started.elapsed()
    );
    let retry: Value = res.json().await.unwrap();
    assert_eq!(retry, first);
}

#[tokio::test]
async fn an_order_whose_command_was_already_stored_answers_201_without_waiting() {
    let shop = Shop::open().await;
    let mug = shop.products().create("Mug", 1250, 10).await;
    let key = "ack-lost";
    // An earlier attempt's command reached the stream, but its acknowledgement (and so the
    // idempotency record) did not make it back: the order settled without the api knowing.
    let order_id = api::orders::idempotent_order_id(shop.customer.id, key);
    shop.bus()
        .publish(
            place_command(order_id, shop.customer.id, mug, 1),
            "earlier-attempt",
        )
        .await;
    shop.orders()
        .when(&shop.customer, &order_id.to_string(), |o| {
            o["status"] != "PENDING"
        })
        .await;

    let started = Instant::now();
    let res = shop
        .orders()
        .place(
            &shop.customer,
            &order_of(&[(mug, 1)]),
            &[("prefer", "wait=10"), ("idempotency-key", key)],
        )
        .await;

    assert_eq!(res.status(), 201);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["id"], order_id.to_string());
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(shop.products().stock_of(mug).await, 9, "reserved once");
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_return_the_same_order_reserved_once() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let key = [("idempotency-key", "order-attempt-1")];
    let first: Value = shop
        .orders()
        .place(&shop.customer, &order_of(&[(p, 2)]), &key)
        .await
        .json()
        .await
        .unwrap();

    let retry = shop
        .orders()
        .place(&shop.customer, &order_of(&[(p, 2)]), &key)
        .await;

    assert!(
        retry.status() == 202 || retry.status() == 200,
        "{}",
        retry.status()
    );
    let second: Value = retry.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    shop.orders()
        .when(&shop.customer, &id_of(&first), |o| o["status"] != "PENDING")
        .await;
    assert_eq!(shop.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(shop.products().stock_of(p).await, 8, "reserved once");
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_order_is_422() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let key = [("idempotency-key", "order-attempt-1")];
    let first = shop
        .orders()
        .place(&shop.customer, &order_of(&[(p, 2)]), &key)
        .await;
    assert_eq!(first.status(), 202);

    let other_body = shop
        .orders()
        .place(&shop.customer, &order_of(&[(p, 3)]), &key)
        .await;

    assert_problem(other_body, 422).await;
}

#[tokio::test]
async fn racing_retries_with_one_idempotency_key_create_one_order() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 100).await;
    let body = order_of(&[(p, 1)]);
    let attempts = (0..10).map(|_| {
        shop.orders()
            .place(&shop.customer, &body, &[("idempotency-key", "race")])
    });

    let responses = futures::future::join_all(attempts).await;

    let mut ids = std::collections::HashSet::new();
    for res in responses {
        match res.status().as_u16() {
            200..=202 => {
                ids.insert(id_of(&res.json().await.unwrap()));
            }
            409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success names the same order");
    let id = ids.into_iter().next().unwrap();
    shop.orders()
        .when(&shop.customer, &id, |o| o["status"] != "PENDING")
        .await;
    assert_eq!(shop.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(shop.products().stock_of(p).await, 99);
}
