//! The answer to a placement accepted without waiting (`202`, `PENDING`) prices its lines from
//! the catalogue as it is: quotes the api remembers are forgotten with every product write,
//! on this replica and (told over NATS) on the others.

use crate::helpers::{Catalogue, Replica, TestUser, catalogue_with, order_of};
use common::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

/// Long enough that no quote expires by itself during a test.
const CACHED: [(&str, &str); 1] = [("CATALOGUE_CACHE_TTL_MS", "60000")];

/// The unit price of the one line of a cup placed by `customer` through `base`, as the `202`
/// answers it.
async fn pending_price(base: &str, customer: &TestUser, cup: &str) -> i64 {
    let cup: uuid::Uuid = cup.parse().unwrap();
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&customer.token)
        .json(&order_of(&[(cup, 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(accepted["total"], accepted["items"][0]["unit_price"]);
    accepted["items"][0]["unit_price"].as_i64().unwrap()
}

async fn shop() -> (Catalogue, TestUser) {
    let shop = catalogue_with(&CACHED).await;
    let customer = shop.app.create_user(Role::Client).await;
    (shop, customer)
}

#[tokio::test]
async fn a_pending_order_is_priced_as_the_catalogue_is_after_a_price_change() {
    let (shop, customer) = shop().await;
    let base = &shop.app.address;
    assert_eq!(pending_price(base, &customer, &shop.id).await, 1250);

    assert_eq!(shop.update(json!({"price": 990})).await.status(), 200);

    assert_eq!(pending_price(base, &customer, &shop.id).await, 990);
}

#[tokio::test]
async fn a_price_changed_on_one_replica_prices_the_pending_orders_of_another() {
    let (shop, customer) = shop().await;
    let other: Replica = shop.app.replica(&CACHED).await;
    assert_eq!(
        pending_price(&other.address, &customer, &shop.id).await,
        1250
    );

    assert_eq!(shop.update(json!({"price": 175})).await.status(), 200);

    common::testing::eventually(
        Duration::from_secs(10),
        "the other replica prices the cup anew",
        || async {
            (pending_price(&other.address, &customer, &shop.id).await == 175).then_some(())
        },
    )
    .await;
}
