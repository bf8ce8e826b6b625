//! The generic consumer loop for durable pull consumers.
//!
//! It keeps pull requests outstanding ([`pull`]) and takes the messages in chunks of those
//! already received, one chunk at a time: the messages that arrive while a chunk is handled
//! make up the next one, so chunks grow with the load by themselves, and a message arriving
//! alone is handled at once. A consumer whose messages need no order among themselves may
//! handle a second small chunk beside the first ([`LoopOptions::chunks_in_flight`]). Each
//! message's envelope is read once, here. The messages of a chunk are grouped by their handler
//! ([`Handler::group`]) and each group is handled in one call, all groups concurrently. Each
//! message is then settled by its own result:
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
//! On shutdown it stops asking for messages, handles and settles what its requests still
//! bring, and returns.

mod delivery;
mod options;
pub(crate) mod pull;
pub(crate) mod settle;

pub use delivery::{Delivery, Failure, Handled, Handler};
pub use options::LoopOptions;
pub use pull::PullOptions;

use async_nats::jetstream::{self, consumer::PullConsumer};
use common::correlation::CorrelationId;
use common::messages::is_reply_subject;
use common::messaging::{Bus, CORRELATION_HEADER, OUTCOME_REPLY_HEADER, RawEnvelope};
use settle::{Origin, subject_label};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Below this many messages in hand, a chunk is small: another may be handled beside it.
const SMALL_CHUNK: usize = 8;

/// A running consumer: a durable pull consumer, a handler, and where dead letters go.
pub struct ConsumerLoop<H> {
    name: String,
    consumer: PullConsumer,
    bus: Bus,
    handler: Arc<H>,
    options: LoopOptions,
}

/// A received message waiting for its result, to be settled.
struct InHand {
    message: jetstream::Message,
    stream: String,
    sequence: u64,
    delivered: i64,
    subject: String,
    correlation_id: CorrelationId,
    span: tracing::Span,
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

    /// Runs until `shutdown` is cancelled; what the pull requests already sent bring is
    /// handled and settled first.
    pub async fn run(self, shutdown: CancellationToken) {
        let name = self.name.as_str();
        let mut puller = loop {
            match pull::Puller::new(
                name,
                &self.consumer,
                self.bus.jetstream().clone(),
                self.options.pull,
            )
            .await
            {
                Ok(puller) => break puller,
                Err(e) => {
                    tracing::warn!(consumer = name, error = %e, "cannot subscribe for pulls; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(self.options.min_retry_delay) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        };
        tracing::info!(consumer = name, "consumer started");
        let name = self.name.clone();
        let this = Arc::new(self);
        // Each chunk being handled gives back its size once settled.
        let mut handling = tokio::task::JoinSet::new();
        // Messages of the chunks being handled.
        let mut in_hand = 0;
        let mut draining = false;
        loop {
            // Another chunk only with room for it, so no message waits in hand for a slot.
            while !handling.is_empty() && !this.room_beside(handling.len(), in_hand) {
                tokio::select! {
                    settled = handling.join_next() => {
                        in_hand -= settled.and_then(Result::ok).unwrap_or(0);
                    }
                    _ = shutdown.cancelled(), if !draining => {
                        puller.drain();
                        draining = true;
                    }
                }
            }
            let chunk = tokio::select! {
                chunk = puller.next_chunk(this.options.chunk) => chunk,
                _ = shutdown.cancelled(), if !draining => {
                    puller.drain();
                    draining = true;
                    continue;
                }
            };
            if chunk.is_empty() {
                break;
            }
            let size = chunk.len();
            in_hand += size;
            let this = Arc::clone(&this);
            handling.spawn(async move {
                this.process_chunk(chunk).await;
                size
            });
            while let Some(settled) = handling.try_join_next() {
                in_hand -= settled.unwrap_or(0);
            }
        }
        while handling.join_next().await.is_some() {}
        tracing::info!(consumer = %name, "consumer drained and stopped");
    }

    /// Whether a chunk may be handled beside the `handling` ones, which hold `in_hand`
    /// messages: up to [`LoopOptions::chunks_in_flight`], and only while those are small. At
    /// low load this overlaps one chunk's transaction with the last one's announcements; under
    /// load the chunks grow instead, and one transaction for many messages costs PostgreSQL
    /// less per message than two for half as many.
    fn room_beside(&self, handling: usize, in_hand: usize) -> bool {
        handling < self.options.chunks_in_flight && in_hand < SMALL_CHUNK
    }

    /// Reads each message's metadata and envelope, groups the messages by handler, handles
    /// every group concurrently and settles each message by its result.
    async fn process_chunk(&self, messages: Vec<jetstream::Message>) {
        let started = Instant::now();
        let mut groups: Vec<(&'static str, Vec<Delivery>, Vec<InHand>)> = Vec::new();
        let mut refused = Vec::new();
        for message in messages {
            let Some((delivery, in_hand)) = self.receive(message) else {
                continue;
            };
            match delivery.and_then(|d| self.handler.group(&d).map(|g| (g, d))) {
                Ok((group, delivery)) => match groups.iter_mut().find(|(g, ..)| *g == group) {
                    Some((_, deliveries, held)) => {
                        deliveries.push(delivery);
                        held.push(in_hand);
                    }
                    None => groups.push((group, vec![delivery], vec![in_hand])),
                },
                Err(failure) => refused.push(self.settle(in_hand, Err(failure), started)),
            }
        }
        let handled = groups
            .into_iter()
            .map(|(group, deliveries, held)| self.process_group(group, deliveries, held, started));
        futures::future::join(
            futures::future::join_all(refused),
            futures::future::join_all(handled),
        )
        .await;
    }

    async fn process_group(
        &self,
        group: &'static str,
        deliveries: Vec<Delivery>,
        held: Vec<InHand>,
        started: Instant,
    ) {
        let size = deliveries.len();
        metrics::histogram!("message_batch_size", "consumer" => self.name.clone(), "group" => group)
            .record(size as f64);
        let handler = Arc::clone(&self.handler);
        let span = tracing::info_span!("batch", consumer = %self.name, group, size);
        let work = async move { handler.handle(group, deliveries).await };
        let results: Vec<Handled> = match self.guarded(work.instrument(span)).await {
            Ok(results) if results.len() == size => results,
            Ok(results) => {
                let reason = format!("handler gave {} results for {size} messages", results.len());
                tracing::error!(consumer = %self.name, group, "{reason}");
                (0..size)
                    .map(|_| Err(Failure::transient(&reason)))
                    .collect()
            }
            Err(failure) => (0..size).map(|_| Err(failure.shared())).collect(),
        };
        futures::future::join_all(
            held.into_iter()
                .zip(results)
                .map(|(in_hand, result)| self.settle(in_hand, result, started)),
        )
        .await;
    }

    /// Reads a message's metadata, prepares its span and trace context, and reads its
    /// envelope (an undecodable one is a permanent failure). `None` for a message without
    /// JetStream metadata, which cannot be acknowledged either.
    fn receive(&self, message: jetstream::Message) -> Option<(Result<Delivery, Failure>, InHand)> {
        let (delivered, sequence, stream) = match message.info() {
            Ok(info) => (info.delivered, info.stream_sequence, info.stream.to_owned()),
            Err(e) => {
                tracing::error!(consumer = %self.name, error = %e, "message without JetStream metadata");
                return None;
            }
        };
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let subject = self.bus.namespace().relative(&message.subject).to_owned();
        // The handler runs in a child of the publisher's trace context, so whatever it
        // publishes continues the same trace.
        let parent = common::trace::from_nats(message.headers.as_ref());
        let envelope = RawEnvelope::parse(&message.payload);
        // An id outside the bound is replaced by a digest of it, never passed on, and the
        // message is handled all the same; a message without one gets one derived from its
        // place in the stream, the same on every delivery.
        let raw_correlation = header(CORRELATION_HEADER)
            .or_else(|| envelope.as_ref().ok().map(|e| e.correlation_id.clone()))
            .filter(|id| !id.is_empty());
        let correlation_id = match &raw_correlation {
            Some(raw) => CorrelationId::bounded(raw),
            None => CorrelationId::bounded(&format!("{stream}:{sequence}")),
        };
        if raw_correlation.is_some_and(|raw| raw != correlation_id.as_str()) {
            tracing::debug!(consumer = %self.name, %correlation_id, "correlation id out of bounds replaced");
        }
        let span = tracing::info_span!(
            "message",
            consumer = %self.name,
            subject = %subject,
            correlation_id = %correlation_id,
            order_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            delivered,
            stream_sequence = sequence,
        );
        let trace = common::trace::continue_in(&span, &parent);
        if let Some(trace_id) = common::trace::trace_id(&trace) {
            span.record("trace_id", trace_id);
        }
        let reply_to = header(OUTCOME_REPLY_HEADER).filter(|s| is_reply_subject(s));
        let delivery = envelope
            .map(|envelope| Delivery {
                subject: subject.clone(),
                envelope,
                delivered,
                stream_sequence: sequence,
                correlation_id: correlation_id.clone(),
                trace,
                span: span.clone(),
                reply_to,
            })
            .map_err(Failure::from);
        let in_hand = InHand {
            message,
            stream,
            sequence,
            delivered,
            subject,
            correlation_id,
            span,
        };
        Some((delivery, in_hand))
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
            Ok(Err(join)) => Err(Failure::transient(format!("handler panicked: {join}"))),
            Err(_) => {
                // Dropping the work rolls back its transaction; what it published carries
                // message ids, so the retry's publishes are dropped as duplicates.
                task.abort();
                Err(Failure::transient(format!(
                    "handler did not finish within {:?}",
                    self.options.handler_timeout
                )))
            }
        }
    }

    /// Settles a message by its result, and counts it.
    async fn settle(&self, in_hand: InHand, result: Handled, started: Instant) {
        let InHand {
            message,
            stream,
            sequence,
            delivered,
            subject,
            correlation_id,
            span,
        } = in_hand;
        async {
            let label = subject_label(&subject);
            let labels = [("consumer", self.name.clone()), ("subject", label.clone())];
            if delivered > 1 {
                metrics::counter!("message_redeliveries_total", &labels).increment(1);
            }
            metrics::histogram!("message_processing_seconds", &labels)
                .record(started.elapsed().as_secs_f64());
            let origin = Origin {
                consumer: &self.name,
                stream: &stream,
                sequence,
                delivered,
                correlation_id: &correlation_id,
            };
            let outcome = settle::settle(&self.bus, &self.options, &message, origin, result).await;
            tracing::debug!(
                outcome,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "message handled"
            );
            metrics::counter!(
                "messages_processed_total",
                "consumer" => self.name.clone(),
                "subject" => label,
                "outcome" => outcome,
            )
            .increment(1);
        }
        .instrument(span)
        .await;
    }
}
