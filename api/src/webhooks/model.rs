//! The webhooks domain's shapes: endpoints (with their secret, shown once), the changes an
//! ADMIN asks for, deliveries with their attempts, and replays; and the checks of every field a
//! request sends.

use crate::error::FieldError;
use chrono::{DateTime, Utc};
use common::domain::WebhookDeliveryStatus;
use common::webhooks::{ALL_EVENTS, check_resolved, check_url, event_types, is_known_type};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Most event types one endpoint may list.
pub const MAX_EVENT_TYPES: usize = 50;

/// An endpoint events are delivered to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    /// Where deliveries are POSTed: https, on a public address.
    #[schema(example = "https://hooks.example.com/orders")]
    pub url: String,
    /// The event types delivered (`order.status_changed`, …), or `["*"]` for all of them.
    #[schema(example = json!(["order.status_changed"]))]
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why it is disabled: by an ADMIN, or after failing every attempt for
    /// `WEBHOOK_DISABLE_AFTER_SECS`. Null while enabled.
    pub disabled_reason: Option<String>,
    /// Until when the secret a rotation replaced still signs beside the new one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: answered only by creation and rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_` and the base64 of 32 random bytes: give it to the receiver's Standard Webhooks
    /// library. It is never shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// `POST /webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// https, at most 2000 characters, on a public address.
    #[schema(example = "https://hooks.example.com/orders")]
    pub url: String,
    /// 1 to 50 event types, or `["*"]`.
    #[schema(example = json!(["order.status_changed", "order.refund_changed"]))]
    pub events: Vec<String>,
    /// At most 500 characters.
    pub description: Option<String>,
}

/// `PATCH /webhooks/{id}`: any of these, at least one. Enabling an endpoint clears its
/// `disabled_reason` and its failing streak.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The endpoint's status code; null when it did not answer in time (see `error`).
    pub status_code: Option<i16>,
    /// What went wrong without an answer: a timeout, a refused address, a reset connection.
    pub error: Option<String>,
    /// The first KiB of the answer's body.
    pub response_body: Option<String>,
}

/// An event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    /// The `webhook-id` header of every attempt, retry and replay of it.
    #[schema(example = "msg_2f1c0e6a9b7d4c3e8a5f0b1d2c3e4f5a")]
    pub webhook_id: String,
    pub event_id: Uuid,
    #[schema(example = "order.status_changed")]
    pub event_type: String,
    /// `PENDING` while attempts are due, `SUCCEEDED` after a 2xx answer, `FAILED` when the
    /// schedule ran out or the endpoint was disabled.
    pub status: WebhookDeliveryStatus,
    pub attempt_count: i32,
    /// When the next attempt is due, while `PENDING`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The body every attempt sends: `{"type","timestamp","data"}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Its attempts, oldest first (the last 50).
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /webhooks/{id}/replay`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// RFC 3339: every event the `EVENTS` stream still holds from then on is delivered again.
    #[schema(example = "2024-05-01T10:00:00Z")]
    pub since: DateTime<Utc>,
}

/// What a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// Deliveries queued, in the order of their events.
    pub queued: usize,
    /// Set when the replay stopped at its bound (10 000 events): replay again from here for
    /// the rest.
    pub next_since: Option<DateTime<Utc>>,
}

/// Checks an endpoint's URL, resolving its host: a 422 naming `url` unless it is https on a
/// public address (anything, in a deployment that allows private networks).
pub async fn check_endpoint_url(raw: &str, allow_private: bool) -> Result<String, FieldError> {
    let refused = |e: common::webhooks::Refusal| FieldError::new("url", e.to_string());
    let url = check_url(raw.trim(), allow_private).map_err(refused)?;
    check_resolved(&url, allow_private).await.map_err(refused)?;
    Ok(url.to_string())
}

/// Checks the event types: 1 to 50, each known or `*`; repeats are dropped.
pub fn check_events(events: &[String]) -> Result<Vec<String>, FieldError> {
    let unknown: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| !is_known_type(e))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<String> = event_types().iter().map(|t| t.name()).collect();
        return Err(FieldError::new(
            "events",
            format!(
                "unknown event types {unknown:?}; known: {}, or {ALL_EVENTS:?} for all",
                known.join(", ")
            ),
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(events.len());
    for event in events {
        if !checked.contains(event) {
            checked.push(event.clone());
        }
    }
    if checked.is_empty() || checked.len() > MAX_EVENT_TYPES {
        return Err(FieldError::new(
            "events",
            format!("1 to {MAX_EVENT_TYPES} event types, or [{ALL_EVENTS:?}]"),
        ));
    }
    Ok(checked)
}

/// Checks a description: at most 500 characters, trimmed.
pub fn check_description(description: &str) -> Result<String, FieldError> {
    let trimmed = description.trim();
    if trimmed.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_event_types_are_named_and_repeats_dropped() {
        let e = check_events(&["order.status_changed".into(), "order.shipped".into()])
            .expect_err("unknown");
        assert_eq!(e.field, "events");
        assert!(e.message.contains("order.shipped"), "{e:?}");
        assert!(check_events(&[]).is_err());
        assert_eq!(
            check_events(&["*".into(), "*".into()]).expect("valid"),
            vec!["*".to_owned()]
        );
    }

    #[test]
    fn a_description_is_bounded() {
        assert!(check_description(&"x".repeat(501)).is_err());
        assert_eq!(check_description("  crm  ").expect("valid"), "crm");
    }
}
