//! Reading orders back: one order, alone or in its owner's list, and the list's pages and
//! filters, for customers and ADMINs.

use crate::helpers::{Shop, TestUser, assert_problem, id_of, order_of, spawn_app};
use common::domain::Role;
use serde_json::Value;

/// A two-line order by the customer, rejected for the tea out of stock, as placed (201).
async fn a_rejected_two_line_order(shop: &Shop) -> Value {
    let mug = shop.products().create("Mug", 1250, 10).await;
    let tea = shop.products().create("Tea", 399, 0).await;
    let res = shop
        .orders()
        .place(
            &shop.customer,
            &order_of(&[(tea, 1), (mug, 2)]),
            &[("prefer", "wait=10")],
        )
        .await;
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["status"], "REJECTED");
    placed
}

#[tokio::test]
async fn an_order_reads_the_same_as_placed_alone_and_in_its_owners_list() {
    let shop = Shop::open().await;
    let placed = a_rejected_two_line_order(&shop).await;

    let alone = shop.orders().read(&shop.customer, &id_of(&placed)).await;
    let list = shop.read(&shop.customer, "/api/v1/orders").await;

    assert_eq!(alone, placed);
    assert_eq!(list["items"][0], alone);
    let lines: Vec<&str> = alone["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(alone["rejection_reason"].is_string());
}

#[tokio::test]
async fn an_orders_timeline_shows_the_instants_as_postgresql_holds_them() {
    let shop = Shop::open().await;
    let placed = a_rejected_two_line_order(&shop).await;

    let alone = shop.orders().read(&shop.customer, &id_of(&placed)).await;

    // The timeline's instants, as PostgreSQL holds them (microseconds), oldest first.
    let stored: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT at FROM order_events WHERE order_id = $1 ORDER BY at, id")
            .bind(uuid::Uuid::parse_str(&id_of(&placed)).unwrap())
            .fetch_all(&shop.state.db)
            .await
            .unwrap();
    let shown: Vec<Value> = alone["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].clone())
        .collect();
    assert_eq!(
        shown,
        *serde_json::to_value(&stored).unwrap().as_array().unwrap()
    );
    assert_eq!(alone["timeline"][0]["from"], Value::Null);
    assert_eq!(alone["timeline"][0]["to"], "REJECTED");
}

#[tokio::test]
async fn another_customers_order_is_not_found_but_an_admin_sees_it() {
    let shop = Shop::open().await;
    let bob = shop.create_user(Role::Client).await;
    let p = shop.products().create("P", 100, 10).await;
    let order = shop.confirmed_order(p, 1).await;
    let path = format!("/api/v1/orders/{order}");

    assert_problem(shop.get_as(&bob, &path).await, 404).await;
    assert_eq!(shop.get_as(&shop.admin, &path).await.status(), 200);
}

#[tokio::test]
async fn an_order_id_that_is_not_a_uuid_is_400_and_an_unknown_one_404() {
    let shop = Shop::around(spawn_app().await).await;
    let unknown = format!("/api/v1/orders/{}", uuid::Uuid::new_v4());

    let malformed = shop
        .get_as(&shop.customer, "/api/v1/orders/not-a-uuid")
        .await;
    let missing = shop.get_as(&shop.customer, &unknown).await;

    assert_problem(malformed, 400).await;
    assert_problem(missing, 404).await;
}

/// The customer (Alice) with five confirmed orders and a rejected one, and Bob with one.
struct TwoCustomers {
    shop: Shop,
    bob: TestUser,
    /// Alice's orders, oldest first, the rejected one last.
    alices: Vec<String>,
}

async fn two_customers_ordering() -> TwoCustomers {
    let shop = Shop::open().await;
    let bob = shop.create_user(Role::Client).await;
    let p = shop.products().create("P", 100, 1000).await;
    let scarce = shop.products().create("Scarce", 100, 0).await;
    let mut alices = Vec::new();
    for _ in 0..5 {
        alices.push(shop.confirmed_order(p, 1).await);
    }
    let rejected = shop.orders().place_settled(&shop.customer, scarce, 1).await;
    assert_eq!(rejected["status"], "REJECTED");
    alices.push(id_of(&rejected));
    shop.orders().place_settled(&bob, p, 1).await;
    TwoCustomers { shop, bob, alices }
}

#[tokio::test]
async fn customers_page_through_their_own_orders_newest_first() {
    let TwoCustomers { shop, alices, .. } = two_customers_ordering().await;

    let seen = shop
        .every_page(&shop.customer, "/api/v1/orders?limit=2")
        .await;

    for order in &seen {
        assert_eq!(order["user_id"], shop.customer.id.to_string());
    }
    let seen: Vec<String> = seen.iter().map(id_of).collect();
    let newest_first: Vec<String> = alices.into_iter().rev().collect();
    assert_eq!(seen, newest_first, "newest first, no gaps or repeats");
}

#[tokio::test]
async fn customers_filter_their_orders_by_status_and_creation_time() {
    let TwoCustomers { shop, .. } = two_customers_ordering().await;

    let rejected = shop
        .read(&shop.customer, "/api/v1/orders?status=REJECTED")
        .await;
    let future = shop
        .read(
            &shop.customer,
            "/api/v1/orders?created_from=2999-01-01T00:00:00Z",
        )
        .await;

    assert_eq!(rejected["items"].as_array().unwrap().len(), 1);
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn admins_list_every_customers_orders_or_one_customers() {
    let TwoCustomers { shop, bob, .. } = two_customers_ordering().await;

    let bobs = shop
        .read(&shop.admin, &format!("/api/v1/orders?user_id={}", bob.id))
        .await;
    let all = shop.read(&shop.admin, "/api/v1/orders?limit=100").await;

    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);
    assert_eq!(all["items"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn a_customer_asking_for_another_customers_orders_or_a_bad_page_is_refused() {
    let shop = Shop::around(spawn_app().await).await;
    let bob = shop.create_user(Role::Client).await;
    let bobs = format!("/api/v1/orders?user_id={}", bob.id);

    for (query, status) in [
        (bobs.as_str(), 403),
        ("/api/v1/orders?limit=500", 422),
        ("/api/v1/orders?cursor=garbage", 400),
        ("/api/v1/orders?status=LOST", 400),
    ] {
        assert_problem(shop.get_as(&shop.customer, query).await, status).await;
    }
}
