//! Placing orders end to end: api → JetStream → order worker → inventory worker → PostgreSQL,
//! and reading them back.

use crate::helpers::{assert_problem, spawn_system};
use common::domain::Role;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn one_line(product: uuid::Uuid, quantity: i32) -> Value {
    json!({"items": [{"product_id": product, "quantity": quantity}]})
}

fn settled(order: &Value) -> bool {
    order["status"] != "PENDING"
}

#[tokio::test]
async fn placing_an_order_answers_202_with_its_location_and_then_confirms_it() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    let tea = app.create_product("Tea", 399, 5).await;

    let body = json!({"items": [
        {"product_id": mug, "quantity": 2},
        {"product_id": tea, "quantity": 1},
    ]});
    let res = app.post_as(&client, "/api/v1/orders", &body, &[]).await;
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", accepted["id"].as_str().unwrap())
    );

    let order = app
        .order_when(&client, accepted["id"].as_str().unwrap(), settled)
        .await;
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["total"], 2 * 1250 + 399);
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["user_id"], client.id.to_string());
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
    assert_eq!(app.stock_of(mug).await, 8);
    assert_eq!(app.stock_of(tea).await, 4);
}

#[tokio::test]
async fn prefer_wait_answers_201_with_the_settled_order() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 10).await;

    let res = app
        .post_as(
            &client,
            "/api/v1/orders",
            &one_line(mug, 1),
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
async fn a_retry_of_a_settled_order_with_prefer_wait_answers_201_without_waiting() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    let headers = [("prefer", "wait=10"), ("idempotency-key", "settled-retry")];
    let res = app
        .post_as(&client, "/api/v1/orders", &one_line(mug, 1), &headers)
        .await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.unwrap();

    let started = Instant::now();
    let res = app
        .post_as(&client, "/api/v1/orders", &one_line(mug, 1), &headers)
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
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    let key = "ack-lost";
    // An earlier attempt's command reached the stream, but its acknowledgement (and so the
    // idempotency record) did not make it back: the order settled without the api knowing.
    let order_id = api::orders::idempotent_order_id(client.id, key);
    app.state
        .bus
        .publish(
            common::messages::PlaceOrder {
                order_id,
                user_id: client.id,
                shipping_address: None,
                items: vec![common::messages::LineRequest {
                    product_id: mug,
                    quantity: 1,
                }],
            },
            "earlier-attempt",
        )
        .await
        .unwrap();
    app.order_when(&client, &order_id.to_string(), settled)
        .await;

    let started = Instant::now();
    let res = app
        .post_as(
            &client,
            "/api/v1/orders",
            &one_line(mug, 1),
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
    assert_eq!(app.stock_of(mug).await, 9, "reserved once");
}

#[tokio::test]
async fn an_order_reads_the_same_alone_and_in_a_list_with_exact_instants() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    let tea = app.create_product("Tea", 399, 0).await;
    let body = json!({"items": [
        {"product_id": tea, "quantity": 1},
        {"product_id": mug, "quantity": 2},
    ]});
    let res = app
        .post_as(&client, "/api/v1/orders", &body, &[("prefer", "wait=10")])
        .await;
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["status"], "REJECTED");
    let id = placed["id"].as_str().unwrap();

    let alone: Value = app
        .get_as(&client, &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let list: Value = app
        .get_as(&client, "/api/v1/orders")
        .await
        .json()
        .await
        .unwrap();

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
    // The timeline's instants, as PostgreSQL holds them (microseconds), oldest first.
    let stored: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT at FROM order_events WHERE order_id = $1 ORDER BY at, id")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_all(&app.state.db)
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
        serde_json::to_value(&stored)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(alone["timeline"][0]["from"], Value::Null);
    assert_eq!(alone["timeline"][0]["to"], "REJECTED");
}

#[tokio::test]
async fn a_price_change_after_ordering_does_not_alter_the_order() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1000, 10).await;
    let res = app
        .post_as(
            &client,
            "/api/v1/orders",
            &one_line(mug, 3),
            &[("prefer", "wait=10")],
        )
        .await;
    let order: Value = res.json().await.unwrap();
    sqlx::query("UPDATE products SET price = 9999, name = 'Renamed' WHERE id = $1")
        .bind(mug)
        .execute(&app.state.db)
        .await
        .unwrap();
    let again: Value = app
        .get_as(
            &client,
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["items"][0]["unit_price"], 1000);
    assert_eq!(again["items"][0]["name"], "Mug");
    assert_eq!(again["total"], 3000);
}

#[tokio::test]
async fn short_stock_rejects_the_whole_order_naming_the_line_and_reserves_nothing() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let plenty = app.create_product("Plenty", 100, 50).await;
    let scarce = app.create_product("Scarce", 100, 2).await;
    let body = json!({"items": [
        {"product_id": plenty, "quantity": 5},
        {"product_id": scarce, "quantity": 3},
    ]});
    let res = app
        .post_as(&client, "/api/v1/orders", &body, &[("prefer", "wait=10")])
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
    assert_eq!(app.stock_of(plenty).await, 50, "all or nothing");
    assert_eq!(app.stock_of(scarce).await, 2);
}

#[tokio::test]
async fn unknown_and_archived_products_reject_the_order() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let gone = app.create_product("Gone", 100, 10).await;
    sqlx::query("UPDATE products SET archived_at = now() WHERE id = $1")
        .bind(gone)
        .execute(&app.state.db)
        .await
        .unwrap();
    let ghost = uuid::Uuid::new_v4();
    let body = json!({"items": [
        {"product_id": gone, "quantity": 1},
        {"product_id": ghost, "quantity": 1},
    ]});
    let res = app
        .post_as(&client, "/api/v1/orders", &body, &[("prefer", "wait=10")])
        .await;
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "REJECTED");
    let reason = order["rejection_reason"].as_str().unwrap();
    assert!(
        reason.contains("no longer sold") && reason.contains("does not exist"),
        "{reason}"
    );
    assert_eq!(app.stock_of(gone).await, 10);
}

#[tokio::test]
async fn invalid_orders_are_422_naming_each_field_and_publish_nothing() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 100, 10).await;

    let empty = app
        .post_as(&client, "/api/v1/orders", &json!({"items": []}), &[])
        .await;
    assert_eq!(
        assert_problem(empty, 422).await["errors"][0]["field"],
        "items"
    );

    let bad_quantities = json!({"items": [
        {"product_id": p, "quantity": 0},
        {"product_id": uuid::Uuid::new_v4(), "quantity": 10001},
    ]});
    let body = assert_problem(
        app.post_as(&client, "/api/v1/orders", &bad_quantities, &[])
            .await,
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["items[0].quantity", "items[1].quantity"]);

    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"product_id": uuid::Uuid::new_v4(), "quantity": 1}))
        .collect();
    assert_problem(
        app.post_as(&client, "/api/v1/orders", &json!({"items": too_many}), &[])
            .await,
        422,
    )
    .await;

    let bad_id = json!({"items": [{"product_id": "not-a-uuid", "quantity": 1}]});
    let body = assert_problem(
        app.post_as(&client, "/api/v1/orders", &bad_id, &[]).await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "items[0].product_id");

    let unknown_field = json!({"items": [{"product_id": p, "quantity": 1}], "total": 1});
    assert_problem(
        app.post_as(&client, "/api/v1/orders", &unknown_field, &[])
            .await,
        422,
    )
    .await;

    let client_price = json!({"items": [{"product_id": p, "quantity": 1, "unit_price": 1}]});
    assert_problem(
        app.post_as(&client, "/api/v1/orders", &client_price, &[])
            .await,
        422,
    )
    .await;

    let list: Value = app
        .get_as(&client, "/api/v1/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    assert_eq!(app.stock_of(p).await, 10);
}

#[tokio::test]
async fn a_product_listed_twice_is_merged_into_one_line() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 100, 10).await;
    let body =
        json!({"items": [{"product_id": p, "quantity": 2}, {"product_id": p, "quantity": 3}]});
    let order: Value = app
        .post_as(&client, "/api/v1/orders", &body, &[("prefer", "wait=10")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["items"].as_array().unwrap().len(), 1);
    assert_eq!(order["items"][0]["quantity"], 5);
    assert_eq!(app.stock_of(p).await, 5);
}

#[tokio::test]
async fn only_customers_place_orders() {
    let app = spawn_system().await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 100, 10).await;
    assert_problem(
        app.post_as(&admin, "/api/v1/orders", &one_line(p, 1), &[])
            .await,
        403,
    )
    .await;
    let anonymous = app
        .client
        .post(app.url("/api/v1/orders"))
        .json(&one_line(p, 1))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401).await;
}

#[tokio::test]
async fn another_customers_order_is_not_found_but_an_admin_sees_it() {
    let app = spawn_system().await;
    let alice = app.create_user(Role::Client).await;
    let bob = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 100, 10).await;
    let order: Value = app
        .post_as(
            &alice,
            "/api/v1/orders",
            &one_line(p, 1),
            &[("prefer", "wait=10")],
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    assert_problem(app.get_as(&bob, &path).await, 404).await;
    assert_eq!(app.get_as(&admin, &path).await.status(), 200);
    assert_problem(app.get_as(&alice, "/api/v1/orders/not-a-uuid").await, 400).await;
    assert_problem(
        app.get_as(&alice, &format!("/api/v1/orders/{}", uuid::Uuid::new_v4()))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_return_the_same_order() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 100, 10).await;
    let key = [("idempotency-key", "order-attempt-1")];
    let first: Value = app
        .post_as(&client, "/api/v1/orders", &one_line(p, 2), &key)
        .await
        .json()
        .await
        .unwrap();
    let retry = app
        .post_as(&client, "/api/v1/orders", &one_line(p, 2), &key)
        .await;
    assert!(
        retry.status() == 202 || retry.status() == 200,
        "{}",
        retry.status()
    );
    let second: Value = retry.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    app.order_when(&client, first["id"].as_str().unwrap(), settled)
        .await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(app.stock_of(p).await, 8, "reserved once");

    let other_body = app
        .post_as(&client, "/api/v1/orders", &one_line(p, 3), &key)
        .await;
    assert_problem(other_body, 422).await;
}

#[tokio::test]
async fn racing_retries_with_one_idempotency_key_create_one_order() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 100, 100).await;
    let body = one_line(p, 1);
    let attempts = (0..10).map(|_| {
        app.post_as(
            &client,
            "/api/v1/orders",
            &body,
            &[("idempotency-key", "race")],
        )
    });
    let responses = futures::future::join_all(attempts).await;
    let mut ids = std::collections::HashSet::new();
    for res in responses {
        match res.status().as_u16() {
            200..=202 => {
                let order: Value = res.json().await.unwrap();
                ids.insert(order["id"].as_str().unwrap().to_owned());
            }
            409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success names the same order");
    let id = ids.into_iter().next().unwrap();
    app.order_when(&client, &id, settled).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(app.stock_of(p).await, 99);
}

#[tokio::test]
async fn customers_list_their_own_orders_newest_first_with_filters_and_pages() {
    let app = spawn_system().await;
    let alice = app.create_user(Role::Client).await;
    let bob = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 100, 1000).await;
    let scarce = app.create_product("Scarce", 100, 0).await;
    let mut placed = Vec::new();
    for _ in 0..5 {
        let o: Value = app
            .post_as(
                &alice,
                "/api/v1/orders",
                &one_line(p, 1),
                &[("prefer", "wait=10")],
            )
            .await
            .json()
            .await
            .unwrap();
        placed.push(o["id"].as_str().unwrap().to_owned());
    }
    let rejected: Value = app
        .post_as(
            &alice,
            "/api/v1/orders",
            &one_line(scarce, 1),
            &[("prefer", "wait=10")],
        )
        .await
        .json()
        .await
        .unwrap();
    app.post_as(
        &bob,
        "/api/v1/orders",
        &one_line(p, 1),
        &[("prefer", "wait=10")],
    )
    .await;

    // Page through Alice's orders two at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders?limit=2&cursor={c}"),
            None => "/api/v1/orders?limit=2".to_owned(),
        };
        let page: Value = app.get_as(&alice, &path).await.json().await.unwrap();
        for o in page["items"].as_array().unwrap() {
            assert_eq!(o["user_id"], alice.id.to_string());
            seen.push(o["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = placed.clone();
    expected.push(rejected["id"].as_str().unwrap().to_owned());
    expected.reverse();
    assert_eq!(seen, expected, "newest first, no gaps or repeats");

    let only_rejected: Value = app
        .get_as(&alice, "/api/v1/orders?status=REJECTED")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only_rejected["items"].as_array().unwrap().len(), 1);

    let future: Value = app
        .get_as(&alice, "/api/v1/orders?created_from=2999-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(future["items"].as_array().unwrap().len(), 0);

    let bobs: Value = app
        .get_as(&admin, &format!("/api/v1/orders?user_id={}", bob.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);
    let all: Value = app
        .get_as(&admin, "/api/v1/orders?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 7);

    assert_problem(
        app.get_as(&alice, &format!("/api/v1/orders?user_id={}", bob.id))
            .await,
        403,
    )
    .await;
    assert_problem(app.get_as(&alice, "/api/v1/orders?limit=500").await, 422).await;
    assert_problem(
        app.get_as(&alice, "/api/v1/orders?cursor=garbage").await,
        400,
    )
    .await;
    assert_problem(app.get_as(&alice, "/api/v1/orders?status=LOST").await, 400).await;
}

#[tokio::test]
async fn a_flash_sale_confirms_exactly_the_stock_and_rejects_the_rest() {
    let app = spawn_system().await;
    let product = app.create_product("Last units", 500, 20).await;
    let mut customers = Vec::new();
    for _ in 0..60 {
        customers.push(app.create_user(Role::Client).await);
    }
    let body = one_line(product, 1);
    let orders = futures::future::join_all(customers.iter().map(|c| async {
        let res = app.post_as(c, "/api/v1/orders", &body, &[]).await;
        assert_eq!(res.status(), 202);
        let order: Value = res.json().await.unwrap();
        order["id"].as_str().unwrap().to_owned()
    }))
    .await;

    let mut confirmed = 0;
    let mut rejected = 0;
    for (customer, id) in customers.iter().zip(&orders) {
        let order = app.order_when(customer, id, settled).await;
        match order["status"].as_str().unwrap() {
            "CONFIRMED" => confirmed += 1,
            "REJECTED" => rejected += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(confirmed, 20);
    assert_eq!(rejected, 40);
    assert_eq!(app.stock_of(product).await, 0);
    let reserved: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(quantity), 0) FROM reservations WHERE product_id = $1",
    )
    .bind(product)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(reserved, 20);
}
