//! The users domain: one's own profile and the ADMIN-only list of accounts.

use crate::helpers::{assert_problem, spawn_app};
use common::domain::Role;
use serde_json::Value;
use std::collections::HashSet;

#[tokio::test]
async fn me_returns_the_callers_own_profile() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;

    let res = app.get_as(&user, "/api/v1/users/me").await;

    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], user.id.to_string());
    assert_eq!(body["email"], user.email);
    assert_eq!(body["role"], "CLIENT");
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["id", "email", "name", "role", "disabled", "created_at"])
    );
}

#[tokio::test]
async fn me_without_a_token_is_401() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/v1/users/me").await, 401).await;
}

#[tokio::test]
async fn listing_users_anonymously_is_401() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/v1/users").await, 401).await;
}

#[tokio::test]
async fn listing_users_as_a_client_is_403() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;

    let res = app.get_as(&client, "/api/v1/users").await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    sqlx::query("UPDATE users SET role = 'CLIENT' WHERE id = $1")
        .bind(admin.id)
        .execute(&app.state.db)
        .await
        .unwrap();

    let res = app.get_as(&admin, "/api/v1/users").await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn an_admin_lists_every_user_page_by_page() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let mut expected = HashSet::from([admin.id.to_string()]);
    for _ in 0..4 {
        expected.insert(app.create_user(Role::Client).await.id.to_string());
    }

    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_owned();
    loop {
        let res = app.get_as(&admin, &path).await;
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for item in items {
            assert!(item.get("password_hash").is_none());
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(seen.len(), 5, "no duplicates: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
}

#[tokio::test]
async fn the_default_page_holds_twenty_users() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    for _ in 0..20 {
        app.create_user(Role::Client).await;
    }

    let res = app.get_as(&admin, "/api/v1/users").await;

    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn a_garbled_cursor_is_400() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app.get_as(&admin, "/api/v1/users?cursor=garbage").await;

    assert_problem(res, 400).await;
}

#[tokio::test]
async fn an_out_of_range_limit_is_422_naming_it() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app.get_as(&admin, "/api/v1/users?limit=101").await;

    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["field"], "limit");
}

#[tokio::test]
async fn an_unknown_query_parameter_is_400() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app.get_as(&admin, "/api/v1/users?sort=email").await;

    assert_problem(res, 400).await;
}
