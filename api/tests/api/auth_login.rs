//! Logging in: the cookies and answer of a login, failed logins told apart by neither answer
//! nor time, and the per-account and per-address limits on failures.

use crate::helpers::{PASSWORD, TestApp, assert_problem, set_cookie, spawn_app_with};
use serde_json::Value;
use std::time::{Duration, Instant};

const WRONG: &str = "wrong password!";

/// An app with Ann registered, its login limits set by `overrides`.
async fn app_with_ann(overrides: &[(&str, &str)]) -> TestApp {
    let app = spawn_app_with(overrides).await;
    app.accounts().sign_up("ann@example.com").await;
    app
}

/// Fails `times` logins as `email`, each answered 401.
async fn fail_logins(app: &TestApp, email: &str, times: usize) {
    for _ in 0..times {
        assert_problem(app.accounts().login(email, WRONG).await, 401).await;
    }
}

#[tokio::test]
async fn logging_in_sets_both_cookies_and_returns_the_user_without_tokens() {
    let app = app_with_ann(&[]).await;

    let res = app.accounts().login("ANN@example.com ", PASSWORD).await;

    assert_eq!(res.status(), 200);
    assert!(set_cookie(&res, "access_token").is_some());
    assert!(set_cookie(&res, "refresh_token").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], "ann@example.com");
    assert!(!body.to_string().contains("token"), "{body}");
}

#[tokio::test]
async fn a_logged_in_browser_is_authenticated_by_its_cookies() {
    let app = app_with_ann(&[]).await;
    let browser = app.accounts().browser();

    assert_eq!(
        browser.login("ann@example.com", PASSWORD).await.status(),
        200
    );

    assert_eq!(browser.me().await.status(), 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer_in_the_same_time() {
    let app = app_with_ann(&[]).await;

    let mut known = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        for (email, elapsed) in [
            ("ann@example.com", &mut known),
            ("nobody@example.com", &mut unknown),
        ] {
            let start = Instant::now();
            let res = app.accounts().login(email, WRONG).await;
            *elapsed += start.elapsed();
            bodies.push(assert_problem(res, 401).await);
        }
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
    let app = app_with_ann(&[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    fail_logins(&app, "ann@example.com", 3).await;

    let res = app.accounts().login("ann@example.com", WRONG).await;

    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(res, 429).await;
}

#[tokio::test]
async fn once_over_the_account_limit_even_the_right_password_is_429() {
    let app = app_with_ann(&[("LOGIN_RATE_PER_MINUTE", "3")]).await;
    fail_logins(&app, "ann@example.com", 3).await;
    assert_problem(app.accounts().login("ann@example.com", WRONG).await, 429).await;

    let res = app.accounts().login("ann@example.com", PASSWORD).await;

    assert_problem(res, 429).await;
}

#[tokio::test]
async fn failed_logins_over_the_address_limit_are_429_for_every_account() {
    let app = app_with_ann(&[("LOGIN_IP_RATE_PER_MINUTE", "3")]).await;
    for i in 0..3 {
        fail_logins(&app, &format!("user{i}@example.com"), 1).await;
    }

    let res = app.accounts().login("other@example.com", WRONG).await;

    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429).await;
    assert_problem(app.accounts().login("ann@example.com", PASSWORD).await, 429).await;
}

#[tokio::test]
async fn successful_logins_do_not_count_towards_the_limits() {
    let app = app_with_ann(&[
        ("LOGIN_RATE_PER_MINUTE", "2"),
        ("LOGIN_IP_RATE_PER_MINUTE", "2"),
    ])
    .await;

    for n in 1..=4 {
        let res = app.accounts().login("ann@example.com", PASSWORD).await;
        assert_eq!(res.status(), 200, "login {n} of 4, past both limits of 2");
    }
}
