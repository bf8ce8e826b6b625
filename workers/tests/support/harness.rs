//! The consumer-loop tests' harness: a namespace with its streams, a loop started over a test
//! handler, the probe message they publish, and the consumer's state read back.

use async_nats::jetstream;
use common::messaging::{Bus, Namespace};
use common::nats::{self, ConsumerSpec};
use common::testing::{TestEnv, eventually};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use workers::consumer::{
    ConsumerLoop, Delivery, Failure, Handled, Handler, LoopOptions, PullOptions,
};

pub const WAIT: Duration = Duration::from_secs(20);

/// The message the tests publish.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub text: String,
}

common::message!(Probe {
    subject: "orders.evt.test",
    kind: "test.probe",
    version: 1,
    id: |m| format!("probe:{}", m.text),
});

/// The text a delivery carries.
pub fn text_of(delivery: &Delivery) -> String {
    delivery
        .envelope
        .data_as::<Probe>()
        .map(|p| p.text)
        .unwrap_or_default()
}

/// A test handler that takes one message at a time.
pub trait OneByOne: Send + Sync + 'static {
    fn handle_one(&self, delivery: Delivery) -> impl Future<Output = Handled> + Send;
}

/// Runs a [`OneByOne`] handler over each delivery of a group in turn.
pub struct Each<H>(pub H);

impl<H: OneByOne> Handler for Each<H> {
    fn group(&self, _delivery: &Delivery) -> Result<&'static str, Failure> {
        Ok("test")
    }

    async fn handle(&self, _group: &'static str, deliveries: Vec<Delivery>) -> Vec<Handled> {
        let mut results = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            results.push(self.0.handle_one(delivery).await);
        }
        results
    }
}

pub struct Harness {
    _env: TestEnv,
    pub bus: Bus,
    pub spec: ConsumerSpec,
}

impl Harness {
    pub async fn new(max_deliver: i64, ack_wait: Duration) -> Self {
        let env = TestEnv::new().await;
        let client = async_nats::connect(common::testing::nats_url())
            .await
            .unwrap();
        let js = jetstream::new(client);
        let ns = Namespace::new(env.namespace.clone());
        nats::provision_streams(&js, &ns, 1, &env.config().nats_stream_limits)
            .await
            .unwrap();
        let mut spec = ConsumerSpec::new(nats::EVENTS, "test-consumer", "orders.evt.test");
        spec.max_deliver = max_deliver;
        spec.ack_wait = ack_wait;
        Harness {
            _env: env,
            bus: Bus::new(js, ns),
            spec,
        }
    }

    pub async fn start<H: OneByOne>(
        &self,
        handler: H,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        self.start_with(Each(handler), |_| {}).await
    }

    pub async fn start_with<H: Handler>(
        &self,
        handler: H,
        tune: impl FnOnce(&mut LoopOptions),
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        self.start_on(&self.bus, handler, tune).await
    }

    /// Starts a loop whose NATS connection is `bus`'s (another than the publisher's, say).
    pub async fn start_on<H: Handler>(
        &self,
        bus: &Bus,
        handler: H,
        tune: impl FnOnce(&mut LoopOptions),
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let consumer = nats::provision_consumer(bus.jetstream(), bus.namespace(), &self.spec)
            .await
            .unwrap();
        let mut options = LoopOptions {
            max_deliver: self.spec.max_deliver,
            min_retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_millis(200),
            pull: PullOptions {
                batch: 256,
                expires: Duration::from_millis(500),
                heartbeat: Duration::from_millis(100),
            },
            ..LoopOptions::default()
        };
        tune(&mut options);
        let token = CancellationToken::new();
        let lp = ConsumerLoop::new("test", consumer, bus.clone(), handler, options);
        let task = tokio::spawn(lp.run(token.clone()));
        (token, task)
    }

    /// Publishes a [`Probe`] carrying `text`.
    pub async fn publish(&self, text: &str) {
        let probe = Probe { text: text.into() };
        let body = serde_json::to_vec(&common::messaging::Envelope::<Probe>::new(probe, "corr-1"))
            .unwrap();
        self.publish_raw(&body).await;
    }

    /// Publishes `body` as it is.
    pub async fn publish_raw(&self, body: &[u8]) {
        let subject = self.bus.namespace().subject("orders.evt.test");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(common::messaging::CORRELATION_HEADER, "corr-1");
        self.bus
            .publish_raw(
                subject,
                uuid::Uuid::new_v4().to_string(),
                headers,
                body.to_vec().into(),
            )
            .await
            .unwrap();
    }

    /// Waits until the consumer has nothing pending and nothing unacknowledged.
    pub async fn settled(&self) {
        self.consumer_until("consumer settled", |i| {
            i.num_pending == 0 && i.num_ack_pending == 0
        })
        .await;
    }

    /// Waits until the server holds no pull request for the consumer.
    pub async fn no_pull_waiting(&self) {
        self.consumer_until("no pull request waiting", |i| i.num_waiting == 0)
            .await;
    }

    /// Polls the consumer's info until `done` accepts it.
    pub async fn consumer_until(&self, what: &str, done: fn(&jetstream::consumer::Info) -> bool) {
        let stream = self.bus.namespace().name(self.spec.stream);
        let durable = self.bus.namespace().name(&self.spec.durable);
        let js = self.bus.jetstream().clone();
        eventually(WAIT, what, || {
            let js = js.clone();
            let (stream, durable) = (stream.clone(), durable.clone());
            async move {
                let mut consumer: jetstream::consumer::PullConsumer =
                    js.get_consumer_from_stream(&durable, &stream).await.ok()?;
                let info = consumer.info().await.ok()?;
                done(info).then_some(())
            }
        })
        .await;
    }

    pub async fn dead_letters(&self) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.namespace().name(nats::DEAD_LETTERS))
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut seq = 1;
        while let Ok(m) = stream.get_raw_message(seq).await {
            out.push(m);
            seq += 1;
        }
        out
    }
}

/// Records every delivery and answers with a scripted outcome per delivery number.
pub struct Scripted {
    seen: mpsc::UnboundedSender<Delivery>,
    outcome: fn(&Delivery) -> Result<(), Failure>,
}

impl OneByOne for Scripted {
    async fn handle_one(&self, delivery: Delivery) -> Handled {
        let outcome = (self.outcome)(&delivery);
        let _ = self.seen.send(delivery);
        outcome
    }
}

pub fn scripted(
    outcome: fn(&Delivery) -> Result<(), Failure>,
) -> (Scripted, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Scripted { seen: tx, outcome }, rx)
}

/// The next value `rx` receives, within [`WAIT`].
pub async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a delivery in time")
        .expect("open")
}
