//! The generic consumer loop against a real JetStream: ack after success, retry with backoff,
//! dead letters with their reason, redelivery after a crash, draining on shutdown, and pull
//! requests renewed at once when one expires or the server goes quiet.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use async_nats::jetstream;
use common::messaging::{Bus, DLQ_DELIVERIES_HEADER, DLQ_REASON_HEADER, DLQ_SUBJECT_HEADER};
use common::testing::{TcpProxy, eventually, socket_addr_of};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use workers::consumer::{Delivery, Failure, Handled};

#[path = "support/harness.rs"]
mod harness;
use harness::*;

#[tokio::test]
async fn a_handled_message_is_acked_once_with_its_correlation_id() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (handler, mut seen) = scripted(|_| Ok(()));
    let (_stop, _task) = h.start(handler).await;
    h.publish("hello").await;

    let d = next(&mut seen).await;
    assert_eq!(d.subject, "orders.evt.test");
    assert_eq!(text_of(&d), "hello");
    assert_eq!(d.delivered, 1);
    assert_eq!(d.correlation_id.as_str(), "corr-1");
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
    assert!(String::from_utf8_lossy(&letter.payload).contains("poison"));
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
async fn an_undecodable_message_is_dead_lettered_before_any_handler_sees_it() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (handler, mut seen) = scripted(|_| Ok(()));
    let (_stop, _task) = h.start(handler).await;
    h.publish_raw(b"{not an envelope").await;
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
            .contains("not a valid envelope")
    );
    assert!(seen.try_recv().is_err(), "no handler saw it");
}

#[tokio::test]
async fn a_message_of_a_type_nobody_handles_is_dead_lettered_by_the_dispatcher() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (_stop, _task) = h
        .start_with(workers::dispatch::Dispatch::new(), |_| {})
        .await;
    h.publish("unrouted").await;
    h.settled().await;
    let dead = eventually(WAIT, "a dead letter", || async {
        let d = h.dead_letters().await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    let reason = dead[0].headers.get(DLQ_REASON_HEADER).unwrap().as_str();
    assert!(
        reason.contains("no handler for message type \"test.probe\""),
        "{reason}"
    );
}

/// Handles the first delivery by never finishing, as a process that died mid-message would.
struct HangsOnFirstDelivery {
    started: mpsc::UnboundedSender<i64>,
}

impl OneByOne for HangsOnFirstDelivery {
    async fn handle_one(&self, delivery: Delivery) -> Handled {
        let _ = self.started.send(delivery.delivered);
        if delivery.delivered == 1 {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// Handles every delivery by never finishing, as a process that died mid-message would, and
/// says which message it took.
struct NeverFinishes {
    started: mpsc::UnboundedSender<u64>,
}

impl OneByOne for NeverFinishes {
    async fn handle_one(&self, delivery: Delivery) -> Handled {
        let _ = self.started.send(delivery.stream_sequence);
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Handles every delivery, and says which message it took.
struct Finishes {
    handled: mpsc::UnboundedSender<u64>,
}

impl OneByOne for Finishes {
    async fn handle_one(&self, delivery: Delivery) -> Handled {
        let _ = self.handled.send(delivery.stream_sequence);
        Ok(())
    }
}

#[tokio::test]
async fn a_message_is_redelivered_after_its_handler_crashed_before_acking() {
    let h = Harness::new(5, Duration::from_secs(1)).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    // The worker that crashes has a connection of its own, as a process would.
    let connection = async_nats::connect(common::testing::nats_url())
        .await
        .unwrap();
    let bus = Bus::new(
        jetstream::new(connection.clone()),
        h.bus.namespace().clone(),
    );
    let (_stop, crashed) = h
        .start_on(&bus, Each(NeverFinishes { started: tx }), |_| {})
        .await;
    h.publish("survive a crash").await;
    let taken = next(&mut started).await;

    // The worker dies mid-message: no ack, no nak, and its connection goes with it, so none
    // of its pull requests outlives it to take the redelivery.
    crashed.abort();
    let _ = crashed.await;
    connection.drain().await.unwrap();
    h.no_pull_waiting().await;

    let (tx, mut handled) = mpsc::unbounded_channel();
    let (_stop2, _task2) = h.start(Finishes { handled: tx }).await;
    // The same message comes to the new worker once the ack wait runs out. The delivery count
    // the server stamps on it is not asserted: a redelivery the dying worker's last pull
    // request took is not always counted, so it may read 1 or more.
    assert_eq!(next(&mut handled).await, taken, "the crashed message");
    h.settled().await;
    assert!(h.dead_letters().await.is_empty());
    assert!(
        handled.try_recv().is_err(),
        "handled once by the new worker"
    );
}

#[tokio::test]
async fn a_handler_stuck_past_its_timeout_is_abandoned_and_its_message_retried_by_the_same_loop() {
    // The ack wait is long: the retry can only come from the loop giving up on the handler.
    let h = Harness::new(5, Duration::from_secs(60)).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    let (_stop, _task) = h
        .start_with(Each(HangsOnFirstDelivery { started: tx }), |o| {
            o.handler_timeout = Duration::from_millis(300);
        })
        .await;
    h.publish("stuck once").await;
    assert_eq!(next(&mut started).await, 1);
    assert_eq!(next(&mut started).await, 2);
    h.settled().await;
}

struct PanicsOnce {
    seen: mpsc::UnboundedSender<i64>,
}

impl OneByOne for PanicsOnce {
    async fn handle_one(&self, delivery: Delivery) -> Handled {
        let _ = self.seen.send(delivery.delivered);
        if delivery.delivered == 1 {
            panic!("handler bug on first delivery");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_does_not_stop_the_loop_and_the_message_is_retried() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (_stop, task) = h.start(PanicsOnce { seen: tx }).await;
    h.publish("panic").await;
    let deliveries = [next(&mut seen).await, next(&mut seen).await];
    assert_eq!(deliveries, [1, 2], "retried after the panic");
    h.settled().await;
    assert!(!task.is_finished());
    assert!(h.dead_letters().await.is_empty());
}

/// Takes a while, counting completions.
struct Slow {
    started: mpsc::UnboundedSender<()>,
    done: Arc<AtomicUsize>,
}

impl OneByOne for Slow {
    async fn handle_one(&self, _delivery: Delivery) -> Handled {
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
    next(&mut started).await;

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

/// How long a message published to an idle consumer may take to reach its handler.
const PROMPTLY: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_consumer_whose_pull_requests_expire_pulls_again_at_once() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (handler, mut seen) = scripted(|_| Ok(()));
    let expires = Duration::from_millis(300);
    let (_stop, _task) = h
        .start_with(Each(handler), |o| {
            o.pull.expires = expires;
            o.pull.heartbeat = Duration::from_millis(100);
        })
        .await;
    // Idle through several expiries: each request must be renewed.
    tokio::time::sleep(expires * 4).await;
    h.publish("after expiries").await;
    let d = tokio::time::timeout(PROMPTLY, seen.recv())
        .await
        .expect("handled within a second of being published")
        .unwrap();
    assert_eq!(text_of(&d), "after expiries");
}

#[tokio::test]
async fn a_consumer_whose_pull_request_the_server_forgot_pulls_again_at_once() {
    // The loop talks to NATS through a proxy; cutting it makes the server forget the pull
    // request (its subscriber went away) without telling the client, as a server restart or
    // a new consumer leader would.
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let proxy = TcpProxy::start(socket_addr_of(&common::testing::nats_url())).await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(format!("nats://{}", proxy.addr))
        .await
        .unwrap();
    let bus = Bus::new(jetstream::new(client.clone()), h.bus.namespace().clone());
    let (handler, mut seen) = scripted(|_| Ok(()));
    let (_stop, _task) = h
        .start_on(&bus, Each(handler), |o| {
            // Long enough that waiting for the expiry would be noticed.
            o.pull.expires = Duration::from_secs(10);
            o.pull.heartbeat = Duration::from_millis(200);
        })
        .await;
    h.consumer_until("a pull request waiting", |i| i.num_waiting > 0)
        .await;

    proxy.cut();
    h.no_pull_waiting().await;
    proxy.restore();
    eventually(WAIT, "the loop's client reconnects", || async {
        (client.connection_state() == async_nats::connection::State::Connected).then_some(())
    })
    .await;
    h.publish("after the gap").await;
    let d = tokio::time::timeout(PROMPTLY, seen.recv())
        .await
        .expect("handled within a second of being published")
        .unwrap();
    assert_eq!(text_of(&d), "after the gap");
}
