//! Settling a handled message by its result: ack, nak with a delay, or dead-letter.

use super::delivery::{Failure, Handled};
use super::options::LoopOptions;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use backon::{BackoffBuilder, ExponentialBuilder};
use common::correlation::CorrelationId;
use common::messaging::{
    Bus, CORRELATION_HEADER, DLQ_DELIVERIES_HEADER, DLQ_REASON_HEADER, DLQ_SEQUENCE_HEADER,
    DLQ_STREAM_HEADER, DLQ_SUBJECT_HEADER,
};
use std::time::Duration;

/// Where a settled message came from, for its dead letter.
pub(crate) struct Origin<'a> {
    pub consumer: &'a str,
    pub stream: &'a str,
    pub sequence: u64,
    pub delivered: i64,
    /// The message's correlation id within the bound, which the dead letter carries.
    pub correlation_id: &'a CorrelationId,
}

/// Acks, naks or dead-letters `message`; returns the `outcome` label of the metrics.
pub(super) async fn settle(
    bus: &Bus,
    options: &LoopOptions,
    message: &jetstream::Message,
    origin: Origin<'_>,
    result: Handled,
) -> &'static str {
    match result {
        Ok(()) => {
            if let Err(e) = message.ack().await {
                // The effects are committed; a redelivery will find them applied.
                tracing::warn!(error = %e, "ack not sent, the message will be redelivered");
            }
            "ok"
        }
        Err(Failure::Transient(e)) if origin.delivered < options.max_deliver => {
            let delay = retry_delay(options, origin.delivered);
            tracing::warn!(error.cause_chain = %format!("{e:#}"), retry_in = ?delay, "transient failure, will retry");
            if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(error = %e, "nak failed, the message redelivers after its ack wait");
            }
            "retry"
        }
        Err(failure) => {
            let reason = match failure {
                Failure::Permanent(reason) => reason,
                Failure::Transient(e) => {
                    format!("gave up after {} deliveries: {e:#}", origin.delivered)
                }
            };
            dead_letter(bus, options, message, &origin, &reason).await
        }
    }
}

/// Copies the message to `dlq.<subject>` with the reason, then terminates it. If the copy
/// is not acknowledged the message is retried instead, so it is never lost.
pub(crate) async fn dead_letter(
    bus: &Bus,
    options: &LoopOptions,
    message: &jetstream::Message,
    origin: &Origin<'_>,
    reason: &str,
) -> &'static str {
    let relative = bus.namespace().relative(&message.subject).to_owned();
    // Keep the application headers (trace context); the server's own `Nats-*` headers
    // (message id, expectations) must not apply to the copy, and the correlation id is the
    // bounded one the message was handled under.
    let mut headers = HeaderMap::new();
    headers.insert(CORRELATION_HEADER, origin.correlation_id.as_str());
    if let Some(original) = &message.headers {
        for (name, values) in original.iter() {
            let name = name.to_string();
            if name.starts_with("Nats-") || name.eq_ignore_ascii_case(CORRELATION_HEADER) {
                continue;
            }
            for value in values {
                headers.append(name.as_str(), value.as_str());
            }
        }
    }
    headers.insert(DLQ_REASON_HEADER, truncate(reason, 2000));
    headers.insert(DLQ_SUBJECT_HEADER, relative.as_str());
    headers.insert(DLQ_DELIVERIES_HEADER, origin.delivered.to_string().as_str());
    headers.insert(DLQ_STREAM_HEADER, origin.stream);
    headers.insert(DLQ_SEQUENCE_HEADER, origin.sequence.to_string().as_str());
    let subject = bus.namespace().subject(&format!("dlq.{relative}"));
    let msg_id = format!("dlq:{}:{}", origin.stream, origin.sequence);
    match bus
        .publish_raw(subject, msg_id, headers, message.payload.clone())
        .await
    {
        Ok(_) => {
            tracing::error!(reason, "message dead-lettered");
            metrics::counter!(
                "dead_letters_total",
                "consumer" => origin.consumer.to_owned(),
                "subject" => subject_label(&relative),
            )
            .increment(1);
            if let Err(e) = message.ack_with(AckKind::Term).await {
                tracing::warn!(error = %e, "term failed; the dead letter is recorded, a redelivery will record it once more at most");
            }
            "dead_letter"
        }
        Err(e) => {
            tracing::error!(error = %e, reason, "dead letter not stored, retrying the message");
            if let Err(e) = message
                .ack_with(AckKind::Nak(Some(options.max_retry_delay)))
                .await
            {
                tracing::warn!(error = %e, "nak failed");
            }
            "retry"
        }
    }
}

/// The `subject` label of a message: outside publishers (a payment provider) may use any
/// subject under their prefix, so unknown ones share the label `other` and cannot grow the
/// number of series without bound.
pub(super) fn subject_label(subject: &str) -> String {
    if common::messages::SUBJECTS.contains(&subject) {
        subject.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Exponential delay with jitter for the `attempt`-th failure (1-based).
pub(super) fn retry_delay(options: &LoopOptions, attempt: i64) -> Duration {
    let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0);
    ExponentialBuilder::default()
        .with_min_delay(options.min_retry_delay)
        .with_max_delay(options.max_retry_delay)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(index)
        .unwrap_or(options.max_retry_delay)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_are_capped() {
        let o = LoopOptions {
            min_retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(2),
            ..LoopOptions::default()
        };
        assert!(retry_delay(&o, 1) < Duration::from_millis(250));
        assert!(retry_delay(&o, 4) >= Duration::from_millis(800));
        assert!(retry_delay(&o, 50) <= Duration::from_secs(4));
    }

    #[test]
    fn unknown_subjects_share_one_metric_label() {
        assert_eq!(subject_label("orders.cmd.place"), "orders.cmd.place");
        assert_eq!(subject_label("payments.evt.x1234"), "other");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
