//! The delivery loop: takes tickets from `WEBHOOKS` (its own durable consumer) and runs each in
//! a task of its own, so an endpoint that answers slowly or not at all holds up only its own
//! deliveries ([`Limiter`]). A ticket whose delivery is pending again is negatively
//! acknowledged with the wait until its next attempt, so the schedule lives in JetStream: a
//! worker that stops, or crashes, loses no retry; the next one gets each ticket when it is due.
//!
//! On shutdown it stops asking for tickets, lets the attempts in hand finish and settles them.

use super::attempt::{Attempter, Next};
use super::limiter::Limiter;
use crate::consumer::LoopOptions;
use crate::consumer::PullOptions;
use crate::consumer::pull::Puller;
use crate::consumer::settle::{Origin, dead_letter};
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use common::correlation::CorrelationId;
use common::messaging::{Bus, CORRELATION_HEADER, RawEnvelope};
use common::webhooks::AttemptDelivery;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Tickets in hand at once, across all endpoints.
pub const MAX_IN_HAND: usize = 1024;

pub struct Deliverer {
    pub name: String,
    pub consumer: PullConsumer,
    pub bus: Bus,
    pub attempter: Arc<Attempter>,
    pub limiter: Arc<Limiter>,
}

impl Deliverer {
    pub async fn run(self, shutdown: CancellationToken) {
        let options = PullOptions {
            batch: 64,
            expires: Duration::from_secs(2),
            heartbeat: Duration::from_millis(250),
        };
        let mut puller = loop {
            match Puller::new(
                &self.name,
                &self.consumer,
                self.bus.jetstream().clone(),
                options,
            )
            .await
            {
                Ok(puller) => break puller,
                Err(e) => {
                    tracing::warn!(consumer = %self.name, error = %e, "cannot subscribe for pulls; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        };
        tracing::info!(consumer = %self.name, "webhook deliveries started");
        let room = Arc::new(Semaphore::new(MAX_IN_HAND));
        let this = Arc::new(self);
        let mut attempts = JoinSet::new();
        let mut draining = false;
        loop {
            let chunk = tokio::select! {
                // Not raced against anything but shutdown: a chunk cut short would lose the
                // tickets it had taken (until their ack wait).
                chunk = puller.next_chunk(options.batch) => chunk,
                () = shutdown.cancelled(), if !draining => {
                    puller.drain();
                    draining = true;
                    continue;
                }
            };
            if chunk.is_empty() {
                break;
            }
            for message in chunk {
                // Past the bound, the next tickets wait in the server, not here.
                let Ok(permit) = Arc::clone(&room).acquire_owned().await else {
                    break;
                };
                let this = Arc::clone(&this);
                attempts.spawn(async move {
                    this.handle(message).await;
                    drop(permit);
                });
            }
            // Finished attempts are reaped as they come, so the set holds only live ones.
            while attempts.try_join_next().is_some() {}
        }
        while attempts.join_next().await.is_some() {}
        tracing::info!(consumer = %this.name, "webhook deliveries drained and stopped");
    }

    /// Decodes a ticket, waits for its endpoint's turn, attempts it and settles the message.
    async fn handle(&self, message: jetstream::Message) {
        let ticket = RawEnvelope::parse(&message.payload)
            .map_err(|e| e.to_string())
            .and_then(|envelope| {
                envelope
                    .data_as::<AttemptDelivery>()
                    .map_err(|e| e.to_string())
            });
        let ticket = match ticket {
            Ok(ticket) => ticket,
            Err(reason) => return self.refuse(&message, &reason).await,
        };
        let span = tracing::info_span!("webhook", delivery_id = %ticket.delivery_id);
        let next = async {
            let turn = match self.limiter.enter(ticket.endpoint_id) {
                Ok(turn) => turn,
                Err(wait) => {
                    metrics::counter!("webhook_tickets_deferred_total").increment(1);
                    return Next::Again(wait);
                }
            };
            let _slot = match turn.slot().await {
                Ok(slot) => slot,
                Err(wait) => {
                    metrics::counter!("webhook_tickets_deferred_total").increment(1);
                    return Next::Again(wait);
                }
            };
            self.attempter
                .attempt(&ticket, |took| turn.took(took))
                .await
        }
        .instrument(span)
        .await;
        let settled = match next {
            Next::Done => message.ack().await,
            Next::Again(wait) => message.ack_with(AckKind::Nak(Some(wait))).await,
        };
        if let Err(e) = settled {
            // Unsettled, the ticket comes again after its ack wait; attempts are never early.
            tracing::warn!(error = %e, "webhook ticket not settled");
        }
    }

    /// A message that is no ticket: dead-lettered with the reason, never retried.
    async fn refuse(&self, message: &jetstream::Message, reason: &str) {
        let (stream, sequence, delivered) = match message.info() {
            Ok(info) => (info.stream.to_owned(), info.stream_sequence, info.delivered),
            Err(_) => (String::new(), 0, 1),
        };
        let correlation_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(CORRELATION_HEADER))
            .map_or_else(
                || CorrelationId::bounded(&format!("{stream}:{sequence}")),
                |raw| CorrelationId::bounded(raw.as_str()),
            );
        let origin = Origin {
            consumer: &self.name,
            stream: &stream,
            sequence,
            delivered,
            correlation_id: &correlation_id,
        };
        dead_letter(&self.bus, &LoopOptions::default(), message, &origin, reason).await;
    }
}
