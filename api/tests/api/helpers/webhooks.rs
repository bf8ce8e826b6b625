//! Webhooks in tests ([`Webhooks`]): endpoints registered through the api, order events
//! published as the workers publish them, and the delivery log read back.

use super::{TestApp, TestUser};
use common::domain::OrderStatus;
use common::messages::OrderStatusChanged;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A retry schedule short enough for tests: at once, then twice after 300 ms.
pub const QUICK_RETRIES: (&str, &str) = ("WEBHOOK_RETRY_SCHEDULE", "0,300ms,300ms");

/// Webhooks: endpoints registered through the api, their delivery log read back, and the order
/// events they deliver published as the workers publish them.
#[derive(Clone, Copy)]
pub struct Webhooks<'a> {
    pub(super) app: &'a TestApp,
}

impl Webhooks<'_> {
    /// Registers an endpoint at `url` for `events` as `admin`; returns it with its secret.
    pub async fn create(self, admin: &TestUser, url: &str, events: &[&str]) -> Value {
        let res = self
            .app
            .post_as(
                admin,
                "/api/v1/webhooks",
                &json!({"url": url, "events": events}),
                &[],
            )
            .await;
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
        res.json().await.unwrap()
    }

    /// The deliveries of endpoint `id` (first page, up to 100), newest first.
    pub async fn deliveries(self, admin: &TestUser, id: &str, query: &str) -> Vec<Value> {
        let res = self
            .app
            .get_as(
                admin,
                &format!("/api/v1/webhooks/{id}/deliveries?limit=100&{query}"),
            )
            .await;
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// Waits until endpoint `id` has a delivery satisfying `done` (deadline 20 s).
    pub async fn delivery_when(
        self,
        admin: &TestUser,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        common::testing::eventually(Duration::from_secs(20), "a webhook delivery", || async {
            self.deliveries(admin, id, "")
                .await
                .into_iter()
                .find(|d| done(d))
        })
        .await
    }

    /// Publishes the event that order `order` moved to `to`, as the order worker does; returns
    /// the event.
    pub async fn status_event(self, order: Uuid, to: OrderStatus) -> OrderStatusChanged {
        let event = OrderStatusChanged {
            order_id: order,
            user_id: Uuid::nil(),
            from: None,
            to,
            at: chrono::Utc::now(),
            actor: "system:test".into(),
            reason: None,
            entry_id: None,
            shipment: None,
        };
        self.app.bus().publish(event.clone(), "webhook-test").await;
        event
    }
}
