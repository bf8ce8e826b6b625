//! The catalogue: public reading and ADMIN creation of products. Changes, stock and listing
//! have their own files (`products_changes`, `products_stock`, `products_listing`).

use crate::helpers::{assert_problem, catalogue, cup, product_path, spawn_app};
use common::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

// --- reading ------------------------------------------------------------------------------

#[tokio::test]
async fn anyone_can_list_an_empty_catalogue() {
    let app = spawn_app().await;

    let res = app.get("/api/v1/products").await;

    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn anyone_can_read_a_product_without_logging_in() {
    let shop = catalogue().await;

    let p = shop.app.products().read(&shop.id).await;

    assert_eq!(p["id"], shop.id.as_str());
    assert_eq!(p["name"], "Espresso cup");
    assert_eq!(p["price"], 1250);
    assert_eq!(p["stock"], 40);
}

#[tokio::test]
async fn an_unknown_product_is_a_404() {
    let app = spawn_app().await;

    let res = app.get(&product_path(&Uuid::new_v4().to_string())).await;

    assert_problem(res, 404).await;
}

#[tokio::test]
async fn a_malformed_product_id_is_a_400_whatever_the_method() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    assert_problem(app.get("/api/v1/products/not-a-uuid").await, 400).await;
    let res = app
        .products()
        .update(&admin, "123", json!({"price": 1}))
        .await;
    assert_problem(res, 400).await;
    assert_problem(app.products().archive(&admin, "123").await, 400).await;
}

#[tokio::test]
async fn a_product_shows_exactly_the_contract_fields() {
    let shop = catalogue().await;

    let p = shop.cup().await;

    let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "currency",
            "description",
            "id",
            "name",
            "price",
            "stock",
            "updated_at"
        ]
    );
}

// --- creating -----------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_creates_a_product_priced_in_the_store_currency() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app.post_as(&admin, "/api/v1/products", &cup(), &[]).await;

    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let p: Value = res.json().await.unwrap();
    assert_eq!(location, product_path(p["id"].as_str().unwrap()));
    assert_eq!(p["currency"], "USD");
    assert_eq!(p["description"], "Porcelain, 80 ml");
    assert_eq!(p["created_at"], p["updated_at"]);
}

#[tokio::test]
async fn creation_sets_the_initial_stock_to_the_given_stock() {
    let shop = catalogue().await;

    assert_eq!(shop.stock_and_ledger().await, (40, 40, 0));
}

#[tokio::test]
async fn description_and_stock_may_be_left_out_on_creation() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let p = app
        .products()
        .create_via_api(&admin, json!({"name": "Saucer", "price": 0}))
        .await;

    assert_eq!(p["description"], "");
    assert_eq!(p["stock"], 0);
}

#[tokio::test]
async fn a_name_is_stored_trimmed() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let p = app
        .products()
        .create_via_api(&admin, json!({"name": "  Saucer  ", "price": 10}))
        .await;

    assert_eq!(p["name"], "Saucer");
}

#[tokio::test]
async fn creating_a_product_anonymously_is_a_401() {
    let app = spawn_app().await;

    let res = app.post("/api/v1/products", &cup()).await;

    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_client_cannot_create_a_product() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;

    let res = app.post_as(&client, "/api/v1/products", &cup(), &[]).await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn an_invalid_product_is_a_422_problem_naming_every_bad_field_at_once() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let body = json!({"name": "", "description": "x".repeat(5001), "price": -1, "stock": -1});

    let res = app.post_as(&admin, "/api/v1/products", &body, &[]).await;

    let body = assert_problem(res, 422).await;
    let errors = body["errors"].as_array().unwrap();
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "description", "price", "stock"]);
    // Each entry says what is wrong with its field; the rules themselves are the validator's
    // unit tests (api/src/products/validate/tests.rs).
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{body}"
    );
}

// --- documentation ------------------------------------------------------------------------

#[tokio::test]
async fn the_openapi_document_describes_every_products_route() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/products", "get"),
        ("/api/v1/products", "post"),
        ("/api/v1/products/{id}", "get"),
        ("/api/v1/products/{id}", "patch"),
        ("/api/v1/products/{id}", "delete"),
        ("/api/v1/products/{id}/stock-adjustments", "post"),
        ("/api/v1/products/{id}/stock-adjustments", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["Product"]["example"].is_object());
    assert!(
        doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "products")
    );
}
