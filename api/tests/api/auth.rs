//! Accounts and sessions: registration, login, refresh rotation and theft detection, logout,
//! password change, rate limits, forged tokens, CSRF and the start-up ADMIN.

use crate::helpers::{TestApp, assert_problem, client, spawn_app, spawn_app_with};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::domain::Role;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::helpers::PASSWORD;

/// The value of cookie `name` set by `res`, with its attributes.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Just the value of cookie `name` set by `res`.
fn cookie_value(res: &reqwest::Response, name: &str) -> String {
    let full = set_cookie(res, name).unwrap_or_else(|| panic!("{name} cookie set"));
    let pair = full.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

// --- registration -------------------------------------------------------------------------

#[tokio::test]
async fn registering_creates_a_client_account_and_logs_it_in() {
    let app = spawn_app().await;
    let browser = client();

    let res = app.register(&browser, "  Ann.Lee@Example.COM ").await;

    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["email"], "ann.lee@example.com");
    assert_eq!(user["role"], "CLIENT");
    assert_eq!(user["name"], "Ann");
    assert!(user["id"].is_string() && user["created_at"].is_string());
    let me = browser
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the access cookie authenticates");
    assert_eq!(me.json::<Value>().await.unwrap()["id"], user["id"]);
}

#[tokio::test]
async fn registration_sets_http_only_same_site_cookies_scoped_by_path() {
    let app = spawn_app().await;

    let res = app.register(&client(), "ann@example.com").await;

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

    let res = app.register(&client(), "ann@example.com").await;

    assert!(
        set_cookie(&res, "__Host-access_token")
            .unwrap()
            .contains("; Secure")
    );
    assert!(
        set_cookie(&res, "__Secure-refresh_token")
            .unwrap()
            .contains("; Secure")
    );
}

#[tokio::test]
async fn registration_cannot_create_an_admin_a_role_field_is_rejected() {
    let app = spawn_app().await;

    let res = app
        .post_with(
            &client(),
            "/api/v1/auth/register",
            json!({"email": "eve@example.com", "password": PASSWORD, "role": "ADMIN"}),
        )
        .await;

    let body = assert_problem(res, 422).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `role`"),
        "{body}"
    );
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn registering_a_taken_email_in_another_case_is_a_409() {
    let app = spawn_app().await;
    assert_eq!(
        app.register(&client(), "ann@example.com").await.status(),
        201
    );

    let res = app.register(&client(), " ANN@Example.com").await;

    assert_problem(res, 409).await;
    assert_eq!(app.user_count().await, 1);
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
            .post_with(
                &client(),
                "/api/v1/auth/register",
                json!({"email": "ann@example.com", "password": password}),
            )
            .await;

        let body = assert_problem(res, 422).await;
        assert_eq!(body["errors"][0]["field"], "password", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_malformed_email_and_a_short_password_are_both_named() {
    let app = spawn_app().await;

    let res = app
        .post_with(
            &client(),
            "/api/v1/auth/register",
            json!({"email": "not-an-email", "password": "short"}),
        )
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
async fn passwords_are_stored_as_argon2id_hashes_and_never_returned() {
    let app = spawn_app().await;

    let res = app.register(&client(), "ann@example.com").await;

    let text = res.text().await.unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains("argon2") && !text.contains("hash"),
        "{text}"
    );
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
}

// --- login --------------------------------------------------------------------------------

#[tokio::test]
async fn logging_in_sets_both_cookies_and_returns_the_user_without_tokens() {
    let app = spawn_app().await;
    app.register(&client(), "ann@example.com").await;
    let browser = client();

    let res = app.login(&browser, "ANN@example.com ", PASSWORD).await;

    assert_eq!(res.status(), 200);
    assert!(set_cookie(&res, "access_token").is_some());
    assert!(set_cookie(&res, "refresh_token").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], "ann@example.com");
    assert!(!body.to_string().contains("token"), "{body}");
    let me = browser
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer_in_the_same_time() {
    let app = spawn_app().await;
    app.register(&client(), "ann@example.com").await;

    let mut known = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let res = app
            .login(&client(), "ann@example.com", "wrong password!")
            .await;
        known += start.elapsed();
        bodies.push(assert_problem(res, 401).await);

        let start = Instant::now();
        let res = app
            .login(&client(), "nobody@example.com", "wrong password!")
            .await;
        unknown += start.elapsed();
        bodies.push(assert_problem(res, 401).await);
    }

    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // Both verify one argon2id hash; with no dummy hash, unknown emails would answer in
    // microseconds instead of tens of milliseconds.
    eprintln!("3 failed logins: known email {known:?}, unknown email {unknown:?}");
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "known {known:?}, unknown {unknown:?}"
    );
}

#[tokio::test]
async fn failed_logins_over_the_account_limit_are_429_with_retry_after() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    app.register(&client(), "ann@example.com").await;
    for _ in 0..3 {
        let res = app
            .login(&client(), "ann@example.com", "wrong password!")
            .await;
        assert_problem(res, 401).await;
    }

    let res = app
        .login(&client(), "ann@example.com", "wrong password!")
        .await;

    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(res, 429).await;
    let res = app.login(&client(), "ann@example.com", PASSWORD).await;
    assert_problem(res, 429).await;
}

#[tokio::test]
async fn failed_logins_over_the_address_limit_are_429_for_every_account() {
    let app = spawn_app_with(&[("LOGIN_IP_RATE_PER_MINUTE", "3")]).await;
    app.register(&client(), "ann@example.com").await;
    for i in 0..3 {
        let res = app
            .login(
                &client(),
                &format!("user{i}@example.com"),
                "wrong password!",
            )
            .await;
        assert_problem(res, 401).await;
    }

    let res = app
        .login(&client(), "other@example.com", "wrong password!")
        .await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429).await;
    let res = app.login(&client(), "ann@example.com", PASSWORD).await;
    assert_problem(res, 429).await;
}

#[tokio::test]
async fn successful_logins_do_not_count_towards_the_limits() {
    let app = spawn_app_with(&[
        ("LOGIN_RATE_PER_MINUTE", "2"),
        ("LOGIN_IP_RATE_PER_MINUTE", "2"),
    ])
    .await;
    app.register(&client(), "ann@example.com").await;

    for _ in 0..4 {
        let res = app.login(&client(), "ann@example.com", PASSWORD).await;
        assert_eq!(res.status(), 200);
    }
}

// --- refresh ------------------------------------------------------------------------------

#[tokio::test]
async fn refreshing_rotates_the_refresh_token_and_issues_a_new_access_token() {
    let app = spawn_app().await;
    let res = app.register(&client(), "ann@example.com").await;
    let first_refresh = cookie_value(&res, "refresh_token");

    let res = app.refresh_with(&first_refresh).await;

    assert_eq!(res.status(), 204);
    let second_refresh = cookie_value(&res, "refresh_token");
    let access = cookie_value(&res, "access_token");
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(
        app.get_with_token("/api/v1/users/me", &access)
            .await
            .status(),
        200
    );
    assert_eq!(app.refresh_with(&second_refresh).await.status(), 204);
}

#[tokio::test]
async fn a_browser_refreshes_with_its_cookie_alone() {
    let app = spawn_app().await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;

    let res = browser
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 204);
    let res = browser
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "the rotated cookie replaced the old one");
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let res = app.register(&client(), "ann@example.com").await;
    let stolen = cookie_value(&res, "refresh_token");
    let res = app.refresh_with(&stolen).await;
    let newer_refresh = cookie_value(&res, "refresh_token");
    let newer_access = cookie_value(&res, "access_token");
    // In use, so the api remembers the session as live.
    assert_eq!(
        app.get_with_token("/api/v1/users/me", &newer_access)
            .await
            .status(),
        200
    );

    let res = app.refresh_with(&stolen).await;

    assert_problem(res, 401).await;
    assert_problem(app.refresh_with(&newer_refresh).await, 401).await;
    assert_problem(
        app.get_with_token("/api/v1/users/me", &newer_access).await,
        401,
    )
    .await;
}

#[tokio::test]
async fn reuse_revokes_only_the_session_it_belongs_to() {
    let app = spawn_app().await;
    let res = app.register(&client(), "ann@example.com").await;
    let stolen = cookie_value(&res, "refresh_token");
    let other = app.login(&client(), "ann@example.com", PASSWORD).await;
    let other_access = cookie_value(&other, "access_token");
    app.refresh_with(&stolen).await;

    assert_problem(app.refresh_with(&stolen).await, 401).await;

    assert_eq!(
        app.get_with_token("/api/v1/users/me", &other_access)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn refreshing_without_a_valid_refresh_token_is_401() {
    let app = spawn_app().await;

    let res = reqwest::Client::new()
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
    assert_problem(app.refresh_with("not-a-token").await, 401).await;
}

#[tokio::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let res = app.register(&client(), "ann@example.com").await;
    let token = cookie_value(&res, "refresh_token");

    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&app.state.db)
        .await
        .unwrap();

    assert_eq!(
        URL_SAFE_NO_PAD.decode(&token).unwrap().len(),
        32,
        "256 bits"
    );
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token.as_bytes());
    assert_ne!(stored[0], URL_SAFE_NO_PAD.decode(&token).unwrap());
}

// --- logout and password change -----------------------------------------------------------

#[tokio::test]
async fn logging_out_revokes_the_session_and_clears_the_cookies() {
    let app = spawn_app().await;
    let browser = client();
    let res = app.register(&browser, "ann@example.com").await;
    let access = cookie_value(&res, "access_token");
    let refresh = cookie_value(&res, "refresh_token");

    let res = browser
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 204);
    assert!(
        set_cookie(&res, "access_token")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(
        set_cookie(&res, "refresh_token")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_problem(app.get_with_token("/api/v1/users/me", &access).await, 401).await;
    assert_problem(app.refresh_with(&refresh).await, 401).await;
    let me = browser
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_problem(me, 401).await;
}

#[tokio::test]
async fn logging_out_anonymously_is_401() {
    let app = spawn_app().await;
    let res = client()
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn changing_the_password_revokes_every_other_session() {
    let app = spawn_app().await;
    let this_browser = client();
    app.register(&this_browser, "ann@example.com").await;
    let other = app.login(&client(), "ann@example.com", PASSWORD).await;
    let other_access = cookie_value(&other, "access_token");
    let other_refresh = cookie_value(&other, "refresh_token");
    assert_eq!(
        app.get_with_token("/api/v1/users/me", &other_access)
            .await
            .status(),
        200
    );

    let res = this_browser
        .put(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 204);
    assert_problem(
        app.get_with_token("/api/v1/users/me", &other_access).await,
        401,
    )
    .await;
    assert_problem(app.refresh_with(&other_refresh).await, 401).await;
    let me = this_browser
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the caller's own session stays");
    assert_problem(app.login(&client(), "ann@example.com", PASSWORD).await, 401).await;
    let res = app
        .login(&client(), "ann@example.com", "a brand new passphrase")
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_wrong_current_password_is_422_naming_it() {
    let app = spawn_app().await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;

    let res = browser
        .put(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": "not my password", "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();

    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["field"], "current_password");
}

#[tokio::test]
async fn a_new_password_against_the_policy_is_422_naming_it() {
    let app = spawn_app().await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;

    let res = browser
        .put(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .await
        .unwrap();

    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["field"], "new_password");
}

#[tokio::test]
async fn wrong_current_passwords_over_the_account_limit_are_429() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "2")]).await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;
    let attempt = || {
        browser
            .put(app.url("/api/v1/auth/password"))
            .json(&json!({"current_password": "a guessed password", "new_password": "a brand new passphrase"}))
            .send()
    };
    for _ in 0..2 {
        assert_problem(attempt().await.unwrap(), 422).await;
    }

    let res = attempt().await.unwrap();

    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429).await;
}

// --- forged access tokens -----------------------------------------------------------------

/// Claims of a genuine token for a user with a live session, to be forged in various ways.
async fn genuine_claims(app: &TestApp) -> (String, api::auth::token::Claims) {
    let user = app.create_user(Role::Admin).await;
    let claims = app
        .state
        .tokens
        .verify(&user.token)
        .expect("genuine token verifies");
    (user.token, claims)
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test]
async fn a_genuine_access_token_is_accepted_as_bearer_and_as_cookie() {
    let app = spawn_app().await;
    let (token, _) = genuine_claims(&app).await;

    assert_eq!(
        app.get_with_token("/api/v1/users/me", &token)
            .await
            .status(),
        200
    );
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/users/me"))
        .header("cookie", format!("access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_401() {
    let app = spawn_app().await;
    let (token, claims) = genuine_claims(&app).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = serde_json::to_value(&claims).unwrap();
    payload["exp"] = json!(claims.exp + 3600);
    parts[1] = b64(&payload);

    let res = app
        .get_with_token("/api/v1/users/me", &parts.join("."))
        .await;

    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_token_with_a_tampered_signature_is_401() {
    let app = spawn_app().await;
    let (token, _) = genuine_claims(&app).await;
    let (head, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;

    let res = app
        .get_with_token(
            "/api/v1/users/me",
            &format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig)),
        )
        .await;

    assert_problem(res, 401).await;
}

#[tokio::test]
async fn an_alg_none_token_is_401() {
    let app = spawn_app().await;
    let (_, claims) = genuine_claims(&app).await;
    let header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let payload = b64(&serde_json::to_value(&claims).unwrap());

    let res = app
        .get_with_token("/api/v1/users/me", &format!("{header}.{payload}."))
        .await;

    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let app = spawn_app().await;
    let (_, claims) = genuine_claims(&app).await;
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-0123456"),
    )
    .unwrap();

    assert_problem(app.get_with_token("/api/v1/users/me", &forged).await, 401).await;
}

#[tokio::test]
async fn an_hs512_token_signed_with_the_right_secret_is_401() {
    let app = spawn_app().await;
    let (_, claims) = genuine_claims(&app).await;
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(common::testing::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();

    assert_problem(app.get_with_token("/api/v1/users/me", &forged).await, 401).await;
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let app = spawn_app().await;
    let (_, mut claims) = genuine_claims(&app).await;
    claims.iat -= 3600;
    claims.exp = claims.iat + 60;
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(common::testing::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();

    assert_problem(app.get_with_token("/api/v1/users/me", &expired).await, 401).await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_401() {
    let app = spawn_app().await;
    let (_, mut claims) = genuine_claims(&app).await;
    claims.iss = "someone-else".into();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(common::testing::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();

    assert_problem(app.get_with_token("/api/v1/users/me", &forged).await, 401).await;
}

// --- CSRF ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_cookie_authenticated_post_from_a_foreign_origin_is_403() {
    let app = spawn_app().await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;

    let res = browser
        .post(app.url("/api/v1/auth/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();

    assert_problem(res, 403).await;
    let me = browser
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the session survived");
}

#[tokio::test]
async fn a_cookie_authenticated_post_from_the_apis_own_origin_passes() {
    let app = spawn_app().await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;

    let res = browser
        .post(app.url("/api/v1/auth/logout"))
        .header("origin", &app.address)
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn a_cookie_authenticated_post_from_a_trusted_origin_passes() {
    let app = spawn_app_with(&[("TRUSTED_ORIGINS", "https://shop.example")]).await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;

    let res = browser
        .post(app.url("/api/v1/auth/refresh"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn a_cross_site_refresh_is_403_and_leaves_the_token_usable() {
    let app = spawn_app().await;
    let browser = client();
    app.register(&browser, "ann@example.com").await;

    let res = browser
        .post(app.url("/api/v1/auth/refresh"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();

    assert_problem(res, 403).await;
    let res = browser
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn a_bearer_authenticated_post_is_not_subject_to_the_origin_check() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;

    let res = reqwest::Client::new()
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&user.token)
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 204);
}

// --- start-up ADMIN -----------------------------------------------------------------------

const ADMIN_EMAIL: &str = "Root@Example.com";
const ADMIN_PASSWORD: &str = "an administrator passphrase";

#[tokio::test]
async fn the_configured_admin_exists_at_start_up_and_can_log_in() {
    let app = spawn_app_with(&[
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await;
    let browser = client();

    let res = app
        .login(&browser, "root@example.com", ADMIN_PASSWORD)
        .await;

    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["role"], "ADMIN");
    assert_eq!(user["email"], "root@example.com");
    let list = browser.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(list.status(), 200);
}

#[tokio::test]
async fn seeding_again_with_a_new_password_updates_it_and_ends_old_sessions() {
    let app = spawn_app_with(&[
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await;
    let res = app.login(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let old_access = cookie_value(&res, "access_token");
    let seed = common::config::AdminSeed {
        email: ADMIN_EMAIL.into(),
        password: common::config::SecretString::from("a newer administrator passphrase"),
    };

    api::auth::service::seed_admin(&app.state.db, &app.state.passwords, &seed)
        .await
        .unwrap();

    assert_eq!(app.user_count().await, 1);
    assert_problem(
        app.get_with_token("/api/v1/users/me", &old_access).await,
        401,
    )
    .await;
    assert_problem(app.login(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await, 401).await;
    let res = app
        .login(&client(), ADMIN_EMAIL, "a newer administrator passphrase")
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_existing_client_with_the_admin_email_is_promoted_at_start_up() {
    let app = spawn_app().await;
    app.register(&client(), "root@example.com").await;
    let seed = common::config::AdminSeed {
        email: ADMIN_EMAIL.into(),
        password: common::config::SecretString::from(ADMIN_PASSWORD),
    };

    api::auth::service::seed_admin(&app.state.db, &app.state.passwords, &seed)
        .await
        .unwrap();

    let res = app.login(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "ADMIN");
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn an_admin_password_against_the_policy_stops_start_up() {
    let env = common::testing::TestEnv::new().await;
    let config = env.config_with(&[("ADMIN_EMAIL", ADMIN_EMAIL), ("ADMIN_PASSWORD", "short")]);

    let err = api::Application::build(config)
        .await
        .err()
        .expect("start-up fails");

    assert!(err.to_string().contains("ADMIN_PASSWORD"), "{err}");
}

// --- documentation ------------------------------------------------------------------------

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

#[tokio::test]
async fn a_validly_signed_token_for_a_session_that_never_existed_is_401() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Admin).await;
    let token = app
        .state
        .tokens
        .issue(user.id, Role::Admin, uuid::Uuid::new_v4())
        .unwrap();

    assert_problem(app.get_with_token("/api/v1/users/me", &token).await, 401).await;
}

// --- logs ---------------------------------------------------------------------------------

/// Log output captured in memory.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_log_line_carries_a_password_a_hash_or_a_token() {
    // The test runtime has one thread, so the server's tasks log into this subscriber too.
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_env_filter("debug,hyper=off,hyper_util=off,reqwest=off,cookie_store=off")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = spawn_app_with(&[
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await;
    let browser = client();
    let mut secrets = vec![PASSWORD.to_owned(), ADMIN_PASSWORD.to_owned()];

    let res = app.register(&browser, "ann@example.com").await;
    secrets.push(cookie_value(&res, "access_token"));
    secrets.push(cookie_value(&res, "refresh_token"));
    app.login(&client(), "ann@example.com", "a wrong password")
        .await;
    app.login(&client(), "nobody@example.com", "another wrong password")
        .await;
    let res = browser
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    secrets.push(cookie_value(&res, "access_token"));
    secrets.push(cookie_value(&res, "refresh_token"));
    browser
        .put(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    browser
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    app.refresh_with(&secrets[5]).await;
    secrets.extend(
        [
            "a wrong password",
            "another wrong password",
            "a brand new passphrase",
        ]
        .map(String::from),
    );

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("account registered"),
        "logs were captured: {text}"
    );
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret was logged");
    }
    assert!(!text.contains("$argon2"), "a hash was logged");
}
