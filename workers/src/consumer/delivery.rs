//! What the consumer loop hands to a handler, and how a handler says it did not succeed.

use common::correlation::CorrelationId;
use common::messaging::{DecodeError, PublishError, RawEnvelope};
use std::future::Future;

/// One delivered message, its envelope read once by the consumer loop.
#[derive(Debug)]
pub struct Delivery {
    /// Subject relative to the namespace, e.g. `orders.cmd.place`.
    pub subject: String,
    /// The envelope; its `data` is decoded by the handler its `type` names.
    pub envelope: RawEnvelope,
    /// How many times the server has delivered it (1 on first delivery).
    pub delivered: i64,
    pub stream_sequence: u64,
    /// From the `Correlation-Id` header, else the envelope's, within the bound (see
    /// [`common::correlation`]).
    pub correlation_id: CorrelationId,
    /// The context of the message's handling, child of the publisher's: what a handler
    /// publishes for this message continues the same trace (see [`common::trace::scope`]).
    pub trace: common::trace::Context,
    /// The message's log span (`message`); handlers record the order id in it.
    pub span: tracing::Span,
    /// Where to send the outcome at once ([`common::messaging::OUTCOME_REPLY_HEADER`]), when
    /// the publisher named a usable subject.
    pub reply_to: Option<String>,
}

/// Why a message was not handled.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Worth retrying later: the database is down, a lock timed out, a dependency is not there yet.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Can never succeed: the message goes to the dead-letter stream with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl Failure {
    pub fn permanent(reason: impl std::fmt::Display) -> Self {
        Failure::Permanent(reason.to_string())
    }

    pub fn transient(reason: impl std::fmt::Display) -> Self {
        Failure::Transient(anyhow::anyhow!("{reason}"))
    }

    /// The same failure for another message that shares this one's fate (a copy of it, or a
    /// member of the same failed transaction).
    pub fn shared(&self) -> Self {
        match self {
            Failure::Permanent(reason) => Failure::Permanent(reason.clone()),
            Failure::Transient(e) => Failure::Transient(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl From<sqlx::Error> for Failure {
    /// Database errors are transient unless they say the data itself is wrong.
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db)
                if db.is_check_violation() || db.is_foreign_key_violation() =>
            {
                Failure::Permanent(format!("rejected by the database: {db}"))
            }
            // A stored value this code cannot read will not read better next time: a bug or
            // bad data, dead-lettered with its reason (the api answers it 500).
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Failure::Permanent(format!("stored data cannot be read: {e}"))
            }
            _ => Failure::Transient(anyhow::Error::new(e)),
        }
    }
}

impl From<DecodeError> for Failure {
    fn from(e: DecodeError) -> Self {
        Failure::Permanent(e.to_string())
    }
}

impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        Failure::Transient(anyhow::Error::new(e))
    }
}

/// How one message ended: `Ok` once its effects are committed and its follow-up messages
/// acknowledged by JetStream.
pub type Handled = Result<(), Failure>;

/// Processes messages, many at a time. Implementations must be idempotent: a message may
/// arrive again after a crash between commit and ack.
pub trait Handler: Send + Sync + 'static {
    /// The group a delivery is handled in: the deliveries of one group received together are
    /// handed to [`Handler::handle`] in one call. `Err` when no handler here can take it (it
    /// is dead-lettered with that reason).
    fn group(&self, delivery: &Delivery) -> Result<&'static str, Failure>;

    /// Handles deliveries of one group; one result per delivery, in their order. A message
    /// received alone is a group of one: there is no other path.
    fn handle(
        &self,
        group: &'static str,
        deliveries: Vec<Delivery>,
    ) -> impl Future<Output = Vec<Handled>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_value_that_cannot_be_read_is_dead_lettered_not_retried() {
        let failure = Failure::from(sqlx::Error::Decode("unknown variant `LOST`".into()));
        assert!(
            matches!(&failure, Failure::Permanent(reason) if reason.contains("stored data cannot be read")),
            "{failure:?}"
        );
    }

    #[test]
    fn a_broken_connection_is_retried() {
        let failure = Failure::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(failure, Failure::Transient(_)), "{failure:?}");
    }
}
