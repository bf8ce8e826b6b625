//! The generic consumer loop against a real JetStream: ack after success, retry with backoff,
//! dead letters with their reason, redelivery after a crash, draining on shutdown.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use async_nats::jetstream;
use common::messaging::{
    Bus, DLQ_DELIVERIES_HEADER, DLQ_REASON_HEADER, DLQ_SUBJECT_HEADER, Namespace,
};
use common::nats::{self, ConsumerSpec};
use common::testing::{TestEnv, eventually};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use workers::consumer::{ConsumerLoop, Delivery, Failure, Handler, LoopOptions};

const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    _env: TestEnv,
    bus: Bus,
    spec: ConsumerSpec,
}

impl Harness {
    async fn new(max_deliver: i64, ack_wait: Duration) -> Self {
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

    async fn start<H: Handler>(
        &self,
        handler: H,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        self.start_with(handler, |_| {}).await
    }

    async fn start_with<H: Handler>(
        &self,
        handler: H,
        tune: impl FnOnce(&mut LoopOptions),
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let consumer =
            nats::provision_consumer(self.bus.jetstream(), self.bus.namespace(), &self.spec)
                .await
                .unwrap();
        let mut options = LoopOptions {
            max_deliver: self.spec.max_deliver,
            min_retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_millis(200),
            fetch_expiry: Duration::from_millis(500),
            ..LoopOptions::default()
        };
        tune(&mut options);
        let token = CancellationToken::new();
        let lp = ConsumerLoop::new("test", consumer, self.bus.clone(), handler, options);
        let task = tokio::spawn(lp.run(token.clone()));
        (token, task)
    }

    async fn publish(&self, body: &str) {
        let subject = self.bus.namespace().subject("orders.evt.test");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(common::messaging::CORRELATION_HEADER, "corr-1");
        self.bus
            .publish_raw(
                subject,
                uuid::Uuid::new_v4().to_string(),
                headers,
                body.to_owned().into(),
            )
            .await
            .unwrap();
    }

    /// Waits until the consumer has nothing pending and nothing unacknowledged.
    async fn settled(&self) {
        self.consumer_until("consumer settled", |i| {
            i.num_pending == 0 && i.num_ack_pending == 0
        })
        .await;
    }

    /// Waits until the server holds no pull request for the consumer.
    async fn no_pull_waiting(&self) {
        self.consumer_until("no pull request waiting", |i| i.num_waiting == 0)
            .await;
    }

    /// Polls the consumer's info until `done` accepts it.
    async fn consumer_until(&self, what: &str, done: fn(&jetstream::consumer::Info) -> bool) {
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

    async fn dead_letters(&self) -> Vec<async_nats::jetstream::message::StreamMessage> {
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
struct Scripted {
    seen: mpsc::UnboundedSender<Delivery>,
    outcome: fn(&Delivery) -> Result<(), Failure>,
}

impl Handler for Scripted {
    async fn handle(&self, delivery: Delivery) -> Result<(), Failure> {
        let outcome = (self.outcome)(&delivery);
        let _ = self.seen.send(delivery);
        outcome
    }
}

fn scripted(
    outcome: fn(&Delivery) -> Result<(), Failure>,
) -> (Scripted, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Scripted { seen: tx, outcome }, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a delivery in time")
        .expect("open")
}

#[tokio::test]
async fn a_handled_message_is_acked_once_with_its_correlation_id() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (handler, mut seen) = scripted(|_| Ok(()));
    let (_stop, _task) = h.start(handler).await;
    h.publish("hello").await;

    let d = next(&mut seen).await;
    assert_eq!(d.subject, "orders.evt.test");
    assert_eq!(&d.payload[..], b"hello");
    assert_eq!(d.delivered, 1);
    assert_eq!(d.correlation_id, "corr-1");
    h.settled().await;
    assert!(seen.try_recv().is_err(), "delivered exactly once");
    assert!(h.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_transient_failure_is_retried_until_it_succeeds() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (handler, mut seen) = scripted(|d| {
        if d.delivered < 3 {
            Err(Failure::Transient(anyhow::anyhow!("database down")))
        } else {
            Ok(())
        }
    });
    let (_stop, _task) = h.start(handler).await;
    h.publish("retry me").await;

    let attempts: Vec<i64> = vec![
        next(&mut seen).await.delivered,
        next(&mut seen).await.delivered,
        next(&mut seen).await.delivered,
    ];
    assert_eq!(attempts, vec![1, 2, 3]);
    h.settled().await;
    assert!(h.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_with_its_reason_and_not_retried() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (handler, mut seen) = scripted(|_| Err(Failure::permanent("unknown order 42")));
    let (_stop, _task) = h.start(handler).await;
    h.publish("poison").await;

    assert_eq!(next(&mut seen).await.delivered, 1);
    h.settled().await;
    let dead = eventually(WAIT, "a dead letter", || async {
        let d = h.dead_letters().await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert_eq!(&letter.payload[..], b"poison");
    assert_eq!(
        letter.headers.get(DLQ_REASON_HEADER).unwrap().as_str(),
        "unknown order 42"
    );
    assert_eq!(
        letter.headers.get(DLQ_SUBJECT_HEADER).unwrap().as_str(),
        "orders.evt.test"
    );
    assert_eq!(
        letter.headers.get(DLQ_DELIVERIES_HEADER).unwrap().as_str(),
        "1"
    );
    assert!(seen.try_recv().is_err(), "not retried");
}

#[tokio::test]
async fn a_message_failing_on_every_delivery_is_dead_lettered_after_max_deliver() {
    let h = Harness::new(3, Duration::from_secs(30)).await;
    let (handler, mut seen) = scripted(|_| Err(Failure::Transient(anyhow::anyhow!("still down"))));
    let (_stop, _task) = h.start(handler).await;
    h.publish("never works").await;

    for expected in 1..=3 {
        assert_eq!(next(&mut seen).await.delivered, expected);
    }
    h.settled().await;
    let dead = eventually(WAIT, "a dead letter", || async {
        let d = h.dead_letters().await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    let reason = dead[0]
        .headers
        .get(DLQ_REASON_HEADER)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(
        reason.contains("gave up after 3 deliveries") && reason.contains("still down"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_by_the_dispatcher() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (_stop, _task) = h.start(workers::dispatch::Dispatch::new()).await;
    h.publish("{not an envelope").await;
    h.settled().await;
    let dead = eventually(WAIT, "a dead letter", || async {
        let d = h.dead_letters().await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert!(
        dead[0]
            .headers
            .get(DLQ_REASON_HEADER)
            .unwrap()
            .as_str()
            .contains("not a JSON envelope")
    );
}

/// Handles the first delivery by never finishing, as a process that died mid-message would.
struct HangsOnFirstDelivery {
    started: mpsc::UnboundedSender<i64>,
}

impl Handler for HangsOnFirstDelivery {
    async fn handle(&self, delivery: Delivery) -> Result<(), Failure> {
        let _ = self.started.send(delivery.delivered);
        if delivery.delivered == 1 {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_message_is_redelivered_after_its_handler_crashed_before_acking() {
    let h = Harness::new(5, Duration::from_secs(1)).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    let (_stop, crashed) = h
        .start(HangsOnFirstDelivery {
            started: tx.clone(),
        })
        .await;
    h.publish("survive a crash").await;
    assert_eq!(
        tokio::time::timeout(WAIT, started.recv()).await.unwrap(),
        Some(1)
    );

    // The worker dies mid-message: no ack, no nak.
    crashed.abort();
    let _ = crashed.await;
    // The dead loop's last pull request lives on at the server until it expires; a redelivery
    // sent to it would be lost once more. Start the new worker once the server holds none.
    h.no_pull_waiting().await;

    let (_stop2, _task2) = h.start(HangsOnFirstDelivery { started: tx }).await;
    assert_eq!(
        tokio::time::timeout(WAIT, started.recv()).await.unwrap(),
        Some(2)
    );
    h.settled().await;
}

#[tokio::test]
async fn a_handler_stuck_past_its_timeout_is_abandoned_and_its_message_retried_by_the_same_loop() {
    // The ack wait is long: the retry can only come from the loop giving up on the handler.
    let h = Harness::new(5, Duration::from_secs(60)).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    let (_stop, _task) = h
        .start_with(HangsOnFirstDelivery { started: tx }, |o| {
            o.handler_timeout = Duration::from_millis(300);
        })
        .await;
    h.publish("stuck once").await;
    assert_eq!(
        tokio::time::timeout(WAIT, started.recv()).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        tokio::time::timeout(WAIT, started.recv()).await.unwrap(),
        Some(2)
    );
    h.settled().await;
}

struct PanicsOnce;

impl Handler for PanicsOnce {
    async fn handle(&self, delivery: Delivery) -> Result<(), Failure> {
        if delivery.delivered == 1 {
            panic!("handler bug on first delivery");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_does_not_stop_the_loop_and_the_message_is_retried() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (_stop, task) = h.start(PanicsOnce).await;
    h.publish("panic").await;
    h.settled().await;
    assert!(!task.is_finished());
    assert!(h.dead_letters().await.is_empty());
}

/// Takes a while, counting completions.
struct Slow {
    started: mpsc::UnboundedSender<()>,
    done: Arc<AtomicUsize>,
}

impl Handler for Slow {
    async fn handle(&self, _delivery: Delivery) -> Result<(), Failure> {
        let _ = self.started.send(());
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_finishes_and_acks_the_message_in_hand() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    let done = Arc::new(AtomicUsize::new(0));
    let (stop, task) = h
        .start(Slow {
            started: tx,
            done: Arc::clone(&done),
        })
        .await;
    h.publish("in flight").await;
    tokio::time::timeout(WAIT, started.recv()).await.unwrap();

    stop.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("loop stops")
        .unwrap();
    assert_eq!(
        done.load(Ordering::SeqCst),
        1,
        "the in-flight message finished"
    );
    h.settled().await;
}
