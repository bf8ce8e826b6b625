//! Outbound webhooks, the parts the api and the webhooks worker share: which order events an
//! endpoint may subscribe to (and their payloads' schemas), the payload every delivery carries,
//! the id of each delivery, the message that asks the worker for an attempt, signing secrets and
//! their encryption at rest, the addresses an endpoint may not have, and queueing deliveries.
//!
//! A webhook's type is its event's subject with `orders.evt.` replaced by `order.`:
//! `orders.evt.status_changed` is `order.status_changed`. A new public order event becomes a
//! webhook type by one line in [`event_types`].

use crate::messages::{FulfilmentChanged, OrderStatusChanged, RefundChanged, ReturnChanged};
use crate::messaging::{Message, RawEnvelope};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

mod queue;
mod secret;
mod target;

pub use queue::{AttemptDelivery, NewDelivery, Queued, queue};
pub use secret::{SecretBox, SecretError, SigningSecret};
pub use target::{
    MAX_URL_LEN, Refusal, check_resolved, check_url, forbidden_address, refuse_address,
};

/// The subjects whose events are delivered as webhooks: `orders.evt.<name>`.
pub const EVENT_SUBJECTS: &str = "orders.evt.>";
/// The type of the event `POST /webhooks/{id}/test` sends, to any endpoint whatever it
/// subscribes to.
pub const TEST_EVENT: &str = "webhook.test";
/// What an endpoint subscribes to for every event type.
pub const ALL_EVENTS: &str = "*";

/// A schema's name, and that schema with every schema it refers to.
pub type NamedSchemas = (String, Vec<(String, RefOr<Schema>)>);

/// An order event delivered as a webhook.
pub struct EventType {
    /// Its NATS subject, relative to the namespace (`orders.evt.status_changed`).
    pub subject: &'static str,
    /// What it tells, for the OpenAPI document.
    pub description: &'static str,
    /// The name of its `data` schema, and that schema with every schema it refers to.
    pub schemas: fn() -> NamedSchemas,
}

impl EventType {
    /// The webhook type: `order.<name>`.
    pub fn name(&self) -> String {
        type_of(self.subject).unwrap_or_default()
    }
}

fn event<M: Message + ToSchema>(description: &'static str) -> EventType {
    EventType {
        subject: M::SUBJECT,
        description,
        schemas: || {
            let mut schemas = vec![(M::name().into_owned(), <M as PartialSchema>::schema())];
            M::schemas(&mut schemas);
            (M::name().into_owned(), schemas)
        },
    }
}

/// Every order event an endpoint may subscribe to.
pub fn event_types() -> Vec<EventType> {
    vec![
        event::<OrderStatusChanged>(
            "An order was recorded (from null to CONFIRMED or REJECTED) or changed status.",
        ),
        event::<RefundChanged>(
            "A refund of an order was requested, succeeded or failed, with the order's money after the change.",
        ),
        event::<FulfilmentChanged>(
            "A shipment of some of an order's quantities was made or delivered, with the order's status after it.",
        ),
        event::<ReturnChanged>(
            "A return of an order's delivered quantities was requested, received (restocked or written off, refunded), rejected or cancelled.",
        ),
    ]
}

/// The webhook type of an event subject (`orders.evt.x` is `order.x`); `None` for a subject
/// that is not an order event.
pub fn type_of(subject: &str) -> Option<String> {
    subject
        .strip_prefix("orders.evt.")
        .filter(|name| !name.is_empty() && !name.contains('.'))
        .map(|name| format!("order.{name}"))
}

/// Whether `name` is a type an endpoint may subscribe to.
pub fn is_known_type(name: &str) -> bool {
    name == ALL_EVENTS || event_types().iter().any(|t| t.name() == name)
}

/// The body of every delivery (the Standard Webhooks payload): the type, when the event
/// happened, and the event's data as published.
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload<D> {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: D,
}

/// The payload of an order event, from its envelope; `None` for a subject that is not one.
pub fn payload_of(subject: &str, envelope: &RawEnvelope) -> Option<(String, String)> {
    let kind = type_of(subject)?;
    let body = serde_json::to_string(&Payload {
        kind: kind.clone(),
        timestamp: rfc3339(envelope.occurred_at),
        data: &envelope.data,
    })
    .ok()?;
    Some((kind, body))
}

/// The payload of a test event sent to `endpoint`.
pub fn test_payload(endpoint: Uuid, at: DateTime<Utc>) -> String {
    serde_json::json!({
        "type": TEST_EVENT,
        "timestamp": rfc3339(at),
        "data": {"endpoint_id": endpoint, "message": "a test event from the order service"},
    })
    .to_string()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Fixed namespace of delivery ids (UUID v5).
const DELIVERY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x7765_6268_6f6f_6b2d_6465_6c69_7665_7279);

/// The id of the delivery of event `event_id` to `endpoint`: the same for every attempt, every
/// retry and every replay, so receivers can deduplicate on it.
pub fn delivery_id(endpoint: Uuid, event_id: Uuid) -> Uuid {
    let mut name = [0u8; 32];
    name[..16].copy_from_slice(endpoint.as_bytes());
    name[16..].copy_from_slice(event_id.as_bytes());
    Uuid::new_v5(&DELIVERY_ID_NAMESPACE, &name)
}

/// The `webhook-id` header of a delivery: `msg_` and its id in hex (no dots, as the
/// specification asks).
pub fn webhook_id(delivery: Uuid) -> String {
    format!("msg_{}", delivery.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_type_is_its_subject_under_order() {
        assert_eq!(
            type_of("orders.evt.status_changed").as_deref(),
            Some("order.status_changed")
        );
        assert_eq!(type_of("orders.cmd.place"), None);
        assert_eq!(type_of("orders.evt."), None);
        let names: Vec<String> = event_types().iter().map(EventType::name).collect();
        assert_eq!(
            names,
            [
                "order.status_changed",
                "order.refund_changed",
                "order.fulfilment_changed",
                "order.return_changed"
            ]
        );
        assert!(is_known_type("*") && is_known_type("order.refund_changed"));
        assert!(!is_known_type("order.unknown") && !is_known_type(TEST_EVENT));
    }

    #[test]
    fn a_delivery_id_depends_on_both_the_endpoint_and_the_event() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(delivery_id(a, b), delivery_id(a, b));
        assert_ne!(delivery_id(a, b), delivery_id(b, a));
        let id = webhook_id(delivery_id(a, b));
        assert!(
            id.starts_with("msg_") && !id.contains('.') && id.len() == 36,
            "{id}"
        );
    }

    #[test]
    fn a_payload_carries_the_type_the_event_time_and_the_data_as_published() {
        let envelope = RawEnvelope::parse(
            br#"{"id":"00000000-0000-0000-0000-000000000001","type":"orders.status_changed","version":1,
                "occurred_at":"2024-05-01T10:00:00.123456Z","correlation_id":"c","data":{"to":"PAID"}}"#,
        )
        .expect("envelope");
        let (kind, body) =
            payload_of("orders.evt.status_changed", &envelope).expect("an order event");
        assert_eq!(kind, "order.status_changed");
        assert_eq!(
            body,
            r#"{"type":"order.status_changed","timestamp":"2024-05-01T10:00:00.123456Z","data":{"to":"PAID"}}"#
        );
    }
}
