//! The catalogue: public reading, ADMIN writes, archiving, stock adjustments and the ledger.

use crate::helpers::{TestApp, TestUser, assert_problem, spawn_app};
use chrono::{DateTime, Utc};
use common::domain::Role;
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers

fn cup() -> Value {
    json!({"name": "Espresso cup", "description": "Porcelain, 80 ml", "price": 1250, "stock": 40})
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn admin_and_product(app: &TestApp) -> (TestUser, String) {
    let admin = app.create_user(Role::Admin).await;
    let product = app.create_product_via_api(&admin, cup()).await;
    (admin, product["id"].as_str().unwrap().to_owned())
}

// ---------------------------------------------------------------------------------------------
// Reading

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
    let app = spawn_app().await;
    let (_, id) = admin_and_product(&app).await;
    let res = app.get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["name"], "Espresso cup");
    assert_eq!(p["price"], 1250);
    assert_eq!(p["stock"], 40);
}

#[tokio::test]
async fn an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let res = app
        .get(&format!("/api/v1/products/{}", Uuid::new_v4()))
        .await;
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn a_malformed_product_id_is_a_400() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/v1/products/not-a-uuid").await, 400).await;
    let admin = app.create_user(Role::Admin).await;
    let res = app
        .patch_as(&admin, "/api/v1/products/123", &json!({"price": 1}), &[])
        .await;
    assert_problem(res, 400).await;
    let res = app.delete_as(&admin, "/api/v1/products/123").await;
    assert_problem(res, 400).await;
}

#[tokio::test]
async fn a_product_shows_exactly_the_contract_fields() {
    let app = spawn_app().await;
    let (_, id) = admin_and_product(&app).await;
    let p: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
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

// ---------------------------------------------------------------------------------------------
// Creating

#[tokio::test]
async fn an_admin_creates_a_product_priced_in_the_store_currency() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let res = app.post_as(&admin, "/api/v1/products", &cup(), &[]).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let p: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/products/{}", p["id"].as_str().unwrap())
    );
    assert_eq!(p["currency"], "USD");
    assert_eq!(p["description"], "Porcelain, 80 ml");
    assert_eq!(p["created_at"], p["updated_at"]);
}

#[tokio::test]
async fn creation_sets_the_initial_stock_to_the_given_stock() {
    let app = spawn_app().await;
    let (_, id) = admin_and_product(&app).await;
    assert_eq!(app.stock_and_ledger(&id).await, (40, 40, 0));
}

#[tokio::test]
async fn description_and_stock_may_be_left_out_on_creation() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let p = app
        .create_product_via_api(&admin, json!({"name": "Saucer", "price": 0}))
        .await;
    assert_eq!(p["description"], "");
    assert_eq!(p["stock"], 0);
}

#[tokio::test]
async fn a_name_is_stored_trimmed() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let p = app
        .create_product_via_api(&admin, json!({"name": "  Saucer  ", "price": 10}))
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
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "description", "price", "stock"]);
    // Each entry says what is wrong with its field; the rules themselves are the validator's
    // unit tests (api/src/products/validate/tests.rs).
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// Updating

#[tokio::test]
async fn an_admin_updates_some_fields_and_the_others_stay() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let before: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/products/{id}"),
            &json!({"price": 990}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["price"], 990);
    assert_eq!(p["name"], before["name"]);
    assert_eq!(p["description"], before["description"]);
    assert_eq!(p["stock"], before["stock"]);
    let updated: DateTime<Utc> = p["updated_at"].as_str().unwrap().parse().unwrap();
    let created: DateTime<Utc> = p["created_at"].as_str().unwrap().parse().unwrap();
    assert!(updated > created, "updated_at moves on");
}

#[tokio::test]
async fn an_update_is_visible_to_readers() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    app.patch_as(
        &admin,
        &format!("/api/v1/products/{id}"),
        &json!({"name": "Lungo cup", "description": "120 ml"}),
        &[],
    )
    .await;
    let p: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["name"], "Lungo cup");
    assert_eq!(p["description"], "120 ml");
}

#[tokio::test]
async fn setting_the_stock_by_update_is_recorded_in_the_ledger() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/products/{id}"),
            &json!({"stock": 25}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);
    let ledger: Value = app
        .get_as(&admin, &format!("/api/v1/products/{id}/stock-adjustments"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["items"][0]["delta"], -15);
    assert_eq!(ledger["items"][0]["stock_after"], 25);
    assert_eq!(ledger["items"][0]["reason"], "stock set by product update");
    let (stock, initial, adjusted) = app.stock_and_ledger(&id).await;
    assert_eq!(stock, 25);
    assert_eq!(
        i64::from(initial) + adjusted,
        i64::from(stock),
        "conservation"
    );
}

#[tokio::test]
async fn concurrent_stock_updates_and_adjustments_keep_the_ledger_in_step() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let path = format!("/api/v1/products/{id}");
    let patches = (0..15).map(|i| {
        let (app, admin, path) = (&app, &admin, &path);
        async move {
            app.patch_as(admin, path, &json!({"stock": 10 + i}), &[])
                .await
                .status()
                .as_u16()
        }
    });
    let adjustments = (0..15).map(|i| {
        let (app, admin, id) = (&app, &admin, &id);
        async move {
            let delta = if i % 2 == 0 { 4 } else { -4 };
            app.adjust(admin, id, delta, "mixed")
                .await
                .status()
                .as_u16()
        }
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
    let (stock, initial, ledger) = app.stock_and_ledger(&id).await;
    assert_eq!(i64::from(initial) + ledger, i64::from(stock));
}

#[tokio::test]
async fn updating_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/products/{}", Uuid::new_v4()),
            &json!({"price": 1}),
            &[],
        )
        .await;
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn a_client_cannot_update_a_product() {
    let app = spawn_app().await;
    let (_, id) = admin_and_product(&app).await;
    let client = app.create_user(Role::Client).await;
    let path = format!("/api/v1/products/{id}");
    assert_problem(
        app.patch_as(&client, &path, &json!({"price": 1}), &[])
            .await,
        403,
    )
    .await;
    assert_problem(app.patch(&path, &json!({"price": 1})).await, 401).await;
}

// ---------------------------------------------------------------------------------------------
// Archiving

#[tokio::test]
async fn an_archived_product_leaves_the_catalogue() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let res = app
        .delete_as(&admin, &format!("/api/v1/products/{id}"))
        .await;
    assert_eq!(res.status(), 204);
    assert_problem(app.get(&format!("/api/v1/products/{id}")).await, 404).await;
    assert!(app.list_all("").await.is_empty());
}

#[tokio::test]
async fn an_archived_product_stays_in_the_database_for_past_orders() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    app.delete_as(&admin, &format!("/api/v1/products/{id}"))
        .await;
    let (name, archived): (String, bool) =
        sqlx::query_as("SELECT name, archived_at IS NOT NULL FROM products WHERE id = $1")
            .bind(Uuid::parse_str(&id).unwrap())
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(name, "Espresso cup");
    assert!(archived);
}

#[tokio::test]
async fn archiving_twice_succeeds_and_changes_nothing() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let path = format!("/api/v1/products/{id}");
    assert_eq!(app.delete_as(&admin, &path).await.status(), 204);
    let first: DateTime<Utc> = archived_at(&app, &id).await;
    assert_eq!(app.delete_as(&admin, &path).await.status(), 204);
    assert_eq!(archived_at(&app, &id).await, first);
}

async fn archived_at(app: &TestApp, id: &str) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT archived_at FROM products WHERE id = $1")
        .bind(Uuid::parse_str(id).unwrap())
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn archiving_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let res = app
        .delete_as(&admin, &format!("/api/v1/products/{}", Uuid::new_v4()))
        .await;
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn an_archived_product_cannot_be_updated_or_adjusted() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    app.delete_as(&admin, &format!("/api/v1/products/{id}"))
        .await;
    let res = app
        .patch_as(
            &admin,
            &format!("/api/v1/products/{id}"),
            &json!({"price": 1}),
            &[],
        )
        .await;
    assert_problem(res, 404).await;
    assert_problem(app.adjust(&admin, &id, 1, "restock").await, 404).await;
}

#[tokio::test]
async fn a_client_cannot_archive_a_product() {
    let app = spawn_app().await;
    let (_, id) = admin_and_product(&app).await;
    let client = app.create_user(Role::Client).await;
    let path = format!("/api/v1/products/{id}");
    assert_problem(app.delete_as(&client, &path).await, 403).await;
    assert_problem(app.delete(&path).await, 401).await;
    assert_eq!(app.get(&path).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Stock adjustments and the ledger

#[tokio::test]
async fn an_adjustment_changes_stock_and_is_recorded_with_who_and_why() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let res = app
        .adjust(&admin, &id, -3, "  broken in the warehouse ")
        .await;
    assert_eq!(res.status(), 201);
    let entry: Value = res.json().await.unwrap();
    assert_eq!(entry["delta"], -3);
    assert_eq!(entry["reason"], "broken in the warehouse");
    assert_eq!(entry["actor_id"], admin.id.to_string());
    assert_eq!(entry["stock_after"], 37);
    assert_eq!(entry["product_id"], id.as_str());
    assert!(entry["created_at"].is_string());
    let p: Value = app
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["stock"], 37);
}

#[tokio::test]
async fn an_adjustment_below_zero_is_a_409_naming_the_available_stock() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let res = app.adjust(&admin, &id, -41, "recount").await;
    let body = assert_problem(res, 409).await;
    assert_eq!(body["available"], 40);
    assert!(body["detail"].as_str().unwrap().contains("40"), "{body}");
    assert_eq!(
        app.stock_and_ledger(&id).await,
        (40, 40, 0),
        "nothing changed or recorded"
    );
}

#[tokio::test]
async fn removing_exactly_the_available_stock_is_allowed() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    assert_eq!(
        app.adjust(&admin, &id, -40, "sold at the fair")
            .await
            .status(),
        201
    );
    assert_eq!(app.stock_and_ledger(&id).await.0, 0);
}

#[tokio::test]
async fn adjusting_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    assert_problem(
        app.adjust(&admin, &Uuid::new_v4().to_string(), 1, "x")
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn only_admins_adjust_stock_and_read_the_ledger() {
    let app = spawn_app().await;
    let (_, id) = admin_and_product(&app).await;
    let client = app.create_user(Role::Client).await;
    assert_problem(app.adjust(&client, &id, 1, "x").await, 403).await;
    let path = format!("/api/v1/products/{id}/stock-adjustments");
    let res = app.post(&path, &json!({"delta": 1, "reason": "x"})).await;
    assert_problem(res, 401).await;
    assert_problem(app.get_as(&client, &path).await, 403).await;
    assert_problem(app.get(&path).await, 401).await;
}

#[tokio::test]
async fn the_ledger_pages_oldest_first_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    for i in 1..=25 {
        assert_eq!(
            app.adjust(&admin, &id, i, &format!("delivery {i}"))
                .await
                .status(),
            201
        );
    }
    let mut deltas = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/v1/products/{id}/stock-adjustments?limit=10");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.get_as(&admin, &path).await.json().await.unwrap();
        pages += 1;
        deltas.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["delta"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(deltas, (1..=25).collect::<Vec<i64>>());
}

#[tokio::test]
async fn the_ledger_of_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let res = app
        .get_as(
            &admin,
            &format!("/api/v1/products/{}/stock-adjustments", Uuid::new_v4()),
        )
        .await;
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn an_archived_product_keeps_its_ledger() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    app.adjust(&admin, &id, 5, "delivery").await;
    app.delete_as(&admin, &format!("/api/v1/products/{id}"))
        .await;
    let res = app
        .get_as(&admin, &format!("/api/v1/products/{id}/stock-adjustments"))
        .await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_adjustments_never_lose_an_update() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let requests = (0..50).map(|i| {
        let delta = if i % 2 == 0 { 3 } else { -1 };
        app.adjust(&admin, &id, delta, "concurrent")
    });
    let statuses: Vec<u16> = futures::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let (stock, initial, adjusted) = app.stock_and_ledger(&id).await;
    assert_eq!(stock, 40 + 25 * 3 - 25);
    assert_eq!(i64::from(initial) + adjusted, i64::from(stock));
}

#[tokio::test]
async fn concurrent_removals_never_take_stock_below_zero_and_refusals_are_not_recorded() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let p = app
        .create_product_via_api(&admin, json!({"name": "Scarce", "price": 100, "stock": 0}))
        .await;
    let id = p["id"].as_str().unwrap().to_owned();
    // 10 units arrive one by one while 20 removals of 3 race for them: at most 3 can succeed.
    let requests = (0..30).map(|i| {
        let delta = if i % 3 == 0 { 1 } else { -3 };
        let app = &app;
        let admin = &admin;
        let id = &id;
        async move {
            (
                delta,
                app.adjust(admin, id, delta, "race").await.status().as_u16(),
            )
        }
    });
    let outcomes = futures::future::join_all(requests).await;
    let applied: i64 = outcomes
        .iter()
        .filter(|(_, s)| *s == 201)
        .map(|(d, _)| *d)
        .sum();
    let refused = outcomes.iter().filter(|(_, s)| *s == 409).count();
    assert!(
        outcomes
            .iter()
            .all(|(d, s)| *s == 201 || (*s == 409 && *d < 0)),
        "{outcomes:?}"
    );
    assert!(refused >= 17, "{outcomes:?}");
    let (stock, initial, adjusted) = app.stock_and_ledger(&id).await;
    assert!(stock >= 0);
    assert_eq!(i64::from(stock), applied);
    assert_eq!(
        i64::from(initial) + adjusted,
        i64::from(stock),
        "ledger matches stock"
    );
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stock_adjustments WHERE product_id = $1")
            .bind(Uuid::parse_str(&id).unwrap())
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(recorded as usize, outcomes.len() - refused);
}

#[tokio::test]
async fn adjustments_and_reservations_interleave_without_breaking_conservation() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let uuid = Uuid::parse_str(&id).unwrap();
    // Reservations as the orders work makes them: a guarded decrement of available stock.
    let reservations = (0..20).map(|_| {
        let db = app.state.db.clone();
        async move {
            sqlx::query("UPDATE products SET stock = stock - 2 WHERE id = $1 AND stock >= 2")
                .bind(uuid)
                .execute(&db)
                .await
                .unwrap()
                .rows_affected() as i64
                * 2
        }
    });
    let adjustments = (0..20).map(|i| {
        let (app, admin, id) = (&app, &admin, &id);
        async move {
            let delta = if i % 2 == 0 { 2 } else { -3 };
            (
                delta,
                app.adjust(admin, id, delta, "interleaved")
                    .await
                    .status()
                    .as_u16(),
            )
        }
    });
    let (reserved, adjusted) = futures::future::join(
        futures::future::join_all(reservations),
        futures::future::join_all(adjustments),
    )
    .await;
    let reserved: i64 = reserved.iter().sum();
    assert!(
        adjusted.iter().all(|(_, s)| *s == 201 || *s == 409),
        "{adjusted:?}"
    );
    let (stock, initial, ledger) = app.stock_and_ledger(&id).await;
    assert!(stock >= 0);
    assert_eq!(
        i64::from(initial) + ledger,
        i64::from(stock) + reserved,
        "conservation"
    );
}

#[tokio::test]
async fn the_database_refuses_negative_stock_and_price_whatever_the_code_path() {
    let app = spawn_app().await;
    let (_, id) = admin_and_product(&app).await;
    let uuid = Uuid::parse_str(&id).unwrap();
    for sql in [
        "UPDATE products SET stock = -1 WHERE id = $1",
        "UPDATE products SET price = -1 WHERE id = $1",
    ] {
        let err = sqlx::query(sql)
            .bind(uuid)
            .execute(&app.state.db)
            .await
            .unwrap_err();
        assert!(
            err.as_database_error().unwrap().is_check_violation(),
            "{sql}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Paging, sorting and filtering

const NAMES: [&str; 7] = [
    "apple", "bread", "cheese", "dates", "eggs", "flour", "grapes",
];

/// Inserts 57 products in three statements, so created_at, name and price all have ties.
async fn seed_catalogue(app: &TestApp) {
    for (start, end) in [(0, 20), (20, 40), (40, 57)] {
        sqlx::query(
            "INSERT INTO products (id, name, description, price, currency, stock, initial_stock)
             SELECT gen_random_uuid(), ($3::text[])[1 + i % 7], 'item ' || i, (i % 5) * 100,
                    'USD', i % 4, i % 4
             FROM generate_series($1::int, $2::int - 1) AS i",
        )
        .bind(start)
        .bind(end)
        .bind(NAMES.as_slice())
        .execute(&app.state.db)
        .await
        .unwrap();
    }
}

fn key_order(sort: &str, a: &Value, b: &Value) -> std::cmp::Ordering {
    let field = sort.trim_start_matches('-');
    let primary = match field {
        "price" => a["price"].as_i64().cmp(&b["price"].as_i64()),
        "name" => a["name"].as_str().cmp(&b["name"].as_str()),
        _ => {
            let at = |v: &Value| {
                v["created_at"]
                    .as_str()
                    .unwrap()
                    .parse::<DateTime<Utc>>()
                    .unwrap()
            };
            at(a).cmp(&at(b))
        }
    };
    let id = |v: &Value| Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
    let order = primary.then(id(a).cmp(&id(b)));
    if sort.starts_with('-') {
        order.reverse()
    } else {
        order
    }
}

async fn pages_through_every_product(sort: &str) {
    let app = spawn_app().await;
    seed_catalogue(&app).await;
    let all = app.list_all(&format!("sort={sort}&limit=100")).await;
    assert_eq!(all.len(), 57);

    let paged = app.list_all(&format!("sort={sort}&limit=10")).await;
    let paged_ids = ids(&paged);
    assert_eq!(paged_ids.len(), 57, "no gaps");
    assert_eq!(
        paged_ids.iter().collect::<HashSet<_>>().len(),
        57,
        "no repeats"
    );

    let mut expected = paged.clone();
    expected.sort_by(|a, b| key_order(sort, a, b));
    assert_eq!(paged_ids, ids(&expected), "ordered by {sort}, ties by id");
}

#[tokio::test]
async fn paging_by_name_visits_every_product_once_in_order() {
    pages_through_every_product("name").await;
}

#[tokio::test]
async fn paging_by_name_descending_visits_every_product_once_in_order() {
    pages_through_every_product("-name").await;
}

#[tokio::test]
async fn paging_by_price_visits_every_product_once_in_order() {
    pages_through_every_product("price").await;
}

#[tokio::test]
async fn paging_by_price_descending_visits_every_product_once_in_order() {
    pages_through_every_product("-price").await;
}

#[tokio::test]
async fn paging_by_creation_visits_every_product_once_in_order() {
    pages_through_every_product("created_at").await;
}

#[tokio::test]
async fn paging_by_creation_descending_visits_every_product_once_in_order() {
    pages_through_every_product("-created_at").await;
}

#[tokio::test]
async fn the_default_page_holds_20_products_and_a_cursor() {
    let app = spawn_app().await;
    seed_catalogue(&app).await;
    let page: Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn paging_with_filters_visits_every_match_once() {
    let app = spawn_app().await;
    seed_catalogue(&app).await;
    let paged = app
        .list_all("sort=-price&limit=4&min_price=100&max_price=300&in_stock=true")
        .await;
    let all = app
        .list_all("sort=-price&limit=100&min_price=100&max_price=300&in_stock=true")
        .await;
    assert_eq!(ids(&paged), ids(&all));
    assert!(!paged.is_empty());
}

#[tokio::test]
async fn search_matches_name_or_description_ignoring_case() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    app.create_product_via_api(&admin, json!({"name": "Espresso Cup", "price": 1}))
        .await;
    app.create_product_via_api(
        &admin,
        json!({"name": "Mug", "description": "fits a CUP of tea", "price": 1}),
    )
    .await;
    app.create_product_via_api(
        &admin,
        json!({"name": "Saucer", "description": "flat", "price": 1}),
    )
    .await;
    let mut names: Vec<String> = app
        .list_all("q=cup")
        .await
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["Espresso Cup", "Mug"]);
}

#[tokio::test]
async fn search_treats_wildcards_literally() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    app.create_product_via_api(&admin, json!({"name": "50% off sticker", "price": 1}))
        .await;
    app.create_product_via_api(&admin, json!({"name": "500 sheets", "price": 1}))
        .await;
    let found = app.list_all("q=50%25").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["name"], "50% off sticker");
    assert!(app.list_all("q=_").await.is_empty());
}

#[tokio::test]
async fn the_price_range_is_inclusive() {
    let app = spawn_app().await;
    seed_catalogue(&app).await;
    let found = app.list_all("min_price=100&max_price=200").await;
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|p| (100..=200).contains(&p["price"].as_i64().unwrap()))
    );
    // Prices are (i % 5) * 100 for i in 0..57: 100 and 200 each appear 11 times.
    assert_eq!(found.len(), 23);
}

#[tokio::test]
async fn in_stock_filters_on_available_stock() {
    let app = spawn_app().await;
    seed_catalogue(&app).await;
    let with = app.list_all("in_stock=true").await;
    let without = app.list_all("in_stock=false").await;
    assert!(with.iter().all(|p| p["stock"].as_i64().unwrap() > 0));
    assert!(without.iter().all(|p| p["stock"].as_i64().unwrap() == 0));
    assert_eq!(with.len() + without.len(), 57);
    assert_eq!(without.len(), 15);
}

#[tokio::test]
async fn archived_products_are_not_listed() {
    let app = spawn_app().await;
    let (admin, id) = admin_and_product(&app).await;
    let other = app
        .create_product_via_api(&admin, json!({"name": "Saucer", "price": 5}))
        .await;
    let res = app
        .delete_as(&admin, &format!("/api/v1/products/{id}"))
        .await;
    assert_eq!(res.status(), 204, "{:?}", res.text().await);
    assert_eq!(
        ids(&app.list_all("").await),
        [other["id"].as_str().unwrap()]
    );
}

#[tokio::test]
async fn malformed_list_parameters_are_a_400() {
    let app = spawn_app().await;
    for query in [
        "sort=colour",
        "min_price=cheap",
        "in_stock=maybe",
        "limit=ten",
        "colour=red",
        "cursor=%25%25",
    ] {
        assert_problem(app.get(&format!("/api/v1/products?{query}")).await, 400).await;
    }
}

#[tokio::test]
async fn a_cursor_from_another_sort_order_is_a_400() {
    let app = spawn_app().await;
    seed_catalogue(&app).await;
    let page: Value = app
        .get("/api/v1/products?sort=price&limit=5")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let res = app
        .get(&format!(
            "/api/v1/products?sort=name&limit=5&cursor={cursor}"
        ))
        .await;
    assert_problem(res, 400).await;
}

// ---------------------------------------------------------------------------------------------
// Documentation

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
