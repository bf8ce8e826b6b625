//! The workers' own HTTP surface: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

#[derive(Clone)]
pub struct HttpState {
    pub db: PgPool,
    pub nats: async_nats::Client,
    pub metrics: PrometheusHandle,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn ready(State(state): State<HttpState>) -> Response {
    let report = common::health::check(&state.db, &state.nats).await;
    if report.is_ready() {
        return Json(report).into_response();
    }
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": format!("not ready: {} unavailable", report.failing().join(", ")),
        "checks": report.checks,
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(State(state): State<HttpState>) -> Response {
    common::metrics::record_pool(&state.db, "workers");
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
