//! A placement asking for more than a product has left is refused at once (`409`), once the
//! inventory worker's stock notice told the api what it left and PostgreSQL confirms it:
//! nothing is published or recorded, and its `Idempotency-Key` stays free. The read decides,
//! not the notice.

use crate::helpers::{Shop, TestUser, assert_problem, order_of};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Places `quantity` of `product` as `customer`, waiting for the outcome.
async fn place(
    shop: &Shop,
    customer: &TestUser,
    product: Uuid,
    quantity: i32,
) -> reqwest::Response {
    shop.orders()
        .place(
            customer,
            &order_of(&[(product, quantity)]),
            &[("prefer", "wait=10")],
        )
        .await
}

/// The customer's orders recorded.
async fn recorded(shop: &Shop) -> i64 {
    shop.count(&format!(
        "SELECT count(*) FROM orders WHERE user_id = '{}'",
        shop.customer.id
    ))
    .await
}

/// Places `quantity` of `product` until the answer is a `409` (the worker's stock notice has
/// reached the api); earlier attempts are recorded `REJECTED` by the worker. Returns the
/// problem.
async fn refused(shop: &Shop, product: Uuid, quantity: i32) -> Value {
    common::testing::eventually(
        Duration::from_secs(10),
        "a placement refused at once",
        || async {
            let res = place(shop, &shop.customer, product, quantity).await;
            if res.status() == 409 {
                return Some(assert_problem(res, 409).await);
            }
            assert_eq!(res.status(), 201);
            let order: Value = res.json().await.unwrap();
            assert_eq!(order["status"], "REJECTED", "{order}");
            None
        },
    )
    .await
}

/// Asserts `res` is a `201` with the order `CONFIRMED`.
async fn confirmed(res: reqwest::Response) {
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "CONFIRMED");
}

/// A shop whose one product sold its one unit, and whose api refuses it at once.
async fn sold_out() -> (Shop, Uuid) {
    let shop = Shop::open().await;
    let scarce = shop.products().create("Scarce", 100, 1).await;
    confirmed(place(&shop, &shop.customer, scarce, 1).await).await;
    refused(&shop, scarce, 1).await;
    (shop, scarce)
}

#[tokio::test]
async fn a_sold_out_product_is_refused_at_once_naming_the_line_and_nothing_is_recorded() {
    let shop = Shop::open().await;
    let scarce = shop.products().create("Scarce", 100, 3).await;
    confirmed(place(&shop, &shop.customer, scarce, 2).await).await;

    let problem = refused(&shop, scarce, 2).await;
    assert_eq!(
        problem["out_of_stock"],
        json!([{"product_id": scarce, "requested": 2, "available": 1}]),
        "{problem}"
    );
    assert_eq!(problem["type"], "/problems/out-of-stock", "{problem}");
    assert_eq!(problem["title"], "Out of stock", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("out of stock"),
        "{problem}"
    );

    // Refused again under a key: no order, no stock taken, and the key stays free.
    let before = recorded(&shop).await;
    let key = [("idempotency-key", "sold-out-1"), ("prefer", "wait=10")];
    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(scarce, 2)]), &key)
        .await;
    assert_problem(res, 409).await;
    assert_eq!(recorded(&shop).await, before);
    assert_eq!(shop.products().stock_of(scarce).await, 1);

    // What the stock still covers is placed.
    confirmed(place(&shop, &shop.customer, scarce, 1).await).await;

    // Restocked through the api, the same key places the order.
    let adjusted = shop
        .products()
        .adjust(&shop.admin, &scarce.to_string(), 5, "restock")
        .await;
    assert_eq!(adjusted.status(), 201);
    confirmed(
        shop.orders()
            .place(&shop.customer, &order_of(&[(scarce, 2)]), &key)
            .await,
    )
    .await;
    assert_eq!(shop.products().stock_of(scarce).await, 3);
}

#[tokio::test]
async fn stock_given_back_behind_the_notices_back_is_sold_the_read_decides() {
    let (shop, scarce) = sold_out().await;

    // Given back in SQL: no notice tells the api, which still believes the product sold out.
    sqlx::query("UPDATE products SET stock = 4, initial_stock = initial_stock + 4 WHERE id = $1")
        .bind(scarce)
        .execute(&shop.state.db)
        .await
        .unwrap();

    confirmed(place(&shop, &shop.customer, scarce, 4).await).await;
    assert_eq!(shop.products().stock_of(scarce).await, 0);
}

#[tokio::test]
async fn a_burst_of_placements_for_a_sold_out_product_is_refused_every_one() {
    let (shop, scarce) = sold_out().await;
    let before = recorded(&shop).await;

    // Sharing reads: each is answered from a read that began after it asked.
    let burst = (0..32).map(|_| place(&shop, &shop.customer, scarce, 1));
    let statuses: Vec<u16> = futures::future::join_all(burst)
        .await
        .iter()
        .map(|res| res.status().as_u16())
        .collect();

    assert_eq!(statuses, vec![409; 32]);
    assert_eq!(recorded(&shop).await, before);
}

#[tokio::test]
async fn a_product_without_stock_is_refused_at_once_after_its_first_refusal() {
    // Created with none: no placement ever took its stock, so only a refusal tells the api
    // what it has left (as it tells a replica started after a product sold out).
    let shop = Shop::open().await;
    let empty = shop.products().create("Empty", 100, 0).await;
    let first = place(&shop, &shop.customer, empty, 1).await;
    assert_eq!(first.status(), 201);
    assert_eq!(first.json::<Value>().await.unwrap()["status"], "REJECTED");

    let problem = refused(&shop, empty, 1).await;
    assert_eq!(
        problem["out_of_stock"],
        json!([{"product_id": empty, "requested": 1, "available": 0}]),
        "{problem}"
    );
}
