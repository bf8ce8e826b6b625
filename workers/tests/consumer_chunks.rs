//! How many chunks a consumer loop handles at once: one by default, the next taken once the
//! last is settled; a second beside a small first where the loop allows it.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use workers::consumer::{Delivery, Handled};

#[path = "support/harness.rs"]
#[allow(dead_code)] // shared with consumer_loop.rs, which uses the rest of it
mod harness;
use harness::*;

/// Holds the message "first" until released; logs what it starts and finishes.
struct HoldsFirst {
    log: mpsc::UnboundedSender<String>,
    release: Arc<tokio::sync::Notify>,
}

impl OneByOne for HoldsFirst {
    async fn handle_one(&self, delivery: Delivery) -> Handled {
        let text = text_of(&delivery);
        let _ = self.log.send(format!("{text} started"));
        if text == "first" {
            self.release.notified().await;
        }
        let _ = self.log.send(format!("{text} finished"));
        Ok(())
    }
}

/// Starts a loop with `chunks_in_flight`, holds "first" in its handler and publishes
/// "second"; returns the handler's log and the release.
async fn first_held_second_published(
    h: &Harness,
    chunks_in_flight: usize,
) -> (mpsc::UnboundedReceiver<String>, Arc<tokio::sync::Notify>) {
    let (tx, mut log) = mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = HoldsFirst {
        log: tx,
        release: Arc::clone(&release),
    };
    // The loop runs on after its handles are dropped.
    let _ = h
        .start_with(Each(handler), |o| o.chunks_in_flight = chunks_in_flight)
        .await;
    h.publish("first").await;
    assert_eq!(next(&mut log).await, "first started");
    h.publish("second").await;
    (log, release)
}

#[tokio::test]
async fn a_second_small_chunk_is_handled_beside_a_held_one_when_allowed() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (mut log, release) = first_held_second_published(&h, 2).await;

    assert_eq!(next(&mut log).await, "second started");
    assert_eq!(next(&mut log).await, "second finished");
    release.notify_one();
    assert_eq!(next(&mut log).await, "first finished");
    h.settled().await;
}

#[tokio::test]
async fn chunks_are_handled_one_at_a_time_by_default() {
    let h = Harness::new(5, Duration::from_secs(30)).await;
    let (mut log, release) = first_held_second_published(&h, 1).await;
    h.consumer_until("both messages handed out", |info| info.num_ack_pending == 2)
        .await;

    release.notify_one();
    assert_eq!(next(&mut log).await, "first finished");
    assert_eq!(next(&mut log).await, "second started");
    assert_eq!(next(&mut log).await, "second finished");
    h.settled().await;
}
