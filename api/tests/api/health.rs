//! Health, metrics and the documents the api serves: liveness, readiness through outages
//! of PostgreSQL and NATS, Prometheus metrics, and the OpenAPI and AsyncAPI documents.

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_behind_proxies};
use common::testing::eventually;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn liveness_answers_ok() {
    let app = spawn_app().await;
    let res = app.get("/health/live").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn readiness_is_ok_when_postgres_and_nats_answer() {
    let app = spawn_app().await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["nats"], "ok");
}

/// Waits until readiness answers 503 and returns the problem it answers with.
async fn assert_unready(app: &TestApp) -> Value {
    eventually(Duration::from_secs(20), "readiness 503", || async {
        let res = app.get("/health/ready").await;
        if res.status() == 503 {
            Some(assert_problem(res, 503).await)
        } else {
            None
        }
    })
    .await
}

/// Waits until readiness answers 200 again.
async fn assert_ready_again(app: &TestApp, within: Duration) {
    eventually(within, "readiness back to 200", || async {
        (app.get("/health/ready").await.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn readiness_goes_503_naming_postgres_while_it_is_unreachable() {
    let (app, pg, _nats) = spawn_app_behind_proxies().await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    pg.cut();

    let body = assert_unready(&app).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("postgres"), "{body}");
    assert_ne!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["nats"], "ok");
}

#[tokio::test]
async fn readiness_recovers_once_postgres_is_back() {
    let (app, pg, _nats) = spawn_app_behind_proxies().await;
    pg.cut();
    assert_unready(&app).await;

    pg.restore();

    assert_ready_again(&app, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn readiness_goes_503_naming_nats_while_it_is_unreachable() {
    let (app, _pg, nats) = spawn_app_behind_proxies().await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    nats.cut();

    let body = assert_unready(&app).await;
    assert!(body["detail"].as_str().unwrap().contains("nats"), "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
}

#[tokio::test]
async fn readiness_recovers_once_nats_is_back() {
    let (app, _pg, nats) = spawn_app_behind_proxies().await;
    nats.cut();
    assert_unready(&app).await;

    nats.restore();

    assert_ready_again(&app, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format_on_the_metrics_address() {
    let app = spawn_app().await;
    app.get("/health/live").await;

    let res = reqwest::get(format!("{}/metrics", app.metrics))
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("http_request_duration_seconds"), "{text}");
}

#[tokio::test]
async fn metrics_are_not_served_on_the_public_port() {
    let app = spawn_app().await;

    assert_eq!(app.get("/metrics").await.status(), 404);
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let app = spawn_app().await;

    let res = app.get("/openapi.json").await;

    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/health/ready"].is_object());
}

#[tokio::test]
async fn the_docs_page_is_swagger_ui_with_vendored_assets() {
    let app = spawn_app().await;

    let res = app.get("/docs/").await;

    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "docs page is Swagger UI");
    // The assets are vendored into the binary, not fetched from a CDN.
    assert_eq!(app.get("/docs/swagger-ui-bundle.js").await.status(), 200);
}

#[tokio::test]
async fn the_asyncapi_document_is_served_and_names_the_payment_subjects() {
    let app = spawn_app().await;
    let doc: Value = app.get("/asyncapi.json").await.json().await.unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(
        doc["channels"]["payments_evt_succeeded"]["address"],
        "payments.evt.succeeded"
    );
    // Other systems publish payments to the service, and read its status changes.
    assert_eq!(
        doc["operations"]["receive_payments_evt_succeeded"]["action"],
        "receive"
    );
    assert_eq!(
        doc["operations"]["send_orders_evt_status_changed"]["action"],
        "send"
    );
}

#[tokio::test]
async fn every_operation_in_the_openapi_document_has_a_unique_id_and_documented_errors() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                seen.insert(id.clone()),
                "operationId {id:?} repeated ({method} {path})"
            );
            if path.starts_with("/api/v1") && method != "get" {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|code| code.starts_with('4')),
                    "{method} {path} documents no error response"
                );
            }
        }
    }
}

/// A connection is pinged before use only once it has been idle for a second: one that
/// PostgreSQL ended while it sat idle longer is replaced, not handed to a request.
#[tokio::test]
async fn a_pooled_connection_ended_while_idle_is_replaced_before_it_is_used() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let before: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(db)
        .await
        .unwrap();
    let admin = sqlx::PgPool::connect(&app.env.database_url).await.unwrap();
    let ours = "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'order-service'";
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'order-service'",
    )
    .execute(&admin)
    .await
    .unwrap();
    eventually(
        Duration::from_secs(10),
        "the pool's backends ended",
        || async {
            let left: i64 = sqlx::query_scalar(ours).fetch_one(&admin).await.unwrap();
            (left == 0).then_some(())
        },
    )
    .await;
    // Idle for longer than a connection is trusted without a ping.
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    for _ in 0..3 {
        let after: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(db)
            .await
            .expect("a connection that answers");
        assert_ne!(after, before);
    }
    assert_eq!(app.get("/api/v1/products").await.status(), 200);
}
