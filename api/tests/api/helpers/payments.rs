//! Payments in tests: the payment system's events published with a plain NATS client, refunds
//! asked for and the money read back ([`Payments`]); and [`PaymentSystem`], the payment system
//! as the tests play it, reading refund commands through its own durable consumer.

use super::{TestApp, TestUser};
use async_nats::jetstream::{self, consumer::PullConsumer};
use common::testing::eventually;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A payment-system event of `kind` (`succeeded`, `refunded`, …) in its envelope.
pub fn payment_event(kind: &str, data: Value) -> Value {
    json!({
        "id": Uuid::new_v4(),
        "type": format!("payments.{kind}"),
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": "psp",
        "data": data,
    })
}

/// The data of a payment of `amount` USD for `order` under the provider's `reference`.
fn payment(order: &str, amount: i64, reference: &str) -> Value {
    json!({"order_id": order, "amount": amount, "currency": "USD", "provider_reference": reference})
}

/// Payments as the api sees them: the payment system's events published, refunds asked for,
/// the outcome of a payment as stored, and the reconciliation report.
#[derive(Clone, Copy)]
pub struct Payments<'a> {
    pub(super) app: &'a TestApp,
}

impl Payments<'_> {
    /// The payment system says `amount` was paid for `order` (plain NATS client).
    pub async fn succeeded(self, order: &str, amount: i64, reference: &str) {
        let event = payment_event("succeeded", payment(order, amount, reference));
        self.app
            .bus()
            .publish_plain("payments.evt.succeeded", event)
            .await;
    }

    /// The payment system says the card was declined for `order` (plain NATS client).
    pub async fn failed(self, order: &str, amount: i64, reference: &str) {
        let mut data = payment(order, amount, reference);
        data["reason"] = json!("card declined");
        self.app
            .bus()
            .publish_plain("payments.evt.failed", payment_event("failed", data))
            .await;
    }

    /// What became of the payment under `reference`, if it was recorded.
    pub async fn outcome(self, reference: &str) -> Option<String> {
        sqlx::query_scalar("SELECT outcome::text FROM payments WHERE provider_reference = $1")
            .bind(reference)
            .fetch_optional(&self.app.state.db)
            .await
            .expect("payment outcome")
    }

    /// Asks for a refund of `order` under the idempotency key `key`.
    pub async fn refund(
        self,
        admin: &TestUser,
        order: &str,
        key: &str,
        body: Value,
    ) -> reqwest::Response {
        self.app
            .post_as(
                admin,
                &format!("/api/v1/orders/{order}/refunds"),
                &body,
                &[("idempotency-key", key)],
            )
            .await
    }

    /// The stock and money reconciliation report.
    pub async fn reconciliation(self, admin: &TestUser) -> Value {
        self.app
            .read(admin, "/api/v1/admin/stock-reconciliation")
            .await
    }
}

/// An outside payment system on a plain NATS connection.
pub struct PaymentSystem {
    pub client: async_nats::Client,
    consumer: PullConsumer,
    pub subject_prefix: String,
}

impl PaymentSystem {
    /// Connects and reads `payments.cmd.refund` through the durable consumer `payments`.
    pub async fn connect(app: &TestApp) -> Self {
        let client = async_nats::connect(common::testing::nats_url())
            .await
            .expect("plain NATS client");
        let js = jetstream::new(client.clone());
        let ns = app.state.bus.namespace();
        let stream = js
            .get_stream(ns.name("PAYMENTS_CMD"))
            .await
            .expect("PAYMENTS_CMD");
        let consumer = stream
            .get_or_create_consumer(
                "payments",
                jetstream::consumer::pull::Config {
                    durable_name: Some("payments".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .expect("consumer");
        PaymentSystem {
            client,
            consumer,
            subject_prefix: ns.subject(""),
        }
    }

    /// The next refund command, acknowledged, with its `Nats-Msg-Id`.
    pub async fn next_command(&self) -> (Value, String) {
        next_acked(&self.consumer, "a refund command").await
    }

    /// No refund command waits for the payment system.
    pub async fn nothing_waiting(&self) {
        let mut consumer = self.consumer.clone();
        let info = consumer.info().await.expect("consumer info");
        assert_eq!(info.num_pending, 0, "a refund command is waiting");
    }

    /// Publishes an event as the payment system would (core NATS, no message id: each
    /// publish is stored and delivered).
    async fn publish(&self, kind: &str, data: Value) {
        let subject = match kind {
            "refunded" | "refund_failed" | "succeeded" | "failed" => {
                format!("{}payments.evt.{kind}", self.subject_prefix)
            }
            other => panic!("unknown kind {other}"),
        };
        self.client
            .publish(subject, payment_event(kind, data).to_string().into())
            .await
            .expect("published");
        self.client.flush().await.expect("flushed");
    }

    /// Says `amount` was paid for `order` under `reference`.
    pub async fn pay(&self, order: &str, amount: i64, reference: &str) {
        self.publish("succeeded", payment(order, amount, reference))
            .await;
    }

    /// Answers a refund command: the money went back.
    pub async fn refunded(&self, command: &Value, reference: &str) {
        let data = &command["data"];
        self.publish(
            "refunded",
            json!({"refund_id": data["refund_id"], "order_id": data["order_id"],
                   "amount": data["amount"], "currency": data["currency"],
                   "provider_reference": reference}),
        )
        .await;
    }

    /// Answers a refund command: the money could not go back.
    pub async fn refund_failed(&self, command: &Value, reference: &str) {
        let data = &command["data"];
        self.publish(
            "refund_failed",
            json!({"refund_id": data["refund_id"], "order_id": data["order_id"],
                   "provider_reference": reference, "reason": "card closed"}),
        )
        .await;
    }

    /// An order of one 1250 mug by `customer`, paid under `reference`; returns its id.
    pub async fn paid_order(&self, app: &TestApp, customer: &TestUser, reference: &str) -> String {
        let mug = app.products().create("Mug", 1250, 10).await;
        let order = app.orders().place_settled(customer, mug, 1).await;
        assert_eq!(order["status"], "CONFIRMED");
        let id = super::id_of(&order);
        self.pay(&id, 1250, reference).await;
        let paid = app
            .orders()
            .when(customer, &id, |o| o["status"] == "PAID")
            .await;
        assert_eq!(paid["payment_status"], "PAID");
        assert_eq!(paid["amount_paid"], 1250);
        assert_eq!(paid["amount_refunded"], 0);
        assert_eq!(paid["payments"][0]["provider_reference"], reference);
        id
    }
}

/// A [`Shop`](super::Shop) with the payment system connected and an order of the customer's,
/// paid.
pub struct PaidShop {
    pub shop: super::Shop,
    pub psp: PaymentSystem,
    /// The paid order's id: one 1250 mug.
    pub order: String,
}

impl std::ops::Deref for PaidShop {
    type Target = super::Shop;

    fn deref(&self) -> &super::Shop {
        &self.shop
    }
}

impl PaidShop {
    /// Starts the system and has the customer's order paid under `reference`.
    pub async fn open(reference: &str) -> PaidShop {
        let shop = super::Shop::open().await;
        let psp = PaymentSystem::connect(&shop).await;
        let order = psp.paid_order(&shop, &shop.customer, reference).await;
        PaidShop { shop, psp, order }
    }

    /// The ADMIN asks for a refund of `amount` of the order under `key`; the api accepts it
    /// (202). Returns the refund.
    pub async fn ask_refund(&self, key: &str, amount: i64, reason: &str) -> Value {
        let body = json!({"amount": amount, "reason": reason});
        let res = self
            .payments()
            .refund(&self.admin, &self.order, key, body)
            .await;
        assert_eq!(res.status(), 202);
        res.json().await.expect("refund")
    }
}

/// The next message `consumer` is given, acknowledged: its envelope and `Nats-Msg-Id`.
pub async fn next_acked(consumer: &PullConsumer, what: &str) -> (Value, String) {
    eventually(Duration::from_secs(20), what, || async {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .ok()?;
        let message = batch.next().await?.ok()?;
        message.ack().await.ok()?;
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let envelope: Value = serde_json::from_slice(&message.payload).ok()?;
        Some((envelope, id))
    })
    .await
}
