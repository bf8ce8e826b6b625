//! Every error, from our handlers or from the framework, is RFC 9457 problem+json.

use crate::helpers::{assert_problem, client, spawn_app};
use api::error::ApiResult;
use api::extract::Json;
use axum::Router;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let body = assert_problem(app.get("/api/v1/nowhere").await, 404).await;
    assert_eq!(body["title"], "Not Found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let res = app
        .client
        .delete(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    let allow = res.headers().get("allow").cloned();
    assert_problem(res, 405).await;
    assert!(allow.is_some(), "Allow header kept");
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Thing {
    name: String,
    count: u32,
}

async fn accept(Json(_thing): Json<Thing>) -> ApiResult<&'static str> {
    Ok("ok")
}

/// A server with one JSON route (`POST /things`) behind the api's middleware, to exercise
/// the extractor.
struct Things {
    url: String,
}

async fn things() -> Things {
    let router = api::app::with_middleware(Router::new().route("/things", post(accept)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Things {
        url: format!("http://{addr}/things"),
    }
}

impl Things {
    /// POSTs `body` as JSON.
    async fn post_json(&self, body: &Value) -> reqwest::Response {
        client().post(&self.url).json(body).send().await.unwrap()
    }

    /// POSTs `body` as it is, labelled JSON.
    async fn post_raw_json(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        client()
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let res = things().await.post_raw_json("{\"name\": ").await;

    let body = assert_problem(res, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"));
}

#[tokio::test]
async fn a_wrong_field_type_is_a_422_naming_the_field() {
    let res = things()
        .await
        .post_json(&json!({"name": "x", "count": -1}))
        .await;

    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["field"], "count");
}

#[tokio::test]
async fn an_unknown_field_is_rejected() {
    let res = things()
        .await
        .post_json(&json!({"name": "x", "count": 1, "admin": true}))
        .await;

    let body = assert_problem(res, 422).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("unknown field"), "{body}");
}

#[tokio::test]
async fn a_missing_content_type_is_a_415_problem() {
    let things = things().await;

    let res = client().post(&things.url).body("{}").send().await.unwrap();

    assert_problem(res, 415).await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let big = format!(
        "{{\"name\": \"{}\", \"count\": 1}}",
        "x".repeat(api::app::BODY_LIMIT_BYTES)
    );

    let res = things().await.post_raw_json(big).await;

    assert_problem(res, 413).await;
}

#[tokio::test]
async fn a_valid_body_passes() {
    let res = things()
        .await
        .post_json(&json!({"name": "x", "count": 1}))
        .await;

    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_nul_character_in_a_json_string_is_a_422_not_a_database_error() {
    let res = things()
        .await
        .post_raw_json(r#"{"name": "a\u0000b", "count": 1}"#)
        .await;

    assert_problem(res, 422).await;
}

#[tokio::test]
async fn a_nul_character_in_a_login_is_refused_cleanly() {
    let app = spawn_app().await;

    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a\u0000@example.com", "password": "whatever-123"}"#)
        .send()
        .await
        .unwrap();

    assert_problem(res, 422).await;
}

#[tokio::test]
async fn a_nul_character_in_a_query_is_refused_cleanly() {
    let app = spawn_app().await;

    assert_problem(app.get("/api/v1/products?q=%00").await, 400).await;
}

#[tokio::test]
async fn a_deadlock_or_serialization_failure_is_a_503_to_retry_not_a_500() {
    let app = spawn_app().await;
    // Real errors from PostgreSQL, each with its SQLSTATE: a deadlock, a serialization
    // failure, and a check violation.
    let raised = [
        "DO $$ BEGIN RAISE EXCEPTION 'collided' USING ERRCODE = '40P01'; END $$",
        "DO $$ BEGIN RAISE EXCEPTION 'collided' USING ERRCODE = '40001'; END $$",
        "DO $$ BEGIN RAISE EXCEPTION 'broken' USING ERRCODE = '23514'; END $$",
    ];
    let mut statuses = Vec::new();
    for statement in raised {
        let error = sqlx::query(statement)
            .execute(&app.state.db)
            .await
            .expect_err("raised");
        let res = axum::response::IntoResponse::into_response(api::error::ApiError::from(error));
        let retry_after = res.headers().get("retry-after").cloned();
        statuses.push((res.status().as_u16(), retry_after));
    }
    // The two collisions succeed once retried, a second later; anything else stays a 500.
    let one = Some(reqwest::header::HeaderValue::from_static("1"));
    assert_eq!(
        statuses,
        [(503, one.clone()), (503, one), (500, None)],
        "{statuses:?}"
    );
}
