//! Prometheus metrics on both binaries, moving as orders are confirmed, rejected and
//! cancelled.

use crate::helpers::{TestApp, spawn_system_with_workers_url};
use common::domain::Role;
use serde_json::{Value, json};

fn one_line(product: uuid::Uuid, quantity: i32) -> Value {
    json!({"items": [{"product_id": product, "quantity": quantity}]})
}

/// The value of the first sample of `name` carrying every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, rest)) => (m, rest),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse().ok())
                .flatten()
        })
}

pub async fn scrape(url: &str) -> String {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{url}"
    );
    res.text().await.unwrap()
}

/// Places three orders with the system's workers: one rejected for want of stock, one
/// confirmed then cancelled.
async fn confirm_reject_and_cancel(app: &TestApp) {
    let client = app.create_user(Role::Client).await;
    let mug = app.products().create("Mug", 1250, 3).await;
    let wait = [("prefer", "wait=10")];
    // Rejected first: once the api heard what stock a placement left, it refuses a larger
    // one at once, recording nothing.
    let rejected: Value = app
        .post_as(&client, "/api/v1/orders", &one_line(mug, 50), &wait)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rejected["status"], "REJECTED");
    let confirmed: Value = app
        .post_as(&client, "/api/v1/orders", &one_line(mug, 1), &wait)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(confirmed["status"], "CONFIRMED");
    let id = confirmed["id"].as_str().unwrap();
    let res = app
        .post_as(
            &client,
            &format!("/api/v1/orders/{id}/cancel"),
            &json!({}),
            &wait,
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    app.orders()
        .when(&client, id, |o| o["status"] == "CANCELLED")
        .await;
}

#[tokio::test]
async fn the_api_exposes_order_request_and_pool_metrics_that_move_with_orders() {
    let (app, _) = spawn_system_with_workers_url().await;

    confirm_reject_and_cancel(&app).await;

    let api = scrape(&format!("{}/metrics", app.metrics)).await;
    let placed = sample(&api, "orders_placed_total", &[]).unwrap_or(0.0);
    assert!(placed >= 2.0, "orders_placed_total {placed}\n{api}");
    assert!(
        sample(
            &api,
            "http_request_duration_seconds_count",
            &[
                ("method", "POST"),
                ("route", "/api/v1/orders"),
                ("status", "201")
            ]
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{api}"
    );
    assert!(
        sample(&api, "db_pool_max_connections", &[("pool", "api")]).unwrap_or(0.0) >= 1.0,
        "{api}"
    );
    assert!(
        sample(
            &api,
            "db_pool_connections",
            &[("pool", "api"), ("state", "idle")]
        )
        .is_some(),
        "{api}"
    );
}

#[tokio::test]
async fn the_workers_expose_outcome_consumer_and_pool_metrics_that_move_with_orders() {
    let (app, workers) = spawn_system_with_workers_url().await;

    confirm_reject_and_cancel(&app).await;

    let consumers = [
        "inventory-place",
        "inventory-commands",
        "orders-transitions",
        "orders-payment-events",
    ];
    // The outcome counters are bumped just before the workers' commit, and the consumers'
    // gauges are sampled on an interval: wait for a scrape that has them all.
    let text = common::testing::eventually(
        std::time::Duration::from_secs(20),
        "worker metrics with every consumer sampled",
        || async {
            let text = scrape(&format!("{workers}/metrics")).await;
            let sampled = consumers
                .iter()
                .all(|c| sample(&text, "consumer_pending_messages", &[("consumer", c)]).is_some());
            (sampled && sample(&text, "orders_cancelled_total", &[]).unwrap_or(0.0) >= 1.0)
                .then_some(text)
        },
    )
    .await;
    for name in ["orders_confirmed_total", "orders_rejected_total"] {
        assert!(
            sample(&text, name, &[]).unwrap_or(0.0) >= 1.0,
            "{name}\n{text}"
        );
    }
    let place = [
        ("consumer", "inventory-place"),
        ("subject", "orders.cmd.place"),
    ];
    assert!(
        sample(
            &text,
            "messages_processed_total",
            &[place[0], place[1], ("outcome", "ok")]
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, "message_processing_seconds_count", &place).unwrap_or(0.0) >= 2.0,
        "{text}"
    );
    for consumer in consumers {
        assert!(
            sample(
                &text,
                "consumer_pending_messages",
                &[("consumer", consumer)]
            )
            .is_some(),
            "pending gauge of {consumer}\n{text}"
        );
        assert!(
            sample(
                &text,
                "consumer_ack_pending_messages",
                &[("consumer", consumer)]
            )
            .is_some(),
            "ack pending gauge of {consumer}\n{text}"
        );
    }
    assert!(
        sample(&text, "db_pool_max_connections", &[("pool", "workers")]).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
}

/// The worker sends a placement's outcome to the waiting replica before its status event, on
/// one connection; the replica takes it first, so every waiting placement is answered from
/// it and none reads the order back.
#[tokio::test]
async fn waiting_placements_are_answered_from_their_outcomes_without_a_read() {
    let (app, _) = spawn_system_with_workers_url().await;
    let client = app.create_user(Role::Client).await;
    let mug = app.products().create("Mug", 1250, 100).await;
    let placements = 20;
    for _ in 0..placements {
        let res = app
            .post_as(
                &client,
                "/api/v1/orders",
                &one_line(mug, 1),
                &[("prefer", "wait=10")],
            )
            .await;
        assert_eq!(res.status(), 201);
        let order: Value = res.json().await.unwrap();
        assert_eq!(order["status"], "CONFIRMED", "{order}");
    }

    let api = scrape(&format!("{}/metrics", app.metrics)).await;
    let from = |from| sample(&api, "placements_answered_total", &[("from", from)]);
    assert_eq!(from("outcome"), Some(f64::from(placements)), "{api}");
    assert_eq!(from("read"), None, "{api}");
}
