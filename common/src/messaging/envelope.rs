//! The versioned envelope every message travels in, the headers it carries, and decoding.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Header carrying the correlation id from the HTTP request to every worker step.
pub const CORRELATION_HEADER: &str = "Correlation-Id";
/// Header of a place command naming a core NATS subject to send the order's outcome to at once
/// ([`crate::messages::PlacedOutcome`]), beside its status event. Optional: a command without
/// it, or a worker that does not read it, settles through the event alone.
pub const OUTCOME_REPLY_HEADER: &str = "Outcome-Reply-To";
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

/// A message type: its subject, type name, schema version and deterministic id. Declared with
/// [`message!`](crate::message), so each is written once.
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The subject, relative to the namespace (e.g. `orders.cmd.place`).
    const SUBJECT: &'static str;
    /// The `type` field of the envelope.
    const TYPE: &'static str;
    /// The schema version in the envelope; bumped on incompatible changes.
    const VERSION: u32;
    /// A deterministic id (order id and step), used as `Nats-Msg-Id` so that the server drops a
    /// retried publish inside its duplicate window.
    fn message_id(&self) -> String;
    /// The order the message is about, for log fields and traces.
    fn order_id(&self) -> Option<uuid::Uuid> {
        None
    }
}

/// Implements [`Message`] for a type:
///
/// ```ignore
/// message!(PlaceOrder {
///     subject: "orders.cmd.place",
///     kind: "orders.place",
///     version: 1,
///     id: |m| format!("order:{}:place", m.order_id),
///     order: |m| m.order_id,          // optional
/// });
/// ```
#[macro_export]
macro_rules! message {
    ($ty:ident {
        subject: $subject:literal,
        kind: $kind:literal,
        version: $version:literal,
        id: |$m:ident| $id:expr
        $(, order: |$o:ident| $order:expr)?
        $(,)?
    }) => {
        impl $crate::messaging::Message for $ty {
            const SUBJECT: &'static str = $subject;
            const TYPE: &'static str = $kind;
            const VERSION: u32 = $version;
            fn message_id(&self) -> String {
                let $m = self;
                $id
            }
            $(
                fn order_id(&self) -> Option<$crate::messaging::OrderId> {
                    let $o = self;
                    Some($order)
                }
            )?
        }
    };
}

/// The id type [`Message::order_id`] returns (for [`message!`](crate::message)).
pub type OrderId = uuid::Uuid;

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
    /// `at` names the bad field (`amount: `), empty when the data as a whole is wrong.
    #[error("invalid data for {kind}: {at}{source}")]
    Data {
        kind: &'static str,
        at: String,
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

/// An envelope whose `data` is not decoded yet. The consumer loop reads a delivery's envelope
/// once; the handler its `type` names decodes `data` into its message type with
/// [`RawEnvelope::data_as`].
pub type RawEnvelope = Envelope<Box<RawValue>>;

impl RawEnvelope {
    /// Reads the envelope of a payload, leaving `data` undecoded.
    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(payload).map_err(DecodeError::Envelope)
    }

    /// Decodes `data` as `M`, checking the envelope's type and version.
    pub fn data_as<M: Message>(&self) -> Result<M, DecodeError> {
        if self.kind != M::TYPE {
            return Err(DecodeError::Type {
                expected: M::TYPE,
                found: self.kind.clone(),
            });
        }
        if self.version != M::VERSION {
            return Err(DecodeError::Version {
                kind: M::TYPE,
                found: self.version,
                supported: M::VERSION,
            });
        }
        let de = &mut serde_json::Deserializer::from_str(self.data.get());
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            DecodeError::Data {
                kind: M::TYPE,
                at: if path == "." {
                    String::new()
                } else {
                    format!("{path}: ")
                },
                source: e.into_inner(),
            }
        })
    }
}

/// Decodes a payload into the envelope of `M`, checking type and version.
pub fn decode<M: Message>(payload: &[u8]) -> Result<Envelope<M>, DecodeError> {
    let raw = RawEnvelope::parse(payload)?;
    let data = raw.data_as::<M>()?;
    Ok(Envelope {
        id: raw.id,
        kind: raw.kind,
        version: raw.version,
        occurred_at: raw.occurred_at,
        correlation_id: raw.correlation_id,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Ping {
        n: u32,
    }

    crate::message!(Ping {
        subject: "test.ping",
        kind: "test.ping",
        version: 1,
        id: |m| format!("ping:{}", m.n),
    });

    #[test]
    fn an_envelope_round_trips_and_its_id_is_deterministic() {
        let a = Envelope::<Ping>::new(Ping { n: 7 }, "corr");
        let b = Envelope::<Ping>::new(Ping { n: 7 }, "other");
        assert_eq!(a.id, b.id);
        let bytes = serde_json::to_vec(&a).expect("encode");
        let back = decode::<Ping>(&bytes).expect("decode");
        assert_eq!(back.data, Ping { n: 7 });
        assert_eq!(back.correlation_id, "corr");
        let raw = RawEnvelope::parse(&bytes).expect("envelope");
        assert_eq!(raw.kind, "test.ping");
        assert_eq!(raw.data_as::<Ping>().expect("data"), Ping { n: 7 });
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
}
