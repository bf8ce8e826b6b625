//! Live order tracking over Server-Sent Events, read by a real SSE client (`eventsource-stream`
//! over a streaming HTTP response) against the api, the workers, PostgreSQL and JetStream.

use crate::helpers::{TestApp, TestUser, assert_problem, spawn_app_with, spawn_system};
use common::domain::Role;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::pin::Pin;
use std::time::Duration;

/// Longest a test waits for the next event.
const PATIENCE: Duration = Duration::from_secs(20);

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// An open event stream.
pub struct Sse {
    events: Events,
}

impl Sse {
    /// The next event; panics if none comes in time or the stream ends.
    pub async fn next(&mut self) -> Event {
        self.next_or_end()
            .await
            .expect("the stream ended before the next event")
    }

    /// The next event, or `None` when the stream ends; panics if neither happens in time.
    pub async fn next_or_end(&mut self) -> Option<Event> {
        match tokio::time::timeout(PATIENCE, self.events.next()).await {
            Ok(Some(Ok(event))) => Some(event),
            Ok(Some(Err(e))) => panic!("stream error: {e}"),
            Ok(None) => None,
            Err(_) => panic!("no event within {PATIENCE:?}"),
        }
    }

    /// The data of the next event, which must be of `kind`.
    pub async fn next_of(&mut self, kind: &str) -> (Event, Value) {
        let event = self.next().await;
        assert_eq!(event.event, kind, "{event:?}");
        let data = serde_json::from_str(&event.data).expect("JSON data");
        (event, data)
    }
}

/// `GET base+path` as `user`, with `Last-Event-ID` if given.
pub async fn request(
    base: &str,
    user: &TestUser,
    path: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(&user.token)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    req.send().await.expect("request")
}

/// Opens a stream that must be accepted.
pub async fn open(base: &str, user: &TestUser, path: &str, last_event_id: Option<&str>) -> Sse {
    let res = request(base, user, path, last_event_id).await;
    assert_eq!(res.status(), 200, "opening {path}");
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    Sse {
        events: Box::pin(res.bytes_stream().eventsource()),
    }
}

/// An order placed by `customer` and confirmed.
async fn confirmed_order(app: &TestApp, customer: &TestUser) -> String {
    let product = app.create_product("Lamp", 1500, 10).await;
    let order = app.place_settled(customer, product, 1).await;
    assert_eq!(order["status"], "CONFIRMED");
    order["id"].as_str().unwrap().to_owned()
}

/// An ADMIN moves the order to `status` and waits until it is applied.
async fn move_to(app: &TestApp, admin: &TestUser, order: &str, status: &str) {
    let res = app
        .patch_as(
            admin,
            &format!("/api/v1/orders/{order}/status"),
            &json!({"status": status}),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(res.status(), 200, "moving to {status}");
}

fn entry_id(event: &Event) -> i64 {
    event.id.parse().expect("numeric event id")
}

#[tokio::test]
async fn a_customer_follows_an_order_from_placement_to_delivered() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = confirmed_order(&app, &customer).await;

    let mut sse = open(
        &app.address,
        &customer,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    let (opening, current) = sse.next_of("order").await;
    assert_eq!(current["id"], order.as_str());
    assert_eq!(current["status"], "CONFIRMED");
    let placed: Vec<&str> = current["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(placed, ["CONFIRMED"], "recorded once, with its stock");
    let mut last = entry_id(&opening);

    for (from, to) in [
        ("CONFIRMED", "PAID"),
        ("PAID", "SHIPPED"),
        ("SHIPPED", "DELIVERED"),
    ] {
        move_to(&app, &admin, &order, to).await;
        let (event, change) = sse.next_of("status_changed").await;
        assert_eq!(change["order_id"], order.as_str());
        assert_eq!(
            (change["from"].as_str(), change["to"].as_str()),
            (Some(from), Some(to))
        );
        assert_eq!(change["actor"], format!("user:{}", admin.id));
        assert!(entry_id(&event) > last, "ids grow: {event:?}");
        assert_eq!(change["id"], entry_id(&event));
        last = entry_id(&event);
    }
    assert!(
        sse.next_or_end().await.is_none(),
        "the stream ends after DELIVERED"
    );
}

#[tokio::test]
async fn a_stream_resumed_with_last_event_id_replays_what_was_missed_while_disconnected() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = confirmed_order(&app, &customer).await;
    let path = format!("/api/v1/orders/{order}/events");

    let mut sse = open(&app.address, &customer, &path, None).await;
    let (opening, _) = sse.next_of("order").await;
    drop(sse);
    move_to(&app, &admin, &order, "PAID").await;
    move_to(&app, &admin, &order, "SHIPPED").await;

    // Through another replica: the missed entries come from PostgreSQL.
    let other = app.replica(&[]).await;
    let mut sse = open(&other.address, &customer, &path, Some(&opening.id)).await;
    let (paid, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "PAID");
    assert!(entry_id(&paid) > entry_id(&opening));
    let (shipped, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "SHIPPED");
    assert!(entry_id(&shipped) > entry_id(&paid));

    // Then live again.
    move_to(&app, &admin, &order, "DELIVERED").await;
    let (_, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "DELIVERED");
    assert!(sse.next_or_end().await.is_none());
}

#[tokio::test]
async fn a_stream_opened_on_one_replica_sees_a_change_made_through_another() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = confirmed_order(&app, &customer).await;
    let other = app.replica(&[]).await;

    let mut sse = open(
        &other.address,
        &customer,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    sse.next_of("order").await;
    move_to(&app, &admin, &order, "PAID").await;
    let (_, change) = sse.next_of("status_changed").await;
    assert_eq!(change["to"], "PAID");
}

#[tokio::test]
async fn resuming_after_the_final_change_is_answered_204_so_browsers_stop_reconnecting() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = confirmed_order(&app, &customer).await;
    move_to(&app, &admin, &order, "CANCELLED").await;
    let path = format!("/api/v1/orders/{order}/events");

    let mut sse = open(&app.address, &customer, &path, None).await;
    let (last, current) = sse.next_of("order").await;
    assert_eq!(current["status"], "CANCELLED");
    assert!(
        sse.next_or_end().await.is_none(),
        "a final order's stream ends at once"
    );
    let res = request(&app.address, &customer, &path, Some(&last.id)).await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn another_customers_order_cannot_be_followed() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let stranger = app.create_user(Role::Client).await;
    let order = confirmed_order(&app, &customer).await;
    let res = request(
        &app.address,
        &stranger,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await;
    assert_problem(res, 404).await;
    let res = reqwest::get(app.url(&format!("/api/v1/orders/{order}/events")))
        .await
        .unwrap();
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_bad_request() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let order = confirmed_order(&app, &customer).await;
    let res = request(
        &app.address,
        &customer,
        &format!("/api/v1/orders/{order}/events"),
        Some("yesterday"),
    )
    .await;
    assert_problem(res, 400).await;
}

#[tokio::test]
async fn the_stream_of_all_orders_carries_only_the_callers_own_orders_to_a_customer() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let stranger = app.create_user(Role::Client).await;
    let mut sse = open(&app.address, &customer, "/api/v1/orders/events", None).await;

    // Someone else's order first: had it reached this stream, it would come first.
    let theirs = confirmed_order(&app, &stranger).await;
    let mine = confirmed_order(&app, &customer).await;
    loop {
        let (_, change) = sse.next_of("status_changed").await;
        assert_ne!(change["order_id"], theirs.as_str());
        assert_eq!(change["order_id"], mine.as_str());
        if change["to"] == "CONFIRMED" {
            break;
        }
    }
}

#[tokio::test]
async fn an_admin_follows_every_order_filtered_by_status() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let mut sse = open(
        &app.address,
        &admin,
        "/api/v1/orders/events?status=PAID",
        None,
    )
    .await;
    let order = confirmed_order(&app, &customer).await;
    move_to(&app, &admin, &order, "PAID").await;
    let (_, change) = sse.next_of("status_changed").await;
    assert_eq!(change["order_id"], order.as_str());
    assert_eq!(
        change["to"], "PAID",
        "PENDING and CONFIRMED were filtered out"
    );
}

#[tokio::test]
async fn the_stream_of_all_orders_resumes_from_last_event_id() {
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let order = confirmed_order(&app, &customer).await;
    let confirmed_entry: i64 = sqlx::query_scalar(
        "SELECT id FROM order_events WHERE order_id = $1::uuid AND to_status = 'CONFIRMED'",
    )
    .bind(&order)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    move_to(&app, &admin, &order, "PAID").await;

    let mut sse = open(
        &app.address,
        &customer,
        "/api/v1/orders/events",
        Some(&confirmed_entry.to_string()),
    )
    .await;
    let (event, change) = sse.next_of("status_changed").await;
    assert_eq!(
        (change["order_id"].as_str(), change["to"].as_str()),
        (Some(order.as_str()), Some("PAID"))
    );
    assert!(entry_id(&event) > confirmed_entry);
}

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
    let app = spawn_system().await;
    let customer = app.create_user(Role::Client).await;
    let mut sse = open(&app.address, &customer, "/api/v1/orders/events", None).await;
    let res = app
        .post_empty_as(&customer, "/api/v1/auth/logout", &[])
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
    // The stream's data is either kind of entry.
    let kinds: Vec<&str> = doc["components"]["schemas"]["StreamEntry"]["oneOf"]
        .as_array()
        .map(|kinds| kinds.iter().filter_map(|k| k["$ref"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        kinds,
        [
            "#/components/schemas/StatusEntry",
            "#/components/schemas/RefundEntry"
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

#[tokio::test]
async fn a_stream_opened_before_the_order_is_recorded_starts_pending_and_hears_the_outcome() {
    // No workers yet: the order is accepted, not recorded.
    let app = spawn_app_with(&[]).await;
    let customer = app.create_user(Role::Client).await;
    let product = app.create_product("Lamp", 1500, 10).await;
    let res = app
        .post_as(
            &customer,
            "/api/v1/orders",
            &json!({"items": [{"product_id": product, "quantity": 1}]}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 202);
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap();

    let mut sse = open(
        &app.address,
        &customer,
        &format!("/api/v1/orders/{id}/events"),
        None,
    )
    .await;
    let (_, opening) = sse.next_of("order").await;
    assert_eq!(opening["status"], "PENDING");

    app.start_workers(app.env.config()).await;
    let (_, recorded) = sse.next_of("status_changed").await;
    assert_eq!(recorded["to"], "CONFIRMED");
    assert_eq!(recorded["from"], Value::Null);
}
