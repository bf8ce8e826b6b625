//! Refusals at the limits the api keeps on purpose (429, 503 with `Retry-After`) are not
//! errors: they log no ERROR line, only a warning naming the limit, at most one per limit every
//! ten seconds, and are counted by limit in `http_refusals_total`.

use crate::helpers::{LogBuffer, TestApp, capture_json_logs, request, spawn_app_with};
use crate::metrics::scrape;
use common::domain::Role;
use serde_json::{Value, json};
use tracing::subscriber::DefaultGuard;

const FILTER: &str = "info,hyper=off,hyper_util=off,reqwest=off,cookie_store=off";

/// An api whose logs are captured in the production JSON format.
async fn logged_app(overrides: &[(&str, &str)]) -> (TestApp, LogBuffer, DefaultGuard) {
    let (logs, guard) = capture_json_logs(FILTER);
    let app = spawn_app_with(overrides).await;
    (app, logs, guard)
}

fn errors(logs: &LogBuffer) -> Vec<Value> {
    logs.json_lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect()
}

/// The warnings about refusals at `limit`.
fn warnings_about(logs: &LogBuffer, limit: &str) -> Vec<Value> {
    logs.json_lines()
        .into_iter()
        .filter(|l| l["level"] == "WARN" && l["limit"] == limit)
        .collect()
}

/// `http_refusals_total` of `limit` on `app`'s metrics.
async fn refusals_counted(app: &TestApp, limit: &str) -> f64 {
    let text = scrape(&format!("{}/metrics", app.metrics)).await;
    let series = format!("http_refusals_total{{limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn refusals_at_the_stream_cap_log_one_warning_naming_the_limit_and_no_error() {
    let (app, logs, _guard) = logged_app(&[("SSE_STREAMS_MAX", "1")]).await;
    let holder = app.create_user(Role::Client).await;
    let _held = crate::helpers::open(&app.address, &holder, "/api/v1/orders/events", None).await;
    let others = app.create_user(Role::Client).await;

    for _ in 0..30 {
        let res = request(&app.address, &others, "/api/v1/orders/events", None).await;
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
    }

    assert_eq!(errors(&logs), Vec::<Value>::new());
    let warnings = warnings_about(&logs, "SSE_STREAMS_MAX");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(refusals_counted(&app, "SSE_STREAMS_MAX").await, 30.0);
}

#[tokio::test]
async fn refusals_at_the_password_hashing_bound_log_one_warning_and_no_error() {
    let (app, logs, _guard) = logged_app(&[("PASSWORD_HASH_CONCURRENCY", "1")]).await;
    // The only hashing slot is taken: every login is refused before hashing.
    let _slot = app.state.passwords.permit().unwrap();

    for i in 0..20 {
        let res = app
            .post(
                "/api/v1/auth/login",
                &json!({"email": format!("user{i}@example.com"), "password": "a password"}),
            )
            .await;
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
    }

    assert_eq!(errors(&logs), Vec::<Value>::new());
    assert_eq!(
        warnings_about(&logs, "PASSWORD_HASH_CONCURRENCY").len(),
        1,
        "{}",
        logs.text()
    );
    assert_eq!(
        refusals_counted(&app, "PASSWORD_HASH_CONCURRENCY").await,
        20.0
    );
}

#[tokio::test]
async fn rate_limited_logins_log_no_error_and_one_warning_about_the_limit() {
    let (app, logs, _guard) = logged_app(&[("LOGIN_RATE_PER_MINUTE", "1")]).await;
    let login = json!({"email": "ann@example.com", "password": "not the password"});
    let mut limited = 0;
    for _ in 0..20 {
        let res = app.post("/api/v1/auth/login", &login).await;
        if res.status() == 429 {
            limited += 1;
        }
    }

    assert!(limited >= 18, "{limited} refused");
    assert_eq!(errors(&logs), Vec::<Value>::new());
    assert_eq!(warnings_about(&logs, "LOGIN_RATE_PER_MINUTE").len(), 1);
    assert_eq!(
        refusals_counted(&app, "LOGIN_RATE_PER_MINUTE").await,
        f64::from(limited)
    );
}
