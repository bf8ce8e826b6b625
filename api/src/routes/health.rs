//! Liveness, readiness, and the Prometheus scrape endpoint (on its own address).

use crate::error::{ApiError, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::health::Readiness;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(asyncapi))
}

/// `GET /metrics` alone, for `METRICS_ADDR`: what the api counts (routes, orders, pool use)
/// is for Prometheus, not for the public port.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
}

/// The AsyncAPI document of the NATS subjects outside systems publish to or read from.
#[utoipa::path(get, path = "/asyncapi.json", tag = "health",
    responses((status = 200, description = "AsyncAPI 3.0 document", content_type = "application/json")))]
async fn asyncapi() -> Json<serde_json::Value> {
    Json(common::asyncapi::document())
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", example = json!({"status": "ok"}))))]
async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// PostgreSQL and NATS both answer; otherwise 503 naming what is down.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is down", body = Problem, content_type = "application/problem+json"),
    ))]
async fn ready(State(state): State<AppState>) -> Response {
    readiness_response(common::health::check(&state.db, &state.nats).await)
}

/// Turns a readiness report into 200, or a 503 problem naming what is down.
pub fn readiness_response(report: Readiness) -> Response {
    if report.is_ready() {
        return Json(report).into_response();
    }
    let down = report.failing().join(", ");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "about:blank",
        format!("not ready: {down} unavailable"),
    )
    .with_extension("checks", json!(report.checks))
    .into_response()
}

/// Prometheus metrics in the text exposition format.
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    common::metrics::record_pool(&state.db, "api");
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response())
}
