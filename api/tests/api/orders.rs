//! Placing orders end to end: api → JetStream → order worker → inventory worker → PostgreSQL.

use crate::helpers::{Shop, assert_problem, id_of, order_of, spawn_app};
use serde_json::{Value, json};

/// The customer's two-line order of 2 mugs (1250 each) and 1 tea (399), as placed: 202.
async fn mug_and_tea_placed(shop: &Shop) -> (reqwest::Response, uuid::Uuid, uuid::Uuid) {
    let mug = shop.products().create("Mug", 1250, 10).await;
    let tea = shop.products().create("Tea", 399, 5).await;
    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(mug, 2), (tea, 1)]), &[])
        .await;
    (res, mug, tea)
}

#[tokio::test]
async fn placing_an_order_answers_202_pending_with_its_location() {
    let shop = Shop::open().await;

    let (res, _, _) = mug_and_tea_placed(&shop).await;

    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(location, format!("/api/v1/orders/{}", id_of(&accepted)));
}

#[tokio::test]
async fn a_placed_order_is_confirmed_with_its_lines_priced_and_its_stock_taken() {
    let shop = Shop::open().await;
    let (res, mug, tea) = mug_and_tea_placed(&shop).await;
    let accepted: Value = res.json().await.unwrap();

    let order = shop
        .orders()
        .when(&shop.customer, &id_of(&accepted), |o| {
            o["status"] != "PENDING"
        })
        .await;

    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["total"], 2 * 1250 + 399);
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["user_id"], shop.customer.id.to_string());
    let mug_line = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["product_id"] == mug.to_string())
        .unwrap();
    assert_eq!(mug_line["name"], "Mug");
    assert_eq!(mug_line["unit_price"], 1250);
    assert_eq!(mug_line["subtotal"], 2500);
    let timeline: Vec<(&str, &str)> = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["to"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        timeline,
        vec![("CONFIRMED", "system:inventory")],
        "recorded once, with its stock"
    );
    assert_eq!(shop.products().stock_of(mug).await, 8);
    assert_eq!(shop.products().stock_of(tea).await, 4);
}

#[tokio::test]
async fn prefer_wait_answers_201_with_the_settled_order() {
    let shop = Shop::open().await;
    let mug = shop.products().create("Mug", 1250, 10).await;

    let res = shop
        .orders()
        .place(
            &shop.customer,
            &order_of(&[(mug, 1)]),
            &[("prefer", "wait=10")],
        )
        .await;

    assert_eq!(res.status(), 201);
    assert!(res.headers().contains_key("location"));
    assert_eq!(res.headers()["preference-applied"], "wait=10");
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "CONFIRMED");
}

#[tokio::test]
async fn a_price_change_after_ordering_does_not_alter_the_order() {
    let shop = Shop::open().await;
    let mug = shop.products().create("Mug", 1000, 10).await;
    let order = shop.orders().place_settled(&shop.customer, mug, 3).await;

    sqlx::query("UPDATE products SET price = 9999, name = 'Renamed' WHERE id = $1")
        .bind(mug)
        .execute(&shop.state.db)
        .await
        .unwrap();

    let again = shop.orders().read(&shop.customer, &id_of(&order)).await;
    assert_eq!(again["items"][0]["unit_price"], 1000);
    assert_eq!(again["items"][0]["name"], "Mug");
    assert_eq!(again["total"], 3000);
}

#[tokio::test]
async fn short_stock_rejects_the_whole_order_naming_the_line_and_reserves_nothing() {
    let shop = Shop::open().await;
    let plenty = shop.products().create("Plenty", 100, 50).await;
    let scarce = shop.products().create("Scarce", 100, 2).await;

    let res = shop
        .orders()
        .place(
            &shop.customer,
            &order_of(&[(plenty, 5), (scarce, 3)]),
            &[("prefer", "wait=10")],
        )
        .await;

    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "REJECTED");
    let reason = order["rejection_reason"].as_str().unwrap();
    assert!(
        reason.contains(&scarce.to_string()) && reason.contains("3 requested, 2 available"),
        "{reason}"
    );
    assert!(!reason.contains(&plenty.to_string()), "{reason}");
    assert_eq!(shop.products().stock_of(plenty).await, 50, "all or nothing");
    assert_eq!(shop.products().stock_of(scarce).await, 2);
}

#[tokio::test]
async fn unknown_and_archived_products_reject_the_order() {
    let shop = Shop::open().await;
    let gone = shop.products().create("Gone", 100, 10).await;
    sqlx::query("UPDATE products SET archived_at = now() WHERE id = $1")
        .bind(gone)
        .execute(&shop.state.db)
        .await
        .unwrap();
    let ghost = uuid::Uuid::new_v4();

    let order = shop
        .orders()
        .place_body_settled(&shop.customer, &order_of(&[(gone, 1), (ghost, 1)]))
        .await;

    assert_eq!(order["status"], "REJECTED");
    let reason = order["rejection_reason"].as_str().unwrap();
    assert!(
        reason.contains("no longer sold") && reason.contains("does not exist"),
        "{reason}"
    );
    assert_eq!(shop.products().stock_of(gone).await, 10);
}

#[tokio::test]
async fn invalid_orders_are_422_naming_each_field_and_publish_nothing() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"product_id": uuid::Uuid::new_v4(), "quantity": 1}))
        .collect();
    let cases: [(Value, Option<&[&str]>); 6] = [
        (json!({"items": []}), Some(&["items"])),
        (
            json!({"items": [
                {"product_id": p, "quantity": 0},
                {"product_id": uuid::Uuid::new_v4(), "quantity": 10001},
            ]}),
            Some(&["items[0].quantity", "items[1].quantity"]),
        ),
        (json!({ "items": too_many }), None),
        (
            json!({"items": [{"product_id": "not-a-uuid", "quantity": 1}]}),
            Some(&["items[0].product_id"]),
        ),
        (
            json!({"items": [{"product_id": p, "quantity": 1}], "total": 1}),
            None,
        ),
        (
            json!({"items": [{"product_id": p, "quantity": 1, "unit_price": 1}]}),
            None,
        ),
    ];

    for (body, named) in cases {
        let problem =
            assert_problem(shop.orders().place(&shop.customer, &body, &[]).await, 422).await;
        if let Some(named) = named {
            assert_eq!(crate::helpers::fields(&problem), named, "{body}");
        }
    }

    let list = shop.read(&shop.customer, "/api/v1/orders").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    assert_eq!(shop.products().stock_of(p).await, 10);
}

#[tokio::test]
async fn a_product_listed_twice_is_merged_into_one_line() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;

    let order = shop
        .orders()
        .place_body_settled(&shop.customer, &order_of(&[(p, 2), (p, 3)]))
        .await;

    assert_eq!(order["items"].as_array().unwrap().len(), 1);
    assert_eq!(order["items"][0]["quantity"], 5);
    assert_eq!(shop.products().stock_of(p).await, 5);
}

#[tokio::test]
async fn an_admin_placing_an_order_is_403() {
    let shop = Shop::around(spawn_app().await).await;
    let p = shop.products().create("P", 100, 10).await;

    let res = shop
        .orders()
        .place(&shop.admin, &order_of(&[(p, 1)]), &[])
        .await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn placing_an_order_anonymously_is_401() {
    let shop = Shop::around(spawn_app().await).await;
    let p = shop.products().create("P", 100, 10).await;

    let res = shop.post("/api/v1/orders", &order_of(&[(p, 1)])).await;

    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_flash_sale_confirms_exactly_the_stock_and_rejects_the_rest() {
    let shop = Shop::open().await;
    let product = shop.products().create("Last units", 500, 20).await;
    let mut customers = Vec::new();
    for _ in 0..60 {
        customers.push(shop.create_user(common::domain::Role::Client).await);
    }
    let body = order_of(&[(product, 1)]);
    let orders = futures::future::join_all(customers.iter().map(|c| async {
        let res = shop.orders().place(c, &body, &[]).await;
        assert_eq!(res.status(), 202);
        id_of(&res.json().await.unwrap())
    }))
    .await;

    let mut confirmed = 0;
    let mut rejected = 0;
    for (customer, id) in customers.iter().zip(&orders) {
        let order = shop
            .orders()
            .when(customer, id, |o| o["status"] != "PENDING")
            .await;
        match order["status"].as_str().unwrap() {
            "CONFIRMED" => confirmed += 1,
            "REJECTED" => rejected += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(confirmed, 20);
    assert_eq!(rejected, 40);
    assert_eq!(shop.products().stock_of(product).await, 0);
    assert_eq!(shop.products().reserved_of(product).await, 20);
}
