//! The limits and the end of order event streams: how many may be open, the heartbeat that
//! keeps one open, what ends them, and how the OpenAPI document describes them.

use crate::helpers::{PATIENCE, Shop, assert_problem, open, request, spawn_app_with};
use common::domain::Role;
use futures::StreamExt;
use serde_json::{Value, json};

#[tokio::test]
async fn streams_past_the_per_account_limit_are_refused_with_429() {
    let app = spawn_app_with(&[("SSE_STREAMS_PER_USER", "1")]).await;
    let customer = app.create_user(Role::Client).await;
    let _first = open(&app.address, &customer, "/api/v1/orders/events", None).await;
    let res = request(&app.address, &customer, "/api/v1/orders/events", None).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429).await;
    // Another account is not held back by this one.
    let other = app.create_user(Role::Client).await;
    open(&app.address, &other, "/api/v1/orders/events", None).await;
}

#[tokio::test]
async fn streams_past_the_process_limit_are_refused_with_503() {
    let app = spawn_app_with(&[("SSE_STREAMS_MAX", "1")]).await;
    let first = app.create_user(Role::Client).await;
    let second = app.create_user(Role::Client).await;
    let held = open(&app.address, &first, "/api/v1/orders/events", None).await;
    let res = request(&app.address, &second, "/api/v1/orders/events", None).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503).await;
    drop(held);
    common::testing::eventually(PATIENCE, "the closed stream's place freed", || async {
        (app.state.watch.streams() == 0).then_some(())
    })
    .await;
    open(&app.address, &second, "/api/v1/orders/events", None).await;
}

#[tokio::test]
async fn a_heartbeat_comment_keeps_an_idle_stream_open() {
    let app = spawn_app_with(&[("SSE_HEARTBEAT_SECS", "1")]).await;
    let customer = app.create_user(Role::Client).await;
    let res = request(&app.address, &customer, "/api/v1/orders/events", None).await;
    assert_heartbeat_in_time(res).await;
}

/// Asserts that the event stream in `res` sends a heartbeat comment within [`PATIENCE`], and
/// stays open until then.
async fn assert_heartbeat_in_time(res: reqwest::Response) {
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !seen.contains("\n: keep-alive\n") {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("no heartbeat in time; got {seen:?}"))
            .expect("the stream stays open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn logging_out_ends_the_sessions_open_streams() {
    let shop = Shop::open().await;
    let (app, customer) = (&shop, &shop.customer);
    let mut sse = open(&app.address, customer, "/api/v1/orders/events", None).await;
    let res = app
        .post_empty_as(customer, "/api/v1/auth/logout", &[])
        .await;
    assert_eq!(res.status(), 204);
    assert!(sse.next_or_end().await.is_none());
}

#[tokio::test]
async fn shutting_down_ends_open_streams() {
    let app = spawn_app_with(&[]).await;
    let customer = app.create_user(Role::Client).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = api::Application::build(app.env.config()).await.unwrap();
    let address = format!("http://{}", server.local_addr().unwrap());
    let running = tokio::spawn(server.run_until_stopped(shutdown.clone()));
    let mut sse = open(&address, &customer, "/api/v1/orders/events", None).await;

    shutdown.cancel();
    assert!(sse.next_or_end().await.is_none(), "the stream ends");
    tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the server stops while streams were open")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_openapi_document_describes_both_streams_and_their_event_format() {
    let app = spawn_app_with(&[]).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in ["/api/v1/orders/{id}/events", "/api/v1/orders/events"] {
        let ok = &doc["paths"][path]["get"]["responses"]["200"];
        assert!(
            ok["content"]["text/event-stream"].is_object(),
            "{path}: {ok}"
        );
        for code in ["401", "429", "503"] {
            assert!(
                doc["paths"][path]["get"]["responses"][code].is_object(),
                "{path} {code}"
            );
        }
    }
    let entry = &doc["components"]["schemas"]["StatusEntry"]["properties"];
    for field in ["id", "order_id", "from", "to", "at", "actor", "reason"] {
        assert!(entry[field].is_object(), "StatusEntry.{field}: {entry}");
    }
    let entry = &doc["components"]["schemas"]["RefundEntry"]["properties"];
    for field in [
        "id",
        "order_id",
        "refund_id",
        "refund_status",
        "amount",
        "currency",
        "at",
        "actor",
        "reason",
        "payment_status",
        "amount_paid",
        "amount_refunded",
    ] {
        assert!(entry[field].is_object(), "RefundEntry.{field}: {entry}");
    }
    // The stream's data is any kind of entry.
    let kinds: Vec<&str> = doc["components"]["schemas"]["StreamEntry"]["oneOf"]
        .as_array()
        .map(|kinds| kinds.iter().filter_map(|k| k["$ref"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        kinds,
        [
            "#/components/schemas/StatusEntry",
            "#/components/schemas/RefundEntry",
            "#/components/schemas/FulfilmentEntry",
            "#/components/schemas/ReturnEntry"
        ]
    );
    let described = doc["paths"]["/api/v1/orders/{id}/events"]["get"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(described.contains("refund_changed"), "{described}");
}

#[tokio::test]
async fn a_demoted_admins_stream_of_every_order_ends_on_every_replica() {
    let app = spawn_app_with(&[]).await;
    let other = app.replica(&[]).await;
    let boss = app.create_user(Role::Admin).await;
    let deputy = app.create_user(Role::Admin).await;
    let mut here = open(&app.address, &deputy, "/api/v1/orders/events", None).await;
    let mut there = open(&other.address, &deputy, "/api/v1/orders/events", None).await;

    let res = app
        .patch_as(
            &boss,
            &format!("/api/v1/users/{}", deputy.id),
            &json!({"role": "CLIENT"}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);

    assert!(here.next_or_end().await.is_none(), "ends on this replica");
    assert!(there.next_or_end().await.is_none(), "ends on the other");
    let res = request(&other.address, &deputy, "/api/v1/orders/events", None).await;
    assert_problem(res, 401).await;
}
