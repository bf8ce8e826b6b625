//! The bus in tests ([`TestBus`]): messages published directly, as other systems (and
//! redeliveries) publish them, the workers' context for driving handlers by hand, and what the
//! bus holds read back.

use super::TestApp;
use common::correlation::CorrelationId;
use common::messages::OrderStatusChanged;
use common::messaging::{Envelope, Message, Published};
use serde_json::Value;

/// The bus as other systems (and redeliveries) use it: messages published through the api's
/// bus, copied or raw, or with a plain NATS client; the workers' context to drive handlers by
/// hand; and what the bus holds (dead letters, commands waiting, consumers drained) read back.
#[derive(Clone, Copy)]
pub struct TestBus<'a> {
    pub(super) app: &'a TestApp,
}

impl TestBus<'_> {
    /// Publishes `message` through the api's bus under `correlation`, as the api would.
    pub async fn publish<M: Message>(self, message: M, correlation: &str) -> Published {
        self.app
            .state
            .bus
            .publish(message, &CorrelationId::bounded(correlation))
            .await
            .expect("published")
    }

    /// Publishes `message` in its envelope under the message id `msg_id`, as a redelivery
    /// arrives: another id gets past the server's duplicate check.
    pub async fn publish_copy<M: Message>(self, message: M, msg_id: &str) {
        let payload = serde_json::to_vec(&Envelope::<M>::new(message, "copy")).expect("envelope");
        self.publish_bytes(M::SUBJECT, msg_id, payload).await;
    }

    /// Publishes `payload` as it is on `subject` (relative to the namespace) under `msg_id`.
    pub async fn publish_bytes(self, subject: &str, msg_id: &str, payload: Vec<u8>) {
        let bus = &self.app.state.bus;
        bus.publish_raw(
            bus.namespace().subject(subject),
            msg_id.to_owned(),
            Default::default(),
            payload.into(),
        )
        .await
        .expect("published");
    }

    /// The namespace's status events from now on, heard as any replica hears them.
    pub async fn status_events(self) -> async_nats::Subscriber {
        let subject = self
            .app
            .state
            .bus
            .namespace()
            .subject(OrderStatusChanged::SUBJECT);
        let subscriber = self.app.state.nats.subscribe(subject).await.unwrap();
        self.app.state.nats.flush().await.unwrap();
        subscriber
    }

    /// Publishes a raw JSON payload with a plain NATS client, as an outside system would.
    pub async fn publish_plain(self, subject: &str, payload: Value) {
        let client = async_nats::connect(common::testing::nats_url())
            .await
            .expect("plain NATS client");
        client
            .publish(
                self.app.state.bus.namespace().subject(subject),
                payload.to_string().into(),
            )
            .await
            .expect("published");
        client.flush().await.expect("flushed");
    }

    /// The workers' context over this app's database and bus, to call handlers directly.
    pub fn worker_context(self) -> workers::Context {
        workers::Context::new(
            self.app.state.db.clone(),
            self.app.state.bus.clone(),
            self.app.state.config.clone(),
        )
    }

    /// The reasons of every dead letter so far, oldest first.
    pub async fn dead_letter_reasons(self) -> Vec<String> {
        let stream = self
            .app
            .state
            .bus
            .jetstream()
            .get_stream(
                self.app
                    .state
                    .bus
                    .namespace()
                    .name(common::nats::DEAD_LETTERS),
            )
            .await
            .expect("dead-letter stream");
        let mut reasons = Vec::new();
        let mut sequence = 1;
        while let Ok(letter) = stream.get_raw_message(sequence).await {
            reasons.push(
                letter
                    .headers
                    .get(common::messaging::DLQ_REASON_HEADER)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
            );
            sequence += 1;
        }
        reasons
    }

    /// Waits until `stream` (ORDERS_CMD, say) holds `n` messages: commands waiting for a worker
    /// that is not running yet.
    pub async fn commands_waiting(self, stream: &str, n: u64) {
        let bus = &self.app.state.bus;
        common::testing::eventually(
            std::time::Duration::from_secs(10),
            "commands waiting",
            || async {
                let mut stream = bus
                    .jetstream()
                    .get_stream(bus.namespace().name(stream))
                    .await
                    .ok()?;
                (stream.info().await.ok()?.state.messages == n).then_some(())
            },
        )
        .await;
    }

    /// Waits until every durable consumer of the namespace has nothing pending or unacked.
    pub async fn quiescent(self) {
        let bus = self.app.state.bus.clone();
        common::testing::eventually(
            std::time::Duration::from_secs(30),
            "consumers drained",
            || {
                let bus = bus.clone();
                async move {
                    for (stream, durable) in [
                        (common::nats::ORDERS_CMD, workers::kinds::INVENTORY_PLACE),
                        (
                            common::nats::INVENTORY_CMD,
                            workers::kinds::INVENTORY_COMMANDS,
                        ),
                        (common::nats::ORDERS_CMD, workers::kinds::ORDERS_TRANSITIONS),
                        (common::nats::ORDERS_CMD, workers::kinds::ORDERS_FULFILMENTS),
                        (common::nats::ORDERS_CMD, workers::kinds::ORDERS_DELIVERIES),
                        (common::nats::ORDERS_CMD, workers::kinds::ORDERS_REFUNDS),
                        (common::nats::ORDERS_CMD, workers::kinds::ORDERS_AFTER_SALE),
                        (common::nats::EVENTS, workers::kinds::ORDERS_PAYMENT_EVENTS),
                    ] {
                        let mut consumer: async_nats::jetstream::consumer::PullConsumer = bus
                            .jetstream()
                            .get_consumer_from_stream(
                                bus.namespace().name(durable),
                                bus.namespace().name(stream),
                            )
                            .await
                            .ok()?;
                        let info = consumer.info().await.ok()?;
                        if info.num_pending > 0 || info.num_ack_pending > 0 {
                            return None;
                        }
                    }
                    Some(())
                }
            },
        )
        .await;
    }
}
