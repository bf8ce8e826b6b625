//! Server-side request forgery: an endpoint's URL must be https on a public address. Each kind
//! of refused URL is a 422 naming `url`, at creation and on a change, and nothing is stored.

use crate::helpers::{TestApp, TestUser, assert_problem, fields, spawn_app_with};
use common::domain::Role;
use serde_json::json;

/// An api as deployed: private networks not allowed.
async fn guarded() -> (TestApp, TestUser) {
    let app = spawn_app_with(&[("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "false")]).await;
    let admin = app.create_user(Role::Admin).await;
    (app, admin)
}

/// Every kind of URL refused, with a word its problem names.
const REFUSED: [(&str, &str); 16] = [
    ("http://hooks.example.com/in", "https"),
    ("https://user:secret@hooks.example.com/in", "password"),
    ("https://127.0.0.1/in", "loopback"),
    ("https://[::1]/in", "loopback"),
    ("https://localhost/in", "loopback"),
    ("https://10.0.0.7/in", "private"),
    ("https://172.16.4.2/in", "private"),
    ("https://192.168.1.20/in", "private"),
    ("https://[fd12:3456::1]/in", "private"),
    ("https://169.254.10.1/in", "link-local"),
    ("https://[fe80::1]/in", "link-local"),
    ("https://224.0.0.251/in", "multicast"),
    ("https://0.0.0.0/in", "unspecified"),
    ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
    ("https://[fd00:ec2::254]/latest", "cloud metadata"),
    ("https://[::ffff:10.0.0.1]/in", "private"),
];

#[tokio::test]
async fn each_kind_of_refused_url_is_a_422_naming_url_at_creation() {
    let (app, admin) = guarded().await;
    for (url, why) in REFUSED {
        let res = app
            .post_as(
                &admin,
                "/api/v1/webhooks",
                &json!({"url": url, "events": ["*"]}),
                &[],
            )
            .await;

        let problem = assert_problem(res, 422).await;
        assert_eq!(fields(&problem), ["url"], "{url}");
        assert!(problem.to_string().contains(why), "{url}: {problem}");
    }
    assert_eq!(app.count("SELECT count(*) FROM webhook_endpoints").await, 0);
}

#[tokio::test]
async fn each_kind_of_refused_url_is_a_422_naming_url_on_a_change() {
    let (app, admin) = guarded().await;
    let id = uuid::Uuid::new_v4();
    // An endpoint with a public URL (its secret is not read by a change).
    sqlx::query("INSERT INTO webhook_endpoints (id, url, events, secret) VALUES ($1, 'https://hooks.example.com/in', '{*}', '\\x00')")
        .bind(id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let path = format!("/api/v1/webhooks/{id}");
    for (url, why) in REFUSED {
        let res = app.patch_as(&admin, &path, &json!({"url": url}), &[]).await;

        let problem = assert_problem(res, 422).await;
        assert_eq!(fields(&problem), ["url"], "{url}");
        assert!(problem.to_string().contains(why), "{url}: {problem}");
    }
    let url: String = sqlx::query_scalar("SELECT url FROM webhook_endpoints")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(url, "https://hooks.example.com/in", "unchanged");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_refused() {
    let (app, admin) = guarded().await;

    let res = app
        .post_as(
            &admin,
            "/api/v1/webhooks",
            &json!({"url": "https://no-such-host.invalid/in", "events": ["*"]}),
            &[],
        )
        .await;

    let problem = assert_problem(res, 422).await;
    assert_eq!(fields(&problem), ["url"]);
}
