//! The Grafana dashboard and the alerts read only metrics the binaries export: after orders
//! confirmed, rejected and expired, a payment to refund, a dead letter and a redelivery, the
//! api's and the workers' scrapes hold every metric name their PromQL reads.

use crate::helpers::{TestApp, spawn_app};
use crate::promql;
use common::domain::Role;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Publishes a payload with a plain NATS client, as an outside system would.
async fn publish_plain(app: &TestApp, subject: &str, payload: String) {
    let client = async_nats::connect(common::testing::nats_url())
        .await
        .unwrap();
    client
        .publish(app.state.bus.namespace().subject(subject), payload.into())
        .await
        .unwrap();
    client.flush().await.unwrap();
}

fn payment(order: &str, amount: i64) -> String {
    json!({
        "id": uuid::Uuid::new_v4(),
        "type": "payments.succeeded",
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": "psp",
        "data": {"order_id": order, "amount": amount, "currency": "USD",
                 "provider_reference": uuid::Uuid::new_v4().to_string()},
    })
    .to_string()
}

/// The metric names of a Prometheus text exposition.
async fn exported(url: &str) -> BTreeSet<String> {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_read_is_exported_by_the_binaries() {
    let app = spawn_app().await;
    let workers = app
        .start_workers(app.env.config_with(&[
            ("RESERVATION_TTL_SECS", "1"),
            ("EXPIRY_SWEEP_INTERVAL_MS", "200"),
        ]))
        .await;
    let client = app.create_user(Role::Client).await;
    let mug = app.products().create("Mug", 1250, 3).await;
    // A webhook endpoint receives the orders' events.
    let admin = app.create_user(Role::Admin).await;
    let receiver = common::testing::Receiver::start().await;
    let endpoint = app.webhooks().create(&admin, &receiver.url, &["*"]).await;
    receiver.verify_with(&[endpoint["secret"].as_str().unwrap()]);
    let wait = [("prefer", "wait=10")];
    let place = |quantity: i32| {
        let body = json!({"items": [{"product_id": mug, "quantity": quantity}]});
        let app = &app;
        let client = &client;
        async move {
            let res = app.post_as(client, "/api/v1/orders", &body, &wait).await;
            res.json::<Value>().await.unwrap()
        }
    };

    // Orders rejected (before the api heard what stock is left: then it would refuse it at
    // once), confirmed (then expired, unpaid); a payment for the expired one.
    assert_eq!(place(50).await["status"], "REJECTED");
    let confirmed = place(1).await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    let id = confirmed["id"].as_str().unwrap();
    app.orders()
        .when(&client, id, |o| o["status"] == "CANCELLED")
        .await;
    publish_plain(&app, "payments.evt.succeeded", payment(id, 1250)).await;
    // A message no handler can read is dead-lettered; a payment for an order not recorded is
    // retried, so redelivered.
    publish_plain(&app, "orders.cmd.transition", "not an envelope".into()).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    publish_plain(&app, "payments.evt.succeeded", payment(&unknown, 1)).await;

    let read: BTreeSet<String> = promql::dashboard_queries()
        .into_iter()
        .chain(promql::alert_queries())
        .flat_map(|(_, expr)| promql::metric_names(&expr))
        .filter(|name| !promql::EXTERNAL_METRICS.contains(&name.as_str()))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let mut names = exported(&app.metrics_url()).await;
        names.extend(exported(&format!("{workers}/metrics")).await);
        let missing: Vec<&String> = read.difference(&names).collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    assert!(
        missing.is_empty(),
        "read by the dashboard or the alerts, exported by neither binary: {missing:?}"
    );
    assert!(read.len() >= 15, "suspiciously few metrics read: {read:?}");
}
