//! Changing the catalogue: ADMINs update products (stock changes recorded in the ledger) and
//! archive them, which keeps them for past orders.

use crate::helpers::{Catalogue, assert_problem, catalogue, ledger_path, product_path, spawn_app};
use chrono::{DateTime, Utc};
use common::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

/// When `shop`'s cup was archived.
async fn archived_at(shop: &Catalogue) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT archived_at FROM products WHERE id = $1")
        .bind(Uuid::parse_str(&shop.id).unwrap())
        .fetch_one(&shop.app.state.db)
        .await
        .unwrap()
}

// --- updating -----------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_updates_some_fields_and_the_others_stay() {
    let shop = catalogue().await;
    let before = shop.cup().await;

    let res = shop.update(json!({"price": 990})).await;

    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["price"], 990);
    for field in ["name", "description", "stock"] {
        assert_eq!(p[field], before[field], "{field}");
    }
    let updated: DateTime<Utc> = p["updated_at"].as_str().unwrap().parse().unwrap();
    let created: DateTime<Utc> = p["created_at"].as_str().unwrap().parse().unwrap();
    assert!(updated > created, "updated_at moves on");
}

#[tokio::test]
async fn an_update_is_visible_to_readers() {
    let shop = catalogue().await;

    let res = shop
        .update(json!({"name": "Lungo cup", "description": "120 ml"}))
        .await;

    assert_eq!(res.status(), 200);
    let p = shop.cup().await;
    assert_eq!(p["name"], "Lungo cup");
    assert_eq!(p["description"], "120 ml");
}

#[tokio::test]
async fn setting_the_stock_by_update_is_recorded_in_the_ledger() {
    let shop = catalogue().await;

    assert_eq!(shop.update(json!({"stock": 25})).await.status(), 200);

    let ledger = shop
        .app
        .products()
        .ledger_page(&shop.admin, &shop.id, "")
        .await;
    assert_eq!(ledger["items"][0]["delta"], -15);
    assert_eq!(ledger["items"][0]["stock_after"], 25);
    assert_eq!(ledger["items"][0]["reason"], "stock set by product update");
    let (stock, initial, adjusted) = shop.stock_and_ledger().await;
    assert_eq!(stock, 25);
    assert_eq!(
        i64::from(initial) + adjusted,
        i64::from(stock),
        "conservation"
    );
}

#[tokio::test]
async fn concurrent_stock_updates_and_adjustments_keep_the_ledger_in_step() {
    let shop = catalogue().await;
    let shop = &shop;
    let patches = (0..15).map(|i| async move {
        shop.update(json!({"stock": 10 + i}))
            .await
            .status()
            .as_u16()
    });
    let adjustments = (0..15).map(|i| async move {
        let delta = if i % 2 == 0 { 4 } else { -4 };
        shop.adjust(delta, "mixed").await.status().as_u16()
    });

    let (patched, adjusted) = futures::future::join(
        futures::future::join_all(patches),
        futures::future::join_all(adjustments),
    )
    .await;

    assert!(patched.iter().all(|s| *s == 200), "{patched:?}");
    assert!(
        adjusted.iter().all(|s| *s == 201 || *s == 409),
        "{adjusted:?}"
    );
    let (stock, initial, ledger) = shop.stock_and_ledger().await;
    assert_eq!(i64::from(initial) + ledger, i64::from(stock));
}

#[tokio::test]
async fn updating_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app
        .products()
        .update(&admin, &Uuid::new_v4().to_string(), json!({"price": 1}))
        .await;

    assert_problem(res, 404).await;
}

#[tokio::test]
async fn a_client_cannot_update_a_product() {
    let shop = catalogue().await;
    let client = shop.app.create_user(Role::Client).await;

    let res = shop
        .app
        .products()
        .update(&client, &shop.id, json!({"price": 1}))
        .await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn updating_a_product_anonymously_is_a_401() {
    let shop = catalogue().await;

    let res = shop
        .app
        .patch(&product_path(&shop.id), &json!({"price": 1}))
        .await;

    assert_problem(res, 401).await;
}

// --- archiving ----------------------------------------------------------------------------

#[tokio::test]
async fn an_archived_product_leaves_the_catalogue() {
    let shop = catalogue().await;

    assert_eq!(shop.archive().await.status(), 204);

    assert_problem(shop.app.get(&product_path(&shop.id)).await, 404).await;
    assert!(shop.app.products().list_all("").await.is_empty());
}

#[tokio::test]
async fn an_archived_product_stays_in_the_database_for_past_orders() {
    let shop = catalogue().await;

    shop.archive().await;

    let (name, archived): (String, bool) =
        sqlx::query_as("SELECT name, archived_at IS NOT NULL FROM products WHERE id = $1")
            .bind(Uuid::parse_str(&shop.id).unwrap())
            .fetch_one(&shop.app.state.db)
            .await
            .unwrap();
    assert_eq!(name, "Espresso cup");
    assert!(archived);
}

#[tokio::test]
async fn archiving_twice_succeeds_and_changes_nothing() {
    let shop = catalogue().await;
    assert_eq!(shop.archive().await.status(), 204);
    let first = archived_at(&shop).await;

    assert_eq!(shop.archive().await.status(), 204);

    assert_eq!(archived_at(&shop).await, first);
}

#[tokio::test]
async fn archiving_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app
        .products()
        .archive(&admin, &Uuid::new_v4().to_string())
        .await;

    assert_problem(res, 404).await;
}

#[tokio::test]
async fn an_archived_product_cannot_be_updated() {
    let shop = catalogue().await;
    shop.archive().await;

    assert_problem(shop.update(json!({"price": 1})).await, 404).await;
}

#[tokio::test]
async fn an_archived_product_cannot_be_adjusted() {
    let shop = catalogue().await;
    shop.archive().await;

    assert_problem(shop.adjust(1, "restock").await, 404).await;
}

#[tokio::test]
async fn an_archived_product_keeps_its_ledger() {
    let shop = catalogue().await;
    shop.adjust(5, "delivery").await;

    shop.archive().await;

    let res = shop.app.get_as(&shop.admin, &ledger_path(&shop.id)).await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_client_cannot_archive_a_product_and_it_stays_listed() {
    let shop = catalogue().await;
    let client = shop.app.create_user(Role::Client).await;

    let res = shop.app.products().archive(&client, &shop.id).await;

    assert_problem(res, 403).await;
    shop.cup().await;
}

#[tokio::test]
async fn archiving_a_product_anonymously_is_a_401() {
    let shop = catalogue().await;

    let res = shop.app.delete(&product_path(&shop.id)).await;

    assert_problem(res, 401).await;
}

#[tokio::test]
async fn archived_products_are_not_listed() {
    let shop = catalogue().await;
    let other = shop
        .app
        .products()
        .create_via_api(&shop.admin, json!({"name": "Saucer", "price": 5}))
        .await;

    let res = shop.archive().await;

    assert_eq!(res.status(), 204, "{:?}", res.text().await);
    assert_eq!(
        crate::products_listing::ids(&shop.app.products().list_all("").await),
        [other["id"].as_str().unwrap()]
    );
}
