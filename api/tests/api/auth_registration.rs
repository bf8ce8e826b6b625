//! Registration: the CLIENT account it creates, its cookies, the password policy and how
//! passwords are stored.

use crate::helpers::{PASSWORD, assert_problem, set_cookie, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn registering_creates_a_client_account() {
    let app = spawn_app().await;

    let res = app.accounts().register("  Ann.Lee@Example.COM ").await;

    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["email"], "ann.lee@example.com");
    assert_eq!(user["role"], "CLIENT");
    assert_eq!(user["name"], "Ann");
    assert!(user["id"].is_string() && user["created_at"].is_string());
}

#[tokio::test]
async fn registering_signs_the_browser_in() {
    let app = spawn_app().await;

    let ann = app.accounts().sign_up("ann@example.com").await;

    let me = ann.browser.me().await;
    assert_eq!(me.status(), 200, "the access cookie authenticates");
    assert_eq!(me.json::<Value>().await.unwrap()["id"], ann.id);
}

#[tokio::test]
async fn registration_sets_http_only_same_site_cookies_scoped_by_path() {
    let app = spawn_app().await;

    let res = app.accounts().register("ann@example.com").await;

    let access = set_cookie(&res, "access_token").expect("access cookie");
    let refresh = set_cookie(&res, "refresh_token").expect("refresh cookie");
    for c in [&access, &refresh] {
        assert!(c.contains("; HttpOnly"), "{c}");
        assert!(c.contains("; SameSite=Strict"), "{c}");
        assert!(!c.contains("Secure"), "COOKIE_SECURE=false in tests: {c}");
    }
    assert!(access.contains("; Path=/;"), "{access}");
    assert!(refresh.contains("; Path=/api/v1/auth;"), "{refresh}");
}

#[tokio::test]
async fn auth_cookies_are_secure_unless_cookie_secure_is_false() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;

    let res = app.accounts().register("ann@example.com").await;

    for name in ["__Host-access_token", "__Secure-refresh_token"] {
        let cookie = set_cookie(&res, name).unwrap_or_else(|| panic!("{name} set"));
        assert!(cookie.contains("; Secure"), "{cookie}");
    }
}

#[tokio::test]
async fn registration_cannot_create_an_admin_a_role_field_is_rejected() {
    let app = spawn_app().await;

    let res = app
        .accounts()
        .register_with(json!({"email": "eve@example.com", "password": PASSWORD, "role": "ADMIN"}))
        .await;

    let body = assert_problem(res, 422).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("unknown field `role`"), "{body}");
    assert_eq!(app.accounts().count().await, 0);
}

#[tokio::test]
async fn registering_a_taken_email_in_another_case_is_a_409() {
    let app = spawn_app().await;
    app.accounts().sign_up("ann@example.com").await;

    let res = app.accounts().register(" ANN@Example.com").await;

    assert_problem(res, 409).await;
    assert_eq!(app.accounts().count().await, 1);
}

#[tokio::test]
async fn passwords_against_the_policy_are_422_naming_the_field() {
    let app = spawn_app().await;
    let long = "x".repeat(129);
    for (password, expected) in [
        ("short", "at least 8"),
        (long.as_str(), "at most 128"),
        ("Ann@Example.com", "email"),
    ] {
        let res = app
            .accounts()
            .register_with(json!({"email": "ann@example.com", "password": password}))
            .await;

        let body = assert_problem(res, 422).await;
        assert_eq!(body["errors"][0]["field"], "password", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(app.accounts().count().await, 0);
}

#[tokio::test]
async fn a_malformed_email_and_a_short_password_are_both_named() {
    let app = spawn_app().await;

    let res = app
        .accounts()
        .register_with(json!({"email": "not-an-email", "password": "short"}))
        .await;

    let body = assert_problem(res, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn the_registration_answer_carries_no_password_or_hash() {
    let app = spawn_app().await;

    let res = app.accounts().register("ann@example.com").await;

    let text = res.text().await.unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains("argon2") && !text.contains("hash"),
        "{text}"
    );
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_hashes() {
    let app = spawn_app().await;

    app.accounts().sign_up("ann@example.com").await;

    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_auth_and_users_route_and_both_schemes() {
    let app = spawn_app().await;

    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/password", "put"),
        ("/api/v1/users/me", "get"),
        ("/api/v1/users", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} documented");
        assert!(
            op["responses"].as_object().unwrap().len() >= 2,
            "{path} responses"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["cookie"]["type"], "apiKey");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "access_token");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert!(doc["components"]["schemas"]["RegisterRequest"].is_object());
    assert!(doc["components"]["schemas"]["User"].is_object());
}
