//! Replaying an endpoint from the event history: exactly the events it subscribes to that the
//! `EVENTS` stream holds since the given time are delivered again, under their original
//! `webhook-id`s.

use crate::helpers::{TestApp, spawn_system_with};
use common::domain::{OrderStatus, PaymentStatus, RefundStatus, Role};
use common::messages::RefundChanged;
use common::money::{Currency, Money};
use common::testing::Receiver;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn refund_event(app: &TestApp, order: Uuid) {
    app.bus()
        .publish(
            RefundChanged {
                order_id: order,
                user_id: Uuid::nil(),
                refund_id: Uuid::new_v4(),
                status: RefundStatus::Requested,
                amount: Money::new(100).unwrap(),
                currency: Currency::new("USD").unwrap(),
                payment_reference: None,
                at: chrono::Utc::now(),
                actor: "user:test".into(),
                reason: Some("test".into()),
                payment_status: PaymentStatus::Paid,
                amount_paid: 100,
                amount_refunded: 0,
                entry_id: None,
            },
            "webhook-test",
        )
        .await;
}

#[tokio::test]
async fn replay_since_a_time_re_sends_exactly_the_matching_events_with_their_webhook_ids() {
    let app = spawn_system_with(&[]).await;
    let admin = app.create_user(Role::Admin).await;
    let receiver = Receiver::start().await;
    let endpoint = app
        .webhooks()
        .create(&admin, &receiver.url, &["order.status_changed"])
        .await;
    receiver.verify_with(&[endpoint["secret"].as_str().unwrap()]);
    let id = endpoint["id"].as_str().unwrap();
    let before = app
        .webhooks()
        .status_event(Uuid::new_v4(), OrderStatus::Paid)
        .await;
    let since = chrono::Utc::now();
    let (second, third) = (Uuid::new_v4(), Uuid::new_v4());
    app.webhooks().status_event(second, OrderStatus::Paid).await;
    refund_event(&app, second).await;
    app.webhooks().status_event(third, OrderStatus::Paid).await;
    let first_round = receiver.wait_for(3, WAIT).await;
    let original: Vec<(String, String)> = first_round
        .iter()
        .map(|r| {
            (
                r.body["data"]["order_id"].as_str().unwrap().to_owned(),
                r.webhook_id.clone(),
            )
        })
        .collect();

    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/webhooks/{id}/replay"),
            &json!({"since": since}),
            &[],
        )
        .await;

    assert_eq!(res.status(), 202);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer, json!({"queued": 2, "next_since": null}));
    let replayed: Vec<(String, String)> = receiver.wait_for(5, WAIT).await[3..]
        .iter()
        .map(|r| {
            (
                r.body["data"]["order_id"].as_str().unwrap().to_owned(),
                r.webhook_id.clone(),
            )
        })
        .collect();
    let expected: HashSet<&(String, String)> = original
        .iter()
        .filter(|(order, _)| *order == second.to_string() || *order == third.to_string())
        .collect();
    assert_eq!(replayed.iter().collect::<HashSet<_>>(), expected);
    assert!(
        !replayed
            .iter()
            .any(|(order, _)| *order == before.order_id.to_string())
    );
    assert!(receiver.received().iter().all(|r| r.verified_by == [0]));
}

#[tokio::test]
async fn a_replay_from_the_future_is_a_422_naming_since() {
    let app = spawn_system_with(&[]).await;
    let admin = app.create_user(Role::Admin).await;
    let endpoint = app
        .webhooks()
        .create(&admin, "http://127.0.0.1:9/hook", &["*"])
        .await;
    let id = endpoint["id"].as_str().unwrap();
    let since = chrono::Utc::now() + chrono::Duration::hours(1);

    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/webhooks/{id}/replay"),
            &json!({"since": since}),
            &[],
        )
        .await;

    let problem = crate::helpers::assert_problem(res, 422).await;
    assert_eq!(crate::helpers::fields(&problem), ["since"]);
}
