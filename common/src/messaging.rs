//! The message envelope, subjects and publishing.
//!
//! Every message on the bus is JSON in one versioned [`Envelope`]. Each message type knows its
//! subject and its deterministic message id ([`Message`]), and all publishing goes through
//! [`Bus`], so no handler touches raw subjects or headers.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// Header carrying the correlation id from the HTTP request to every worker step.
pub const CORRELATION_HEADER: &str = "Correlation-Id";
/// Headers set on a dead letter.
pub const DLQ_REASON_HEADER: &str = "Dead-Letter-Reason";
pub const DLQ_SUBJECT_HEADER: &str = "Dead-Letter-Subject";
pub const DLQ_DELIVERIES_HEADER: &str = "Dead-Letter-Deliveries";
pub const DLQ_STREAM_HEADER: &str = "Dead-Letter-Stream";
pub const DLQ_SEQUENCE_HEADER: &str = "Dead-Letter-Sequence";

/// Fixed namespace for deriving envelope ids from message ids (UUID v5).
const ENVELOPE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_2d65_6e76_656c_6f70_6531);

/// The one envelope every message travels in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// Unique per logical message; derived from the deterministic message id, so a retried
    /// publish carries the same id.
    pub id: Uuid,
    /// The message type, e.g. `orders.place`.
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: String,
    pub data: T,
}

/// A message type: its name, schema version, subject and deterministic id.
pub trait Message: Serialize + DeserializeOwned + Send + Sync {
    /// The `type` field of the envelope.
    const TYPE: &'static str;
    /// The schema version in the envelope; bumped on incompatible changes.
    const VERSION: u32;
    /// The subject, relative to the namespace (e.g. `orders.cmd.place`).
    fn subject(&self) -> String;
    /// A deterministic id (order id and step), used as `Nats-Msg-Id` so that the server drops a
    /// retried publish inside its duplicate window.
    fn message_id(&self) -> String;
}

/// Why an incoming message could not be decoded: a poison message, never retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not a valid envelope: {0}")]
    Envelope(serde_json::Error),
    #[error("unexpected message type {found:?}, expected {expected:?}")]
    Type {
        expected: &'static str,
        found: String,
    },
    #[error("unsupported version {found} of {kind}, this build reads version {supported}")]
    Version {
        kind: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("invalid data for {kind}: {source}")]
    Data {
        kind: &'static str,
        source: serde_json::Error,
    },
}

impl<T> Envelope<T> {
    pub fn new<M: Message>(message: M, correlation_id: impl Into<String>) -> Envelope<M> {
        Envelope {
            id: Uuid::new_v5(&ENVELOPE_ID_NAMESPACE, message.message_id().as_bytes()),
            kind: M::TYPE.to_owned(),
            version: M::VERSION,
            occurred_at: Utc::now(),
            correlation_id: correlation_id.into(),
            data: message,
        }
    }
}

/// Decodes a payload into the envelope of `M`, checking type and version.
pub fn decode<M: Message>(payload: &[u8]) -> Result<Envelope<M>, DecodeError> {
    let raw: Envelope<serde_json::Value> =
        serde_json::from_slice(payload).map_err(DecodeError::Envelope)?;
    if raw.kind != M::TYPE {
        return Err(DecodeError::Type {
            expected: M::TYPE,
            found: raw.kind,
        });
    }
    if raw.version != M::VERSION {
        return Err(DecodeError::Version {
            kind: M::TYPE,
            found: raw.version,
            supported: M::VERSION,
        });
    }
    let data = serde_json::from_value(raw.data).map_err(|source| DecodeError::Data {
        kind: M::TYPE,
        source,
    })?;
    Ok(Envelope {
        id: raw.id,
        kind: raw.kind,
        version: raw.version,
        occurred_at: raw.occurred_at,
        correlation_id: raw.correlation_id,
        data,
    })
}

/// Reads only the `type` field of an envelope, to route a message among several kinds.
pub fn peek_type(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct TypeOnly {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_slice::<TypeOnly>(payload)
        .ok()
        .map(|t| t.kind)
}

/// The deployment's prefix for subjects and stream names (`NATS_NAMESPACE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    pub fn new(ns: impl Into<String>) -> Self {
        Namespace(ns.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A full subject: `orders.cmd.place` becomes `{ns}.orders.cmd.place`.
    pub fn subject(&self, relative: &str) -> String {
        if self.0.is_empty() {
            relative.to_owned()
        } else {
            format!("{}.{relative}", self.0)
        }
    }

    /// Strips the namespace from a full subject.
    pub fn relative<'a>(&self, subject: &'a str) -> &'a str {
        if self.0.is_empty() {
            subject
        } else {
            subject
                .strip_prefix(self.0.as_str())
                .and_then(|s| s.strip_prefix('.'))
                .unwrap_or(subject)
        }
    }

    /// A stream or consumer name: `ORDERS_CMD` becomes `{ns}_ORDERS_CMD`.
    pub fn name(&self, base: &str) -> String {
        if self.0.is_empty() {
            base.to_owned()
        } else {
            format!("{}_{base}", self.0)
        }
    }
}

/// Failure to get a publish acknowledged by JetStream.
#[derive(Debug, thiserror::Error)]
#[error("publish to {subject} not acknowledged: {reason}")]
pub struct PublishError {
    pub subject: String,
    pub reason: String,
}

/// What JetStream said about a publish.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub sequence: u64,
    /// The server dropped it as a duplicate of a message with the same id.
    pub duplicate: bool,
}

/// The publishing side of the bus, cheap to clone.
#[derive(Clone)]
pub struct Bus {
    js: jetstream::Context,
    ns: Namespace,
}

impl Bus {
    pub fn new(js: jetstream::Context, ns: Namespace) -> Self {
        Bus { js, ns }
    }

    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Publishes `message` and waits until JetStream has stored it (or recognised it as a
    /// duplicate). Only then is the intent durable.
    /// The message carries the correlation id and a child of the current trace context
    /// (see [`crate::trace`]) in its headers.
    #[tracing::instrument(skip_all, fields(subject, msg_id, correlation_id = %correlation_id))]
    pub async fn publish<M: Message>(
        &self,
        message: M,
        correlation_id: &str,
    ) -> Result<Published, PublishError> {
        let subject = self.ns.subject(&message.subject());
        let msg_id = message.message_id();
        tracing::Span::current().record("subject", subject.as_str());
        tracing::Span::current().record("msg_id", msg_id.as_str());
        let envelope = Envelope::<M>::new(message, correlation_id);
        let payload = serde_json::to_vec(&envelope).map_err(|e| PublishError {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CORRELATION_HEADER, correlation_id);
        let trace = crate::trace::TraceContext::for_outgoing();
        headers.insert(crate::trace::TRACEPARENT_HEADER, trace.to_string().as_str());
        let payload = bytes::Bytes::from(payload);
        let published = self
            .publish_raw(subject, msg_id, headers, payload.clone())
            .await?;
        // One line per message is too many for INFO at a thousand orders a second; failures
        // are logged where they happen, and `common::messaging=debug` shows every publish.
        tracing::debug!(
            order_id = crate::trace::order_id_in(&payload).as_deref(),
            trace_id = %trace.trace_id_hex(),
            sequence = published.sequence,
            duplicate = published.duplicate,
            "message published"
        );
        Ok(published)
    }

    /// Publishes bytes with headers and an explicit message id (dead letters, re-drives).
    pub async fn publish_raw(
        &self,
        subject: String,
        msg_id: String,
        headers: HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<Published, PublishError> {
        let fail = |e: &dyn std::fmt::Display| PublishError {
            subject: subject.clone(),
            reason: e.to_string(),
        };
        let ack = self
            .js
            .send_publish(
                subject.clone(),
                PublishMessage::build()
                    .payload(payload)
                    .headers(headers)
                    .message_id(msg_id),
            )
            .await
            .map_err(|e| fail(&e))?
            .await
            .map_err(|e| fail(&e))?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Ping {
        n: u32,
    }

    impl Message for Ping {
        const TYPE: &'static str = "test.ping";
        const VERSION: u32 = 1;
        fn subject(&self) -> String {
            "test.ping".into()
        }
        fn message_id(&self) -> String {
            format!("ping:{}", self.n)
        }
    }

    #[test]
    fn an_envelope_round_trips_and_its_id_is_deterministic() {
        let a = Envelope::<Ping>::new(Ping { n: 7 }, "corr");
        let b = Envelope::<Ping>::new(Ping { n: 7 }, "other");
        assert_eq!(a.id, b.id);
        let bytes = serde_json::to_vec(&a).expect("encode");
        let back = decode::<Ping>(&bytes).expect("decode");
        assert_eq!(back.data, Ping { n: 7 });
        assert_eq!(back.correlation_id, "corr");
        assert_eq!(peek_type(&bytes).as_deref(), Some("test.ping"));
    }

    #[test]
    fn poison_payloads_are_told_apart() {
        assert!(matches!(
            decode::<Ping>(b"not json"),
            Err(DecodeError::Envelope(_))
        ));
        let wrong_type = serde_json::json!({"id": Uuid::nil(), "type": "x", "version": 1,
            "occurred_at": "2024-01-01T00:00:00Z", "correlation_id": "c", "data": {"n": 1}});
        assert!(matches!(
            decode::<Ping>(wrong_type.to_string().as_bytes()),
            Err(DecodeError::Type { .. })
        ));
        let wrong_version = serde_json::json!({"id": Uuid::nil(), "type": "test.ping", "version": 9,
            "occurred_at": "2024-01-01T00:00:00Z", "correlation_id": "c", "data": {"n": 1}});
        assert!(matches!(
            decode::<Ping>(wrong_version.to_string().as_bytes()),
            Err(DecodeError::Version { .. })
        ));
        let bad_data = serde_json::json!({"id": Uuid::nil(), "type": "test.ping", "version": 1,
            "occurred_at": "2024-01-01T00:00:00Z", "correlation_id": "c", "data": {"n": -1}});
        assert!(matches!(
            decode::<Ping>(bad_data.to_string().as_bytes()),
            Err(DecodeError::Data { .. })
        ));
    }

    #[test]
    fn namespaces_prefix_subjects_and_names() {
        let ns = Namespace::new("t1");
        assert_eq!(ns.subject("orders.cmd.place"), "t1.orders.cmd.place");
        assert_eq!(ns.relative("t1.orders.cmd.place"), "orders.cmd.place");
        assert_eq!(ns.name("ORDERS_CMD"), "t1_ORDERS_CMD");
        let none = Namespace::default();
        assert_eq!(none.subject("a.b"), "a.b");
        assert_eq!(none.name("X"), "X");
    }
}
