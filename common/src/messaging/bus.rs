//! Publishing to JetStream: every message goes out in its envelope, with its deterministic
//! message id, the correlation id and the trace context in its headers, and counts as sent only
//! once JetStream acknowledged it.

use super::envelope::{CORRELATION_HEADER, Envelope, Message, OUTCOME_REPLY_HEADER};
use super::namespace::Namespace;
use crate::correlation::CorrelationId;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};

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
    pub async fn publish<M: Message>(
        &self,
        message: M,
        correlation_id: &CorrelationId,
    ) -> Result<Published, PublishError> {
        self.publish_asking(message, correlation_id, None).await
    }

    /// [`Bus::publish`], naming in [`OUTCOME_REPLY_HEADER`] where its handler may send the
    /// outcome at once (core NATS), when `reply_to` is given.
    #[tracing::instrument(skip_all, fields(subject, msg_id, correlation_id = %correlation_id))]
    pub async fn publish_asking<M: Message>(
        &self,
        message: M,
        correlation_id: &CorrelationId,
        reply_to: Option<&str>,
    ) -> Result<Published, PublishError> {
        let subject = self.ns.subject(M::SUBJECT);
        let msg_id = message.message_id();
        let order_id = message.order_id();
        tracing::Span::current().record("subject", subject.as_str());
        tracing::Span::current().record("msg_id", msg_id.as_str());
        let envelope = Envelope::<M>::new(message, correlation_id.as_str());
        let payload = serde_json::to_vec(&envelope).map_err(|e| PublishError {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CORRELATION_HEADER, correlation_id.as_str());
        if let Some(reply_to) = reply_to {
            headers.insert(OUTCOME_REPLY_HEADER, reply_to);
        }
        let trace = crate::trace::for_outgoing();
        crate::trace::inject_nats(&trace, &mut headers);
        let payload = bytes::Bytes::from(payload);
        let published = self
            .publish_raw(subject, msg_id, headers, payload.clone())
            .await?;
        // One line per message is too many for INFO at a thousand orders a second; failures
        // are logged where they happen, and `common::messaging=debug` shows every publish.
        tracing::debug!(
            order_id = order_id.map(tracing::field::display),
            trace_id = crate::trace::trace_id(&trace).map(tracing::field::display),
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
