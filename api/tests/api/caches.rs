//! The api's in-process caches: catalogue answers and live sessions. What the api changes is
//! read back at once, on this replica and (told over NATS) on the others; what changes behind
//! its back is seen within the TTL.

use crate::helpers::{
    Catalogue, PASSWORD, Replica, TestApp, TestUser, assert_eventually, assert_problem,
    catalogue_with, product_path, spawn_app_with,
};
use common::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

/// Long enough that nothing in a test expires by itself: what changes is what was invalidated.
const LONG: &str = "60000";
const CACHED: [(&str, &str); 2] = [
    ("CATALOGUE_CACHE_TTL_MS", LONG),
    ("SESSION_CACHE_TTL_MS", LONG),
];
const DEADLINE: Duration = Duration::from_secs(10);
const LIST: &str = "/api/v1/products?sort=name";

/// An app whose caches keep every entry for longer than a test.
async fn cached_app() -> TestApp {
    spawn_app_with(&CACHED).await
}

/// Another replica of `app` whose caches keep every entry for longer than a test.
async fn cached_replica(app: &TestApp) -> Replica {
    app.replica(&CACHED).await
}

/// A [`Catalogue`] whose caches keep every entry for longer than a test, with the cup's page and
/// the list read once (so cached).
async fn cached_catalogue() -> Catalogue {
    let shop = catalogue_with(&CACHED).await;
    assert_eq!(shop.cup().await["price"], 1250);
    assert_eq!(prices(&json_of(shop.app.get(LIST).await).await), [1250]);
    shop
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

/// The prices on the catalogue page at `query`.
async fn prices_at(app: &TestApp, query: &str) -> Vec<i64> {
    prices(&json_of(app.get(&format!("/api/v1/products?{query}")).await).await)
}

// --- catalogue: what is cached --------------------------------------------------------------

#[tokio::test]
async fn a_catalogue_page_is_answered_from_the_cache_however_its_query_is_spelled() {
    let app = cached_app().await;
    let id = app.products().create("Cup", 100, 5).await;
    assert_eq!(prices_at(&app, "limit=20").await, [100]);

    set_price_in_database(&app, id, 200).await;

    // The same page, spelled differently: parameters reordered, the default sort named.
    for query in [
        "limit=20",
        "sort=created_at&limit=20",
        "limit=20&sort=created_at",
    ] {
        assert_eq!(
            prices_at(&app, query).await,
            [100],
            "{query} is served from the cache"
        );
    }
}

#[tokio::test]
async fn answers_not_read_before_come_from_the_database() {
    let app = cached_app().await;
    let id = app.products().create("Cup", 100, 5).await;
    assert_eq!(prices_at(&app, "limit=20").await, [100]);

    set_price_in_database(&app, id, 200).await;

    assert_eq!(
        app.products().read(&id.to_string()).await["price"],
        200,
        "a detail"
    );
    assert_eq!(prices_at(&app, "limit=21").await, [200], "another page");
}

#[tokio::test]
async fn a_change_made_behind_the_apis_back_is_seen_once_the_ttl_has_passed() {
    let app = spawn_app_with(&[("CATALOGUE_CACHE_TTL_MS", "300")]).await;
    let id = app.products().create("Cup", 100, 5).await;
    assert_eq!(app.products().read(&id.to_string()).await["price"], 100);

    set_price_in_database(&app, id, 200).await;

    common::testing::eventually(DEADLINE, "the cached detail expires", || async {
        (app.products().read(&id.to_string()).await["price"] == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn cached_answers_are_byte_for_byte_the_uncached_ones_plus_cache_control() {
    let app = cached_app().await;
    let uncached = app.replica(&[("CATALOGUE_CACHE_TTL_MS", "0")]).await;
    for (name, price) in [("Cup", 100), ("Saucer", 50), ("Pot", 900)] {
        app.products().create(name, price, 3).await;
    }
    let id = app.products().create("Spoon", 20, 0).await;

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
        for headers in [&hit_headers, &miss_headers] {
            assert_eq!(headers["cache-control"], "public, max-age=60", "{path}");
        }
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

// --- catalogue: writes through the api are read back at once ------------------------------

#[tokio::test]
async fn a_created_product_is_listed_at_once() {
    let app = cached_app().await;
    let admin = app.create_user(Role::Admin).await;
    assert!(prices(&json_of(app.get(LIST).await).await).is_empty());

    let cup = app
        .products()
        .create_via_api(&admin, json!({"name": "Cup", "price": 100, "stock": 5}))
        .await;

    assert_eq!(prices(&json_of(app.get(LIST).await).await), [100]);
    assert_eq!(
        app.products().read(cup["id"].as_str().unwrap()).await["price"],
        100
    );
}

#[tokio::test]
async fn an_update_is_read_back_at_once() {
    let shop = cached_catalogue().await;

    assert_eq!(shop.update(json!({"price": 150})).await.status(), 200);

    assert_eq!(prices(&json_of(shop.app.get(LIST).await).await), [150]);
    assert_eq!(shop.cup().await["price"], 150);
}

#[tokio::test]
async fn a_stock_adjustment_is_read_back_at_once() {
    let shop = cached_catalogue().await;

    assert_eq!(shop.adjust(-2, "broken").await.status(), 201);

    assert_eq!(shop.cup().await["stock"], 38);
    let page = json_of(shop.app.get(LIST).await).await;
    assert_eq!(page["items"][0]["stock"], 38);
}

#[tokio::test]
async fn an_archived_product_leaves_the_cached_catalogue_at_once() {
    let shop = cached_catalogue().await;

    assert_eq!(shop.archive().await.status(), 204);

    assert_problem(shop.app.get(&product_path(&shop.id)).await, 404).await;
    assert!(prices(&json_of(shop.app.get(LIST).await).await).is_empty());
}

#[tokio::test]
async fn a_product_write_on_one_replica_empties_the_catalogue_cache_of_another() {
    let shop = catalogue_with(&CACHED).await;
    let other = cached_replica(&shop.app).await;
    let path = product_path(&shop.id);
    assert_eq!(json_of(other.get(&path).await).await["price"], 1250);
    assert_eq!(
        prices(&json_of(other.get("/api/v1/products").await).await),
        [1250]
    );

    assert_eq!(shop.update(json!({"price": 175})).await.status(), 200);

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

#[tokio::test]
async fn the_openapi_document_names_the_cache_control_of_catalogue_reads() {
    let app = cached_app().await;
    let doc: Value = json_of(app.get("/openapi.json").await).await;
    for path in ["/api/v1/products", "/api/v1/products/{id}"] {
        let header = &doc["paths"][path]["get"]["responses"]["200"]["headers"]["cache-control"];
        assert!(header["description"].is_string(), "{path}: {header}");
    }
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

/// An app with the session cache TTL `ttl_ms` and a client whose session it has seen.
async fn app_with_a_seen_session(ttl_ms: &str) -> (TestApp, TestUser) {
    let app = spawn_app_with(&[("SESSION_CACHE_TTL_MS", ttl_ms)]).await;
    let user = app.create_user(Role::Client).await;
    assert_eq!(app.get_as(&user, "/api/v1/users/me").await.status(), 200);
    (app, user)
}

#[tokio::test]
async fn a_live_session_is_remembered_so_requests_do_not_read_it_again() {
    let (app, user) = app_with_a_seen_session(LONG).await;

    revoke_in_database(&app, &user).await;

    // Unseen until the entry expires: only the api's own revocations are told at once.
    assert_eq!(app.get_as(&user, "/api/v1/users/me").await.status(), 200);
}

#[tokio::test]
async fn with_a_session_ttl_of_zero_every_request_reads_the_session() {
    let (app, user) = app_with_a_seen_session("0").await;

    revoke_in_database(&app, &user).await;

    assert_problem(app.get_as(&user, "/api/v1/users/me").await, 401).await;
}

#[tokio::test]
async fn a_session_revoked_behind_the_apis_back_ends_once_the_ttl_has_passed() {
    let (app, user) = app_with_a_seen_session("300").await;

    revoke_in_database(&app, &user).await;

    assert_eventually(DEADLINE, "the remembered session expires", || async {
        app.get_as(&user, "/api/v1/users/me").await.status() == 401
    })
    .await;
}

/// Waits until `replica` refuses `access_token`.
async fn ended_on(replica: &Replica, access_token: &str) {
    common::testing::eventually(DEADLINE, "the other replica ends the session", || async {
        (replica.me_with(access_token).await.status() == 401).then_some(())
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
    ended_on(&other, &user.token).await;
}

#[tokio::test]
async fn a_password_change_on_one_replica_ends_the_other_sessions_on_another() {
    let app = cached_app().await;
    let other = cached_replica(&app).await;
    let ann = app.accounts().sign_up("ann@example.com").await;
    let elsewhere = app.accounts().log_in("ann@example.com", PASSWORD).await;
    assert_eq!(other.me_with(&elsewhere.access).await.status(), 200);

    let res = ann
        .browser
        .change_password(PASSWORD, "a brand new passphrase")
        .await;

    assert_eq!(res.status(), 204);
    ended_on(&other, &elsewhere.access).await;
    assert_eq!(
        app.accounts().me_with(&elsewhere.access).await.status(),
        401
    );
    assert_eq!(
        other.me_with(&ann.session.access).await.status(),
        200,
        "the caller's stays"
    );
}

#[tokio::test]
async fn a_reused_refresh_token_on_one_replica_ends_the_session_on_another() {
    let app = cached_app().await;
    let other = cached_replica(&app).await;
    let stolen = app
        .accounts()
        .sign_up("ann@example.com")
        .await
        .session
        .refresh;
    let newer = crate::helpers::Session::set_by(&app.accounts().refresh_with(&stolen).await);
    assert_eq!(other.me_with(&newer.access).await.status(), 200);

    assert_problem(app.accounts().refresh_with(&stolen).await, 401).await;

    assert_eq!(app.accounts().me_with(&newer.access).await.status(), 401);
    ended_on(&other, &newer.access).await;
}

#[tokio::test]
async fn a_replica_starting_with_a_new_admin_password_ends_the_old_admin_sessions_everywhere() {
    let first = [
        ("SESSION_CACHE_TTL_MS", LONG),
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", "the first administrator passphrase"),
    ];
    let app = spawn_app_with(&first).await;
    let session = app
        .accounts()
        .log_in("root@example.com", "the first administrator passphrase")
        .await;
    assert_eq!(app.accounts().me_with(&session.access).await.status(), 200);

    app.replica(&[
        ("SESSION_CACHE_TTL_MS", LONG),
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", "the second administrator passphrase"),
    ])
    .await;

    common::testing::eventually(DEADLINE, "the running replica ends the session", || async {
        (app.accounts().me_with(&session.access).await.status() == 401).then_some(())
    })
    .await;
}
