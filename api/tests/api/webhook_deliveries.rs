//! Webhook deliveries against real receivers: every delivery verifies with the reference
//! Standard Webhooks implementation, failures are retried on the schedule under one
//! `webhook-id`, a hanging endpoint delays no other, and a rotated secret signs beside the new
//! one for its overlap only.

use crate::helpers::{QUICK_RETRIES, Shop, TestApp, TestUser, id_of, spawn_system_with};
use common::domain::{OrderStatus, Role};
use common::testing::{Receiver, Reply};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// The system with `overrides`, an ADMIN, and a receiver registered for `events`, verifying
/// with the endpoint's secret.
async fn system_with_receiver(
    overrides: &[(&str, &str)],
    events: &[&str],
) -> (TestApp, TestUser, Receiver, Value) {
    let app = spawn_system_with(overrides).await;
    let admin = app.create_user(Role::Admin).await;
    let receiver = Receiver::start().await;
    let endpoint = app.webhooks().create(&admin, &receiver.url, events).await;
    receiver.verify_with(&[endpoint["secret"].as_str().unwrap()]);
    (app, admin, receiver, endpoint)
}

#[tokio::test]
async fn a_receiver_verifying_with_the_reference_implementation_accepts_every_delivery() {
    let shop = Shop::open().await;
    let receiver = Receiver::start().await;
    let endpoint = shop
        .webhooks()
        .create(&shop.admin, &receiver.url, &["*"])
        .await;
    receiver.verify_with(&[endpoint["secret"].as_str().unwrap()]);
    let mug = shop.products().create("Mug", 1250, 10).await;

    let order = shop.confirmed_order(mug, 1).await;
    shop.payments()
        .succeeded(&order, 1250, "psp-webhook-1")
        .await;
    shop.order_in(&order, "PAID").await;
    let res = shop
        .payments()
        .refund(
            &shop.admin,
            &order,
            "refund-1",
            json!({"amount": 250, "reason": "chipped"}),
        )
        .await;
    assert_eq!(res.status(), 202);

    let received = receiver.wait_for(3, WAIT).await;
    let types: Vec<&str> = received
        .iter()
        .map(|r| r.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "order.status_changed",
            "order.status_changed",
            "order.refund_changed"
        ]
    );
    for request in &received {
        assert_eq!(request.verified_by, [0], "verified: {}", request.raw);
        assert_eq!(request.body["data"]["order_id"], order.as_str());
        assert!(request.body["timestamp"].is_string());
    }
    let id = endpoint["id"].as_str().unwrap();
    // The receiver answers before the worker records the answer: wait for the log.
    let deliveries = common::testing::eventually(WAIT, "three deliveries logged", || async {
        let logged = shop
            .webhooks()
            .deliveries(&shop.admin, id, "status=SUCCEEDED")
            .await;
        (logged.len() == 3).then_some(logged)
    })
    .await;
    assert!(
        deliveries
            .iter()
            .all(|d| d["attempts"][0]["status_code"] == 200)
    );
}

#[tokio::test]
async fn a_receiver_answering_500_twice_then_200_gets_three_attempts_with_one_webhook_id() {
    let (app, admin, receiver, endpoint) = system_with_receiver(&[QUICK_RETRIES], &["*"]).await;
    receiver.script(&[Reply::Status(500), Reply::Status(500)]);

    app.webhooks()
        .status_event(Uuid::new_v4(), OrderStatus::Paid)
        .await;

    let received = receiver.wait_for(3, WAIT).await;
    let ids: HashSet<&str> = received.iter().map(|r| r.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(
        received.iter().all(|r| r.raw == received[0].raw),
        "the same body every time"
    );
    let id = endpoint["id"].as_str().unwrap();
    let delivery = app
        .webhooks()
        .delivery_when(&admin, id, |d| d["status"] == "SUCCEEDED")
        .await;
    let codes: Vec<&Value> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(delivery["webhook_id"], received[0].webhook_id.as_str());
    assert_eq!(received.len(), 3, "no attempt after the success");
}

#[tokio::test]
async fn a_receiver_that_hangs_delays_no_other_endpoints_deliveries_by_more_than_a_second() {
    let app = spawn_system_with(&[
        ("WEBHOOK_TIMEOUT_SECS", "5"),
        ("WEBHOOK_ENDPOINT_CONCURRENCY", "2"),
    ])
    .await;
    let admin = app.create_user(Role::Admin).await;
    let (hanging, healthy) = (Receiver::start().await, Receiver::start().await);
    for receiver in [&hanging, &healthy] {
        let endpoint = app.webhooks().create(&admin, &receiver.url, &["*"]).await;
        receiver.verify_with(&[endpoint["secret"].as_str().unwrap()]);
    }
    hanging.always(Reply::Hang);

    let mut published = HashMap::new();
    for _ in 0..20 {
        let order = Uuid::new_v4();
        app.webhooks().status_event(order, OrderStatus::Paid).await;
        published.insert(order.to_string(), Instant::now());
    }

    let received = healthy.wait_for(20, WAIT).await;
    for request in received {
        let order = request.body["data"]["order_id"].as_str().unwrap();
        let late = request.at.duration_since(published[order]);
        assert!(
            late < Duration::from_secs(1),
            "order {order} came {late:?} after its event"
        );
    }
    assert!(
        !hanging.received().is_empty(),
        "the hanging endpoint was tried too"
    );
}

#[tokio::test]
async fn a_rotated_secret_verifies_beside_the_new_one_during_the_overlap_and_not_after() {
    let (app, admin, receiver, endpoint) =
        system_with_receiver(&[("WEBHOOK_SECRET_OVERLAP_SECS", "2")], &["*"]).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let rotated: Value = app
        .post_empty_as(&admin, &format!("/api/v1/webhooks/{id}/rotate-secret"), &[])
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    receiver.verify_with(&[&old, &new]);

    app.webhooks()
        .status_event(Uuid::new_v4(), OrderStatus::Paid)
        .await;
    let during = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        during.verified_by,
        [0, 1],
        "both secrets verify during the overlap"
    );
    assert_eq!(
        during.signature.split(' ').count(),
        2,
        "{}",
        during.signature
    );

    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(rotated["previous_secret_expires_at"].clone()).unwrap();
    common::testing::eventually(Duration::from_secs(5), "the overlap to end", || async {
        (chrono::Utc::now() > expires).then_some(())
    })
    .await;
    app.webhooks()
        .status_event(Uuid::new_v4(), OrderStatus::Paid)
        .await;
    let after = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(
        after.verified_by,
        [1],
        "only the new secret verifies after the overlap"
    );
    assert_eq!(after.signature.split(' ').count(), 1, "{}", after.signature);
}

#[tokio::test]
async fn a_delivery_is_re_sent_on_request_with_its_webhook_id() {
    let (app, admin, receiver, endpoint) =
        system_with_receiver(&[("WEBHOOK_RETRY_SCHEDULE", "0")], &["*"]).await;
    let id = endpoint["id"].as_str().unwrap();
    receiver.script(&[Reply::Status(503)]);
    app.webhooks()
        .status_event(Uuid::new_v4(), OrderStatus::Paid)
        .await;
    let failed = app
        .webhooks()
        .delivery_when(&admin, id, |d| d["status"] == "FAILED")
        .await;
    assert_eq!(failed["last_error"], "answered 503");

    let res = app
        .post_empty_as(
            &admin,
            &format!("/api/v1/webhooks/{id}/deliveries/{}/retry", id_of(&failed)),
            &[],
        )
        .await;

    assert_eq!(res.status(), 202);
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(received[0].webhook_id, received[1].webhook_id);
    let delivery = app
        .webhooks()
        .delivery_when(&admin, id, |d| d["status"] == "SUCCEEDED")
        .await;
    assert_eq!(delivery["attempt_count"], 2);
    assert!(
        app.webhooks()
            .deliveries(&admin, id, "status=FAILED")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_test_event_reaches_an_endpoint_whatever_it_subscribes_to() {
    let (app, admin, receiver, endpoint) =
        system_with_receiver(&[], &["order.refund_changed"]).await;
    let id = endpoint["id"].as_str().unwrap();

    let res = app
        .post_empty_as(&admin, &format!("/api/v1/webhooks/{id}/test"), &[])
        .await;

    assert_eq!(res.status(), 202);
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.body["type"], "webhook.test");
    assert_eq!(request.body["data"]["endpoint_id"], id);
    assert_eq!(request.verified_by, [0]);
}

#[tokio::test]
async fn an_endpoint_failing_every_attempt_for_the_bound_is_disabled_with_a_reason() {
    let (app, admin, receiver, endpoint) = system_with_receiver(
        &[
            ("WEBHOOK_RETRY_SCHEDULE", "0,200ms"),
            ("WEBHOOK_DISABLE_AFTER_SECS", "0"),
        ],
        &["*"],
    )
    .await;
    let id = endpoint["id"].as_str().unwrap();
    receiver.always(Reply::Status(500));

    app.webhooks()
        .status_event(Uuid::new_v4(), OrderStatus::Paid)
        .await;

    let disabled = common::testing::eventually(WAIT, "the endpoint disabled", || async {
        let e: Value = app
            .get_as(&admin, &format!("/api/v1/webhooks/{id}"))
            .await
            .json()
            .await
            .ok()?;
        (e["enabled"] == false).then_some(e)
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .starts_with("every attempt failed since"),
        "{disabled}"
    );
    app.webhooks()
        .delivery_when(&admin, id, |d| d["status"] == "FAILED")
        .await;
    let res = app
        .post_empty_as(&admin, &format!("/api/v1/webhooks/{id}/test"), &[])
        .await;
    assert_eq!(res.status(), 409, "nothing is sent to a disabled endpoint");
}
