//! Shipping addresses: given at placement, checked field by field, kept with the order as a
//! snapshot and shown to its owner and ADMINs; and the order list's filters on shipping.

use crate::helpers::{TestApp, TestUser, assert_problem, spawn_app, spawn_system};
use crate::lifecycle::publish_plain;
use common::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) fn address(country: &str) -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "line2": "Flat 3",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": country,
        "phone": "+44 20 7946 0000",
    })
}

fn order_to(product: Uuid, address: Value) -> Value {
    json!({"items": [{"product_id": product, "quantity": 1}], "shipping_address": address})
}

pub(crate) fn id_of(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

pub(crate) fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// Places an order to `shipping_address` and waits until it is settled.
pub(crate) async fn place_to(app: &TestApp, user: &TestUser, product: Uuid, to: Value) -> Value {
    let res = app
        .post_as(
            user,
            "/api/v1/orders",
            &order_to(product, to),
            &[("prefer", "wait=10")],
        )
        .await;
    assert!(
        res.status() == 201 || res.status() == 202,
        "{}",
        res.status()
    );
    let order: Value = res.json().await.unwrap();
    app.order_when(user, &id_of(&order), |o| o["status"] != "PENDING")
        .await
}

#[tokio::test]
async fn the_shipping_address_is_kept_with_the_order_and_shown_to_the_owner_and_admins() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let other = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 500, 10).await;
    let mut given = address("gb");
    given["name"] = json!("  Ada Lovelace  ");
    given["region"] = json!("");

    let order = place_to(&app, &client, p, given).await;

    assert_eq!(order["status"], "CONFIRMED");
    let mut stored = address("GB");
    stored["region"] = Value::Null;
    assert_eq!(
        order["shipping_address"], stored,
        "trimmed, blank dropped, upper case"
    );
    assert_eq!(order["shipment"], Value::Null);
    let seen_by_admin: Value = app
        .get_as(&admin, &format!("/api/v1/orders/{}", id_of(&order)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen_by_admin["shipping_address"], stored);
    assert_problem(
        app.get_as(&other, &format!("/api/v1/orders/{}", id_of(&order)))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn an_accepted_order_shows_its_shipping_address_while_pending() {
    // No workers: the order stays accepted and unrecorded.
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;

    let res = app
        .post_as(&client, "/api/v1/orders", &order_to(p, address("FR")), &[])
        .await;

    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(accepted["shipping_address"]["country"], "FR");
    let read: Value = app
        .get_as(&client, &format!("/api/v1/orders/{}", id_of(&accepted)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "PENDING");
    assert_eq!(read["shipping_address"], accepted["shipping_address"]);
}

#[tokio::test]
async fn a_retry_under_the_same_idempotency_key_needs_the_same_address_and_shows_it() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;
    let key = [("idempotency-key", "checkout-42")];
    let first: Value = app
        .post_as(&client, "/api/v1/orders", &order_to(p, address("DE")), &key)
        .await
        .json()
        .await
        .unwrap();

    let retry = app
        .post_as(&client, "/api/v1/orders", &order_to(p, address("DE")), &key)
        .await;
    let elsewhere = app
        .post_as(&client, "/api/v1/orders", &order_to(p, address("AT")), &key)
        .await;

    assert_eq!(retry.status(), 202);
    let replayed: Value = retry.json().await.unwrap();
    assert_eq!(replayed["id"], first["id"]);
    assert_eq!(replayed["shipping_address"]["country"], "DE");
    assert_problem(elsewhere, 422).await;
}

#[tokio::test]
async fn every_bad_field_of_a_shipping_address_is_named_in_one_422_and_nothing_is_placed() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;
    let bad = json!({
        "name": "",
        "line1": "x".repeat(201),
        "line2": "two\nlines",
        "city": " ",
        "region": "r".repeat(101),
        "postal_code": "SW1Y <4JH>",
        "country": "GB",
        "phone": "call me maybe",
    });
    let body = json!({"items": [{"product_id": p, "quantity": 0}], "shipping_address": bad});

    let problem = assert_problem(
        app.post_as(&client, "/api/v1/orders", &body, &[]).await,
        422,
    )
    .await;

    assert_eq!(
        fields(&problem),
        vec![
            "items[0].quantity",
            "shipping_address.name",
            "shipping_address.line1",
            "shipping_address.line2",
            "shipping_address.city",
            "shipping_address.region",
            "shipping_address.postal_code",
            "shipping_address.phone",
        ]
    );
    let list: Value = app
        .get_as(&client, "/api/v1/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));
    assert_eq!(app.stock_of(p).await, 10);
}

#[tokio::test]
async fn a_country_that_is_not_an_iso_3166_code_is_a_422_naming_it() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;

    for country in ["UK", "XX", "GBR", ""] {
        let problem = assert_problem(
            app.post_as(
                &client,
                "/api/v1/orders",
                &order_to(p, address(country)),
                &[],
            )
            .await,
            422,
        )
        .await;
        assert_eq!(
            fields(&problem),
            vec!["shipping_address.country"],
            "{country}"
        );
    }
    let mut missing = address("GB");
    missing.as_object_mut().unwrap().remove("country");
    let problem = assert_problem(
        app.post_as(&client, "/api/v1/orders", &order_to(p, missing), &[])
            .await,
        422,
    )
    .await;
    assert_eq!(
        fields(&problem),
        vec!["shipping_address"],
        "missing country"
    );
}

#[tokio::test]
async fn an_unknown_field_in_a_shipping_address_is_a_422_naming_it() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;
    let mut unknown = address("GB");
    unknown["street"] = json!("Downing Street");

    let problem = assert_problem(
        app.post_as(&client, "/api/v1/orders", &order_to(p, unknown), &[])
            .await,
        422,
    )
    .await;

    assert_eq!(fields(&problem), vec!["shipping_address.street"]);
}

#[tokio::test]
async fn an_order_placed_without_an_address_still_works() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;

    let order = app.place_settled(&client, p, 1).await;

    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["shipping_address"], Value::Null);
    assert_eq!(order["shipment"], Value::Null);
}

#[tokio::test]
async fn a_place_command_with_a_bad_address_is_dead_lettered_with_the_reason() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;
    let order_id = Uuid::now_v7();
    let command = json!({
        "id": Uuid::new_v4(),
        "type": "orders.place",
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": "pos-1",
        "data": {
            "order_id": order_id,
            "user_id": client.id,
            "items": [{"product_id": p, "quantity": 1}],
            "shipping_address": address("XX"),
        },
    });

    publish_plain(&app, "orders.cmd.place", command).await;
    app.quiescent().await;

    let reasons = app.dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("invalid order: shipping_address.country"),
        "{reasons:?}"
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(recorded, 0);
    assert_eq!(app.stock_of(p).await, 10);
}

/// Inserts an order shipping to `country` (if any), with a tracking number or not.
async fn insert_shipped_to(
    app: &TestApp,
    user: &TestUser,
    country: Option<&str>,
    tracked: bool,
) -> String {
    let id = app.insert_order(user, "SHIPPED").await;
    let mut address = address(country.unwrap_or("GB"));
    if country.is_none() {
        address = Value::Null;
    }
    sqlx::query(
        "UPDATE orders SET shipping_address = $2,
                carrier = CASE WHEN $3 THEN 'UPS' END,
                tracking_number = CASE WHEN $3 THEN '1Z' END
          WHERE id = $1",
    )
    .bind(id)
    .bind((!address.is_null()).then_some(address))
    .bind(tracked)
    .execute(&app.state.db)
    .await
    .unwrap();
    id.to_string()
}

/// Every order of the list at `path` (which has a `limit`), page by page, newest first.
async fn every_page(app: &TestApp, user: &TestUser, path: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let res = app.get_as(user, &page_path).await;
        assert_eq!(res.status(), 200, "{page_path}");
        let page: Value = res.json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn admins_filter_orders_by_country_and_tracking_across_pages() {
    let app = spawn_app().await;
    let alice = app.create_user(Role::Client).await;
    let bob = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let gb_tracked = insert_shipped_to(&app, &alice, Some("GB"), true).await;
    let fr_tracked = insert_shipped_to(&app, &bob, Some("FR"), true).await;
    let gb_untracked = insert_shipped_to(&app, &bob, Some("GB"), false).await;
    let nowhere = insert_shipped_to(&app, &alice, None, false).await;
    let gb_tracked_too = insert_shipped_to(&app, &bob, Some("GB"), true).await;

    let gb = every_page(&app, &admin, "/api/v1/orders?country=gb&limit=1").await;
    let tracked = every_page(&app, &admin, "/api/v1/orders?has_tracking=true&limit=1").await;
    let untracked = every_page(&app, &admin, "/api/v1/orders?has_tracking=false&limit=1").await;
    let gb_tracked_pages = every_page(
        &app,
        &admin,
        "/api/v1/orders?country=GB&has_tracking=true&limit=1",
    )
    .await;
    let alices_gb = every_page(&app, &alice, "/api/v1/orders?country=GB&limit=1").await;

    assert_eq!(
        gb,
        vec![
            gb_tracked_too.clone(),
            gb_untracked.clone(),
            gb_tracked.clone()
        ]
    );
    assert_eq!(
        tracked,
        vec![gb_tracked_too.clone(), fr_tracked, gb_tracked.clone()]
    );
    assert_eq!(untracked, vec![nowhere, gb_untracked]);
    assert_eq!(gb_tracked_pages, vec![gb_tracked_too, gb_tracked.clone()]);
    assert_eq!(alices_gb, vec![gb_tracked], "a customer filters their own");
    let problem = assert_problem(app.get_as(&admin, "/api/v1/orders?country=UK").await, 422).await;
    assert_eq!(fields(&problem), vec!["country"]);
    assert_problem(
        app.get_as(&admin, "/api/v1/orders?has_tracking=maybe")
            .await,
        400,
    )
    .await;
}
