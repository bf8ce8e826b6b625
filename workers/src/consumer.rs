//! The generic consumer loop for durable pull consumers.
//!
//! It fetches in batches and takes the messages as they arrive, in chunks of those already
//! received. A message whose handler groups it ([`Handler::batch_group`]) is handled together
//! with the rest of its group in the chunk (one transaction for many messages); any other
//! message is handled on its own, concurrently with the rest. Each message is settled by its
//! own outcome:
//!
//! * success: acknowledged only after the handler returned, i.e. after its transaction
//!   committed and its follow-up messages were acknowledged by the server. The ack itself is
//!   not confirmed (no double ack): should it be lost, the message is redelivered after its
//!   ack wait and the idempotent handler finds its effects already there;
//! * transient failure (database down, lock timeout): negatively acknowledged with an
//!   exponential delay, so the server redelivers it later;
//! * permanent failure (undecodable, unknown order), a panic that keeps recurring, or a
//!   transient failure on its last allowed delivery: copied to the dead-letter stream with the
//!   reason, then terminated. A message is never retried forever and never silently dropped.
//!
//! On shutdown it stops fetching, finishes and settles the batch in hand, and returns.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use common::messaging::{
    Bus, CORRELATION_HEADER, DLQ_DELIVERIES_HEADER, DLQ_REASON_HEADER, DLQ_SEQUENCE_HEADER,
    DLQ_STREAM_HEADER, DLQ_SUBJECT_HEADER,
};
use common::trace::{TRACEPARENT_HEADER, TraceContext};
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// One delivered message, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Subject relative to the namespace, e.g. `orders.cmd.place`.
    pub subject: String,
    pub payload: Bytes,
    pub headers: Option<HeaderMap>,
    /// How many times the server has delivered it (1 on first delivery).
    pub delivered: i64,
    pub stream_sequence: u64,
    pub correlation_id: String,
    /// The context of the message's handling, child of the publisher's: what a handler
    /// publishes for this message continues the same trace (see [`TraceContext::scope`]).
    pub trace: TraceContext,
}

/// Why a handler did not succeed.
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

    /// The same failure again, for another message that shares its outcome.
    pub fn duplicate(&self) -> Self {
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
            _ => Failure::Transient(anyhow::Error::new(e)),
        }
    }
}

impl From<common::messaging::DecodeError> for Failure {
    fn from(e: common::messaging::DecodeError) -> Self {
        Failure::Permanent(e.to_string())
    }
}

impl From<common::messaging::PublishError> for Failure {
    fn from(e: common::messaging::PublishError) -> Self {
        Failure::Transient(anyhow::Error::new(e))
    }
}

/// Processes messages. Implementations must be idempotent: a message may arrive again after a
/// crash between commit and ack.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message.
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), Failure>> + Send;

    /// The group a message is handled in, if it is handled together with others of its group
    /// by [`Handler::handle_batch`]; `None` (the default) handles it on its own.
    fn batch_group(&self, _delivery: &Delivery) -> Option<&'static str> {
        None
    }

    /// Handles messages of one group together; one outcome per delivery, in their order.
    /// The default handles them one after the other.
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl Future<Output = Vec<Result<(), Failure>>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                outcomes.push(self.handle(delivery).await);
            }
            outcomes
        }
    }
}

/// A fetched message, ready to be handled and then settled.
struct Received {
    message: jetstream::Message,
    delivery: Delivery,
    stream: String,
    span: tracing::Span,
    subject_label: String,
}

/// Tuning of one consumer loop.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// Messages requested per pull.
    pub pull: usize,
    /// The most messages in one chunk, and so in one group handled together.
    pub batch: usize,
    /// Chunks of received messages in hand at once. With one, the messages that arrive while a
    /// chunk is handled make up the next one, so groups grow with the load by themselves
    /// (and a message arriving alone is handled at once).
    pub concurrency: usize,
    /// The longest a handler may take before its messages are retried (below the consumer's
    /// ack wait, so the server does not hand them to another worker meanwhile).
    pub handler_timeout: Duration,
    /// How long one pull waits for messages; bounds how long shutdown takes to notice.
    pub fetch_expiry: Duration,
    /// Must match the consumer's `max_deliver`: the last delivery of a failing message is
    /// dead-lettered instead of retried.
    pub max_deliver: i64,
    /// First and longest redelivery delay after a transient failure.
    pub min_retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            pull: 256,
            batch: 64,
            concurrency: 1,
            handler_timeout: Duration::from_secs(20),
            fetch_expiry: Duration::from_secs(1),
            max_deliver: 10,
            min_retry_delay: Duration::from_millis(250),
            max_retry_delay: Duration::from_secs(30),
        }
    }
}

/// A running consumer: a durable pull consumer, a handler, and where dead letters go.
pub struct ConsumerLoop<H> {
    name: String,
    consumer: PullConsumer,
    bus: Bus,
    handler: Arc<H>,
    options: LoopOptions,
}

impl<H: Handler> ConsumerLoop<H> {
    pub fn new(
        name: impl Into<String>,
        consumer: PullConsumer,
        bus: Bus,
        handler: H,
        options: LoopOptions,
    ) -> Self {
        ConsumerLoop {
            name: name.into(),
            consumer,
            bus,
            handler: Arc::new(handler),
            options,
        }
    }

    /// The durable name (without namespace) and the consumer, for lag sampling.
    pub fn watch(&self) -> (String, PullConsumer) {
        (self.name.clone(), self.consumer.clone())
    }

    /// Runs until `shutdown` is cancelled; the batch in hand is finished and settled first.
    pub async fn run(self, shutdown: CancellationToken) {
        let name = self.name.as_str();
        tracing::info!(consumer = name, "consumer started");
        let mut pull_failures: usize = 0;
        while !shutdown.is_cancelled() {
            let batch = tokio::select! {
                batch = self
                    .consumer
                    .batch()
                    .max_messages(self.options.pull)
                    .expires(self.options.fetch_expiry)
                    .messages() => batch,
                _ = shutdown.cancelled() => break,
            };
            let messages = match batch {
                Ok(messages) => {
                    pull_failures = 0;
                    messages
                }
                Err(e) => {
                    pull_failures += 1;
                    let delay = retry_delay(
                        &self.options,
                        i64::try_from(pull_failures).unwrap_or(i64::MAX),
                    );
                    tracing::warn!(consumer = name, error = %e, retry_in = ?delay, "pull failed");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = shutdown.cancelled() => break,
                    }
                }
            };
            // Messages already pulled are always processed, even during shutdown: leaving
            // them would delay them by a whole ack wait.
            messages
                .ready_chunks(self.options.batch)
                .for_each_concurrent(self.options.concurrency, |chunk| async {
                    let received = chunk
                        .into_iter()
                        .filter_map(|message| match message {
                            Ok(message) => self.receive(message),
                            Err(e) => {
                                tracing::debug!(consumer = name, error = %e, "pull ended");
                                None
                            }
                        })
                        .collect();
                    self.process_chunk(received).await;
                })
                .await;
        }
        tracing::info!(consumer = name, "consumer drained and stopped");
    }

    /// Reads a message's metadata and prepares its span and trace context.
    fn receive(&self, message: jetstream::Message) -> Option<Received> {
        let (delivered, stream_sequence, stream) = match message.info() {
            Ok(info) => (info.delivered, info.stream_sequence, info.stream.to_owned()),
            Err(e) => {
                tracing::error!(consumer = %self.name, error = %e, "message without JetStream metadata");
                return None;
            }
        };
        let correlation_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(CORRELATION_HEADER))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let subject = self.bus.namespace().relative(&message.subject).to_owned();
        // The handler runs in a child of the publisher's trace context, so whatever it
        // publishes continues the same trace.
        let parent = TraceContext::parent_of_incoming(
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(TRACEPARENT_HEADER))
                .map(|v| v.as_str()),
        );
        let order_id = common::trace::order_id_in(&message.payload);
        let span = tracing::info_span!(
            "message",
            consumer = %self.name,
            subject = %subject,
            correlation_id = %correlation_id,
            order_id = order_id.as_deref(),
            trace_id = %parent.trace_id_hex(),
            delivered,
            stream_sequence,
        );
        let trace = TraceContext::continue_in(&span, &parent);
        Some(Received {
            subject_label: subject_label(&subject),
            delivery: Delivery {
                subject,
                payload: message.payload.clone(),
                headers: message.headers.clone(),
                delivered,
                stream_sequence,
                correlation_id,
                trace,
            },
            message,
            stream,
            span,
        })
    }

    /// Handles a chunk of received messages: each group together, the rest one by one, all
    /// concurrently; then settles each message by its outcome.
    async fn process_chunk(&self, received: Vec<Received>) {
        let mut singles = Vec::new();
        let mut groups: Vec<(&'static str, Vec<Received>)> = Vec::new();
        for r in received {
            match self.handler.batch_group(&r.delivery) {
                None => singles.push(r),
                Some(group) => match groups.iter_mut().find(|(g, _)| *g == group) {
                    Some((_, members)) => members.push(r),
                    None => groups.push((group, vec![r])),
                },
            }
        }
        futures::future::join(
            futures::future::join_all(singles.into_iter().map(|r| self.process_one(r))),
            futures::future::join_all(
                groups
                    .into_iter()
                    .map(|(group, members)| self.process_group(group, members)),
            ),
        )
        .await;
    }

    async fn process_one(&self, received: Received) {
        let started = Instant::now();
        let delivery = received.delivery.clone();
        let trace = delivery.trace;
        // A panicking handler must not take the loop down with it.
        let handler = Arc::clone(&self.handler);
        let work = trace.scope(async move { handler.handle(delivery).await });
        let outcome = self
            .guarded(work.instrument(received.span.clone()))
            .await
            .and_then(|outcome| outcome);
        self.settle(received, outcome, started).await;
    }

    async fn process_group(&self, group: &'static str, members: Vec<Received>) {
        let started = Instant::now();
        let size = members.len();
        let deliveries: Vec<Delivery> = members.iter().map(|r| r.delivery.clone()).collect();
        let handler = Arc::clone(&self.handler);
        let span = tracing::info_span!("batch", consumer = %self.name, group, size);
        let work = async move { handler.handle_batch(deliveries).await };
        let outcomes: Vec<Result<(), Failure>> = match self.guarded(work.instrument(span)).await {
            Ok(outcomes) if outcomes.len() == size => outcomes,
            Ok(outcomes) => {
                let reason = format!(
                    "batch handler gave {} outcomes for {size} messages",
                    outcomes.len()
                );
                tracing::error!(consumer = %self.name, group, "{reason}");
                (0..size)
                    .map(|_| Err(Failure::Transient(anyhow::anyhow!(reason.clone()))))
                    .collect()
            }
            Err(failure) => {
                let reason = failure.to_string();
                (0..size)
                    .map(|_| Err(Failure::Transient(anyhow::anyhow!(reason.clone()))))
                    .collect()
            }
        };
        metrics::histogram!("message_batch_size", "consumer" => self.name.clone(), "group" => group)
            .record(size as f64);
        futures::future::join_all(
            members
                .into_iter()
                .zip(outcomes)
                .map(|(r, outcome)| self.settle(r, outcome, started)),
        )
        .await;
    }

    /// Runs handler work in its own task, so that a panic does not take the loop down with it
    /// and work stuck past `handler_timeout` is abandoned; either is a transient failure.
    async fn guarded<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Failure> {
        let mut task = tokio::spawn(work);
        match tokio::time::timeout(self.options.handler_timeout, &mut task).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(join)) => Err(Failure::Transient(anyhow::anyhow!(
                "handler panicked: {join}"
            ))),
            Err(_) => {
                // Dropping the work rolls back its transaction; what it published carries
                // message ids, so the retry's publishes are dropped as duplicates.
                task.abort();
                Err(Failure::Transient(anyhow::anyhow!(
                    "handler did not finish within {:?}",
                    self.options.handler_timeout
                )))
            }
        }
    }

    /// Acks, naks or dead-letters a message by its handler's outcome, and counts it.
    async fn settle(&self, received: Received, outcome: Result<(), Failure>, started: Instant) {
        let Received {
            message,
            delivery,
            stream,
            span,
            subject_label: subject,
        } = received;
        let delivered = delivery.delivered;
        let stream_sequence = delivery.stream_sequence;
        async {
            let labels = [
                ("consumer", self.name.clone()),
                ("subject", subject.clone()),
            ];
            if delivered > 1 {
                metrics::counter!("message_redeliveries_total", &labels).increment(1);
            }
            metrics::histogram!("message_processing_seconds", &labels)
                .record(started.elapsed().as_secs_f64());
            let result = match outcome {
                Ok(()) => {
                    if let Err(e) = message.ack().await {
                        // The effects are committed; a redelivery will find them applied.
                        tracing::warn!(error = %e, "ack not sent, the message will be redelivered");
                    }
                    "ok"
                }
                Err(Failure::Transient(e)) if delivered < self.options.max_deliver => {
                    let delay = retry_delay(&self.options, delivered);
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "transient failure, will retry");
                    if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                        tracing::warn!(error = %e, "nak failed, the message redelivers after its ack wait");
                    }
                    "retry"
                }
                Err(failure) => {
                    let reason = match failure {
                        Failure::Permanent(reason) => reason,
                        Failure::Transient(e) => {
                            format!("gave up after {delivered} deliveries: {e:#}")
                        }
                    };
                    self.dead_letter(&message, &stream, stream_sequence, delivered, &reason)
                        .await
                }
            };
            tracing::debug!(
                outcome = result,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "message handled"
            );
            metrics::counter!(
                "messages_processed_total",
                "consumer" => self.name.clone(),
                "subject" => subject.clone(),
                "outcome" => result,
            )
            .increment(1);
        }
        .instrument(span)
        .await;
    }

    /// Copies the message to `dlq.<subject>` with the reason, then terminates it. If the copy
    /// is not acknowledged the message is retried instead, so it is never lost.
    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        stream: &str,
        sequence: u64,
        delivered: i64,
        reason: &str,
    ) -> &'static str {
        let relative = self.bus.namespace().relative(&message.subject).to_owned();
        // Keep the application headers (correlation id, trace context); the server's own
        // `Nats-*` headers (message id, expectations) must not apply to the copy.
        let mut headers = HeaderMap::new();
        if let Some(original) = &message.headers {
            for (name, values) in original.iter() {
                let name = name.to_string();
                if name.starts_with("Nats-") {
                    continue;
                }
                for value in values {
                    headers.append(name.as_str(), value.as_str());
                }
            }
        }
        headers.insert(DLQ_REASON_HEADER, truncate(reason, 2000));
        headers.insert(DLQ_SUBJECT_HEADER, relative.as_str());
        headers.insert(DLQ_DELIVERIES_HEADER, delivered.to_string().as_str());
        headers.insert(DLQ_STREAM_HEADER, stream);
        headers.insert(DLQ_SEQUENCE_HEADER, sequence.to_string().as_str());
        let subject = self.bus.namespace().subject(&format!("dlq.{relative}"));
        let msg_id = format!("dlq:{stream}:{sequence}");
        match self
            .bus
            .publish_raw(subject, msg_id, headers, message.payload.clone())
            .await
        {
            Ok(_) => {
                tracing::error!(reason, "message dead-lettered");
                metrics::counter!(
                    "dead_letters_total",
                    "consumer" => self.name.clone(),
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
                let delay = self.options.max_retry_delay;
                if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "nak failed");
                }
                "retry"
            }
        }
    }
}

/// The subjects the workers consume, the only values of the `subject` metric label.
const KNOWN_SUBJECTS: [&str; 10] = [
    "orders.cmd.place",
    "orders.cmd.transition",
    "inventory.cmd.reserve",
    "inventory.cmd.release",
    "inventory.cmd.commit",
    "inventory.evt.reserved",
    "inventory.evt.rejected",
    "orders.evt.status_changed",
    "payments.evt.succeeded",
    "payments.evt.failed",
];

/// The `subject` label of a message: outside publishers (a payment provider) may use any
/// subject under their prefix, so unknown ones share the label `other` and cannot grow the
/// number of series without bound.
fn subject_label(subject: &str) -> String {
    if KNOWN_SUBJECTS.contains(&subject) {
        subject.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Exponential delay with jitter for the `attempt`-th failure (1-based).
fn retry_delay(options: &LoopOptions, attempt: i64) -> Duration {
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
