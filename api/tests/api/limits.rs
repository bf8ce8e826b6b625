//! What no client can exhaust: password hashing runs a bounded number at a time, registrations
//! are limited per client address, an email too long to be one never reaches a limiter, and
//! the client address is read from a forwarding header only when a trusted proxy sent it.

use crate::helpers::{TestApp, assert_problem, client, spawn_app_with};
use serde_json::json;

use crate::helpers::PASSWORD;

/// Logs in, through a proxy that says the client is `forwarded_for` unless that is empty.
async fn login_from(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: &str,
) -> reqwest::Response {
    let mut req = client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if !forwarded_for.is_empty() {
        req = req.header("x-forwarded-for", forwarded_for);
    }
    req.send().await.unwrap()
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds")
}

#[tokio::test]
async fn a_password_check_past_the_hashing_bound_is_answered_503_with_retry_after_at_once() {
    let app = spawn_app_with(&[("PASSWORD_HASH_CONCURRENCY", "1")]).await;
    assert_eq!(
        app.accounts().register("ann@example.com").await.status(),
        201
    );
    let _busy = app.state.passwords.permit().expect("the one hashing slot");

    let res = app.accounts().register("bob@example.com").await;
    assert!(retry_after(&res) >= 1);
    let problem = assert_problem(res, 503).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("retry"),
        "{problem}"
    );
    let res = login_from(&app, "ann@example.com", PASSWORD, "").await;
    assert!(retry_after(&res) >= 1);
    assert_problem(res, 503).await;
}

#[tokio::test]
async fn password_checks_resume_once_a_hashing_slot_is_free() {
    let app = spawn_app_with(&[("PASSWORD_HASH_CONCURRENCY", "1")]).await;
    assert_eq!(
        app.accounts().register("ann@example.com").await.status(),
        201
    );
    let busy = app.state.passwords.permit().expect("the one hashing slot");
    assert_problem(app.accounts().register("bob@example.com").await, 503).await;

    drop(busy);

    assert_eq!(
        app.accounts().register("bob@example.com").await.status(),
        201
    );
    let res = login_from(&app, "ann@example.com", PASSWORD, "").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn registrations_beyond_the_allowance_of_an_address_are_429_with_retry_after() {
    let app = spawn_app_with(&[("REGISTER_IP_RATE_PER_MINUTE", "2")]).await;
    assert_eq!(app.accounts().register("a@example.com").await.status(), 201);
    assert_eq!(app.accounts().register("b@example.com").await.status(), 201);

    let res = app.accounts().register("c@example.com").await;

    assert!((1..=60).contains(&retry_after(&res)));
    assert_problem(res, 429).await;
    assert_eq!(
        app.accounts().count().await,
        2,
        "the refused registration created nothing"
    );
}

#[tokio::test]
async fn an_email_over_254_bytes_is_422_before_any_limiter_or_hash() {
    let app = spawn_app_with(&[("REGISTER_IP_RATE_PER_MINUTE", "1")]).await;
    let long = format!("{}@example.com", "a".repeat(60_000));

    let res = login_from(&app, &long, PASSWORD, "").await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    let res = app.accounts().register(&long).await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");

    assert_eq!(app.state.login_limits.tracked_keys(), (0, 0));
    assert_eq!(
        app.accounts().register("ann@example.com").await.status(),
        201,
        "the refused attempts did not use the address's one registration"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_failed_logins_are_counted_per_forwarded_client() {
    let app = spawn_app_with(&[
        ("TRUSTED_PROXIES", "127.0.0.0/8"),
        ("LOGIN_IP_RATE_PER_MINUTE", "2"),
    ])
    .await;
    for n in 0..2 {
        let res = login_from(
            &app,
            &format!("{n}@example.com"),
            "wrong password!",
            "203.0.113.1",
        )
        .await;
        assert_problem(res, 401).await;
    }
    let res = login_from(&app, "2@example.com", "wrong password!", "203.0.113.1").await;
    assert_problem(res, 429).await;

    // Another client behind the same proxy, and a spoofed hop left of the real one.
    let res = login_from(
        &app,
        "3@example.com",
        "wrong password!",
        "203.0.113.1, 198.51.100.2",
    )
    .await;
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarding_header_changes_nothing() {
    let app = spawn_app_with(&[("LOGIN_IP_RATE_PER_MINUTE", "2")]).await;
    for n in 0..2 {
        let res = login_from(
            &app,
            &format!("{n}@example.com"),
            "wrong password!",
            &format!("203.0.113.{n}"),
        )
        .await;
        assert_problem(res, 401).await;
    }

    let res = login_from(&app, "2@example.com", "wrong password!", "203.0.113.99").await;

    assert_problem(res, 429).await;
}

#[tokio::test]
async fn a_full_command_stream_refuses_new_commands_and_the_api_answers_503() {
    let app = spawn_app_with(&[("NATS_STREAM_LIMITS", "ORDERS_CMD=1MiB/2")]).await;
    let client = app.create_user(common::domain::Role::Client).await;
    let mug = app.products().create("Mug", 1250, 10).await;
    let order = json!({"items": [{"product_id": mug, "quantity": 1}]});
    for _ in 0..2 {
        let res = app.post_as(&client, "/api/v1/orders", &order, &[]).await;
        assert_eq!(res.status(), 202);
    }

    let res = app.post_as(&client, "/api/v1/orders", &order, &[]).await;

    assert_problem(res, 503).await;
    let mut stream = app
        .state
        .bus
        .jetstream()
        .get_stream(app.state.bus.namespace().name(common::nats::ORDERS_CMD))
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, 2, "nothing past the limit was stored");
    assert_eq!(
        info.config.discard,
        async_nats::jetstream::stream::DiscardPolicy::New
    );
}

#[tokio::test]
async fn history_streams_keep_their_newest_messages_within_their_limits() {
    let app = spawn_app_with(&[("NATS_STREAM_LIMITS", "DEAD_LETTERS=1MiB/3")]).await;
    let js = app.state.bus.jetstream();
    let ns = app.state.bus.namespace();
    for n in 0..5 {
        js.publish(ns.subject("dlq.test"), format!("{n}").into())
            .await
            .unwrap()
            .await
            .expect("a full history stream still stores new messages");
    }

    let mut stream = js
        .get_stream(ns.name(common::nats::DEAD_LETTERS))
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.max_bytes, 1024 * 1024);
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.state.first_sequence, 3, "the oldest went");
}
