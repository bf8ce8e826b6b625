//! The api's in-process caches: catalogue answers and live sessions. What the api changes is
//! read back at once, on this replica and (told over NATS) on the others; what changes behind
//! its back is seen within the TTL.

use crate::helpers::{Replica, TestApp, TestUser, assert_problem, client, spawn_app_with};
use common::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

/// Long enough that nothing in a test expires by itself: what changes is what was invalidated.
const LONG: &str = "60000";
const DEADLINE: Duration = Duration::from_secs(10);

async fn cached_app() -> TestApp {
    spawn_app_with(&[
        ("CATALOGUE_CACHE_TTL_MS", LONG),
        ("SESSION_CACHE_TTL_MS", LONG),
    ])
    .await
}

async fn cached_replica(app: &TestApp) -> Replica {
    app.replica(&[
        ("CATALOGUE_CACHE_TTL_MS", LONG),
        ("SESSION_CACHE_TTL_MS", LONG),
    ])
    .await
}

async fn json_of(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "{}", res.url());
    res.json().await.unwrap()
}

/// Changes a product behind the api's back, as the workers do with stock.
async fn set_price_in_database(app: &TestApp, id: uuid::Uuid, price: i64) {
    sqlx::query("UPDATE products SET price = $2 WHERE id = $1")
        .bind(id)
        .bind(price)
        .execute(&app.state.db)
        .await
        .unwrap();
}

fn prices(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price"].as_i64().unwrap())
        .collect()
}

// --- catalogue ----------------------------------------------------------------------------

#[tokio::test]
async fn a_catalogue_page_is_answered_from_the_cache_however_its_query_is_spelled() {
    let app = cached_app().await;
    let id = app.create_product("Cup", 100, 5).await;
    assert_eq!(
        prices(&json_of(app.get("/api/v1/products?limit=20").await).await),
        [100]
    );

    set_price_in_database(&app, id, 200).await;

    // The same page, spelled differently: parameters reordered, the default sort named.
    for query in [
        "limit=20",
        "sort=created_at&limit=20",
        "limit=20&sort=created_at",
    ] {
        let page = json_of(app.get(&format!("/api/v1/products?{query}")).await).await;
        assert_eq!(prices(&page), [100], "{query} is served from the cache");
    }
    let detail = json_of(app.get(&format!("/api/v1/products/{id}")).await).await;
    assert_eq!(
        detail["price"], 200,
        "a detail not read before comes from the database"
    );
    let other_page = json_of(app.get("/api/v1/products?limit=21").await).await;
    assert_eq!(
        prices(&other_page),
        [200],
        "another page comes from the database"
    );
}

#[tokio::test]
async fn a_change_made_behind_the_apis_back_is_seen_once_the_ttl_has_passed() {
    let app = spawn_app_with(&[("CATALOGUE_CACHE_TTL_MS", "300")]).await;
    let id = app.create_product("Cup", 100, 5).await;
    let path = format!("/api/v1/products/{id}");
    assert_eq!(json_of(app.get(&path).await).await["price"], 100);

    set_price_in_database(&app, id, 200).await;

    common::testing::eventually(DEADLINE, "the cached detail expires", || async {
        let p = json_of(app.get(&path).await).await;
        (p["price"] == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn every_product_write_through_the_api_is_read_back_at_once() {
    let app = cached_app().await;
    let admin = app.create_user(Role::Admin).await;
    let list = "/api/v1/products?sort=name";
    assert!(
        json_of(app.get(list).await).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Create.
    let res = app
        .post_as(
            &admin,
            "/api/v1/products",
            &json!({"name": "Cup", "price": 100, "stock": 5}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = json_of_created(res).await;
    let path = format!("/api/v1/products/{id}");
    assert_eq!(prices(&json_of(app.get(list).await).await), [100]);
    assert_eq!(json_of(app.get(&path).await).await["price"], 100);

    // Update.
    let res = app
        .patch_as(&admin, &path, &json!({"price": 150}), &[])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(prices(&json_of(app.get(list).await).await), [150]);
    assert_eq!(json_of(app.get(&path).await).await["price"], 150);

    // Stock adjustment.
    let res = app
        .post_as(
            &admin,
            &format!("{path}/stock-adjustments"),
            &json!({"delta": -2, "reason": "broken"}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(json_of(app.get(&path).await).await["stock"], 3);
    assert_eq!(json_of(app.get(list).await).await["items"][0]["stock"], 3);

    // Archive.
    let res = app
        .send_as(reqwest::Method::DELETE, &admin, &path, None, &[])
        .await;
    assert_eq!(res.status(), 204);
    assert_problem(app.get(&path).await, 404).await;
    assert!(prices(&json_of(app.get(list).await).await).is_empty());
}

async fn json_of_created(res: reqwest::Response) -> String {
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn cached_answers_are_byte_for_byte_the_uncached_ones_plus_cache_control() {
    let app = cached_app().await;
    let uncached = app.replica(&[("CATALOGUE_CACHE_TTL_MS", "0")]).await;
    for (name, price) in [("Cup", 100), ("Saucer", 50), ("Pot", 900)] {
        app.create_product(name, price, 3).await;
    }
    let id = app.create_product("Spoon", 20, 0).await;

    for path in [
        "/api/v1/products?sort=-price&limit=2".to_owned(),
        "/api/v1/products?q=%20cup%20&in_stock=true".to_owned(),
        format!("/api/v1/products/{id}"),
    ] {
        let miss = app.get(&path).await;
        let miss_headers = miss.headers().clone();
        let miss = miss.bytes().await.unwrap();
        let hit = app.get(&path).await;
        let hit_headers = hit.headers().clone();
        let hit = hit.bytes().await.unwrap();
        let plain = uncached.get(&path).await;
        let plain_headers = plain.headers().clone();
        let plain = plain.bytes().await.unwrap();

        assert_eq!(hit, miss, "{path}");
        assert_eq!(hit, plain, "{path}");
        for headers in [&miss_headers, &hit_headers, &plain_headers] {
            assert_eq!(headers["content-type"], "application/json", "{path}");
            assert_eq!(
                headers["content-length"].to_str().unwrap(),
                plain.len().to_string()
            );
        }
        assert_eq!(hit_headers["cache-control"], "public, max-age=60", "{path}");
        assert_eq!(
            miss_headers["cache-control"], "public, max-age=60",
            "{path}"
        );
        assert!(plain_headers.get("cache-control").is_none(), "{path}");
    }
}

#[tokio::test]
async fn a_bad_catalogue_query_is_still_a_problem_once_the_page_is_cached() {
    let app = cached_app().await;
    assert_eq!(app.get("/api/v1/products?limit=20").await.status(), 200);

    assert_problem(app.get("/api/v1/products?limit=20&colour=red").await, 400).await;
    assert_problem(app.get("/api/v1/products?limit=0").await, 422).await;
    assert_problem(app.get("/api/v1/products/not-a-uuid").await, 400).await;
}

#[tokio::test]
async fn a_product_write_on_one_replica_empties_the_catalogue_cache_of_another() {
    let app = cached_app().await;
    let other = cached_replica(&app).await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.create_product("Cup", 100, 5).await;
    let path = format!("/api/v1/products/{id}");
    assert_eq!(json_of(other.get(&path).await).await["price"], 100);
    assert_eq!(
        prices(&json_of(other.get("/api/v1/products").await).await),
        [100]
    );

    let res = app
        .patch_as(&admin, &path, &json!({"price": 175}), &[])
        .await;
    assert_eq!(res.status(), 200);

    common::testing::eventually(
        DEADLINE,
        "the other replica forgets the product",
        || async {
            let detail = json_of(other.get(&path).await).await;
            let page = json_of(other.get("/api/v1/products").await).await;
            (detail["price"] == 175 && prices(&page) == [175]).then_some(())
        },
    )
    .await;
}

// --- sessions -----------------------------------------------------------------------------

/// Revokes a session behind the api's back.
async fn revoke_in_database(app: &TestApp, user: &TestUser) {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1")
        .bind(user.session_id)
        .execute(&app.state.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_live_session_is_remembered_so_requests_do_not_read_it_again() {
    let app = cached_app().await;
    let user = app.create_user(Role::Client).await;
    assert_eq!(app.get_as(&user, "/api/v1/users/me").await.status(), 200);

    revoke_in_database(&app, &user).await;

    // Unseen until the entry expires: only the api's own revocations are told at once.
    assert_eq!(app.get_as(&user, "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn with_a_session_ttl_of_zero_every_request_reads_the_session() {
    let app = spawn_app_with(&[("SESSION_CACHE_TTL_MS", "0")]).await;
    let user = app.create_user(Role::Client).await;
    assert_eq!(app.get_as(&user, "/api/v1/users/me").await.status(), 200);

    revoke_in_database(&app, &user).await;

    assert_problem(app.get_as(&user, "/api/v1/users/me").await, 401).await;
}

#[tokio::test]
async fn a_session_revoked_behind_the_apis_back_ends_once_the_ttl_has_passed() {
    let app = spawn_app_with(&[("SESSION_CACHE_TTL_MS", "300")]).await;
    let user = app.create_user(Role::Client).await;
    assert_eq!(app.get_as(&user, "/api/v1/users/me").await.status(), 200);

    revoke_in_database(&app, &user).await;

    common::testing::eventually(DEADLINE, "the remembered session expires", || async {
        (app.get_as(&user, "/api/v1/users/me").await.status() == 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_logout_on_one_replica_ends_the_session_on_another() {
    let app = cached_app().await;
    let other = cached_replica(&app).await;
    let user = app.create_user(Role::Client).await;
    // The other replica now remembers the session, for longer than the deadline below.
    assert_eq!(other.get_as(&user, "/api/v1/users/me").await.status(), 200);

    let res = app.post_empty_as(&user, "/api/v1/auth/logout", &[]).await;
    assert_eq!(res.status(), 204);
    assert_problem(app.get_as(&user, "/api/v1/users/me").await, 401).await;

    common::testing::eventually(DEADLINE, "the other replica ends the session", || async {
        (other.get_as(&user, "/api/v1/users/me").await.status() == 401).then_some(())
    })
    .await;
}

use crate::helpers::PASSWORD;

/// Registers through `app`, returning the access and refresh tokens of the new session.
async fn register(app: &TestApp, email: &str) -> (String, String) {
    let res = client()
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    (cookie(&res, "access_token"), cookie(&res, "refresh_token"))
}

fn cookie(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("{name} cookie"))
        .to_owned()
}

async fn me(address: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{address}/api/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_password_change_on_one_replica_ends_the_other_sessions_on_another() {
    let app = cached_app().await;
    let other = cached_replica(&app).await;
    let (this_access, _) = register(&app, "ann@example.com").await;
    let res = client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let other_access = cookie(&res, "access_token");
    assert_eq!(me(&other.address, &other_access).await, 200);

    let res = reqwest::Client::new()
        .put(app.url("/api/v1/auth/password"))
        .bearer_auth(&this_access)
        .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    common::testing::eventually(DEADLINE, "the other session ends everywhere", || async {
        (me(&other.address, &other_access).await == 401).then_some(())
    })
    .await;
    assert_eq!(me(&app.address, &other_access).await, 401);
    assert_eq!(
        me(&other.address, &this_access).await,
        200,
        "the caller's stays"
    );
}

#[tokio::test]
async fn a_reused_refresh_token_on_one_replica_ends_the_session_on_another() {
    let app = cached_app().await;
    let other = cached_replica(&app).await;
    let (_, stolen) = register(&app, "ann@example.com").await;
    let res = reqwest::Client::new()
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("refresh_token={stolen}"))
        .send()
        .await
        .unwrap();
    let newer_access = cookie(&res, "access_token");
    assert_eq!(me(&other.address, &newer_access).await, 200);

    let res = reqwest::Client::new()
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("refresh_token={stolen}"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;

    assert_eq!(me(&app.address, &newer_access).await, 401);
    common::testing::eventually(DEADLINE, "the other replica ends the session", || async {
        (me(&other.address, &newer_access).await == 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_replica_starting_with_a_new_admin_password_ends_the_old_admin_sessions_everywhere() {
    let password = "the first administrator passphrase";
    let app = spawn_app_with(&[
        ("SESSION_CACHE_TTL_MS", LONG),
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", password),
    ])
    .await;
    let res = client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "root@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    let access = cookie(&res, "access_token");
    assert_eq!(me(&app.address, &access).await, 200);

    app.replica(&[
        ("SESSION_CACHE_TTL_MS", LONG),
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", "the second administrator passphrase"),
    ])
    .await;

    common::testing::eventually(DEADLINE, "the running replica ends the session", || async {
        (me(&app.address, &access).await == 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_openapi_document_names_the_cache_control_of_catalogue_reads() {
    let app = cached_app().await;
    let doc: Value = json_of(app.get("/openapi.json").await).await;
    for path in ["/api/v1/products", "/api/v1/products/{id}"] {
        let header = &doc["paths"][path]["get"]["responses"]["200"]["headers"]["cache-control"];
        assert!(header["description"].is_string(), "{path}: {header}");
    }
}
