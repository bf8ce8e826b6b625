//! The read-only event consumer of deploy/nats/auth.conf on a real nats-server: it reads the
//! events through its own durable consumer, and publishes nothing.

use crate::private_nats::{PrivateNats, last_sequence, shop_on};
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::Config;
use futures::StreamExt;
use std::time::Duration;

/// Fetches what `consumer` has within a second, acknowledging it; returns the subjects.
async fn drain(consumer: &PullConsumer) -> Vec<String> {
    let mut batch = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut subjects = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.unwrap();
        message.ack().await.unwrap();
        subjects.push(message.subject.to_string());
    }
    subjects
}

#[tokio::test]
async fn the_event_reader_reads_the_events_through_its_own_consumer() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let provider = nats.user("payments").await;
    shop.paid_order(&nats, &provider).await;
    let reader = nats.user("event-reader").await;

    let consumer = reader.durable("EVENTS", "event-reader").await;

    let read = drain(&consumer).await;
    for subject in ["orders.evt.status_changed", "payments.evt.succeeded"] {
        assert!(read.iter().any(|s| s == subject), "{subject}: {read:?}");
    }
}

#[tokio::test]
async fn the_event_reader_publishes_no_event() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let reader = nats.user("event-reader").await;
    let api = nats.user("api").await;

    for subject in ["orders.evt.status_changed", "payments.evt.succeeded"] {
        reader.assert_cannot_publish(subject).await;
    }

    assert_eq!(last_sequence(&api.js, "EVENTS").await, 0);
}

#[tokio::test]
async fn the_event_reader_sends_no_command_even_outside_jetstream() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let reader = nats.user("event-reader").await;
    let api = nats.user("api").await;

    reader
        .client
        .publish("orders.cmd.place", "{}".into())
        .await
        .unwrap();
    reader.client.flush().await.unwrap();

    reader.told("Publish to \"orders.cmd.place\"").await;
    assert_eq!(last_sequence(&api.js, "ORDERS_CMD").await, 0);
}

#[tokio::test]
async fn the_event_reader_cannot_take_over_a_workers_consumer() {
    let nats = PrivateNats::start().await;
    let _shop = shop_on(&nats, &[]).await;
    let reader = nats.user("event-reader").await;
    let worker = nats.user("orders-worker").await;
    let events = worker.js.get_stream("EVENTS").await.unwrap();
    common::testing::eventually(Duration::from_secs(10), "the worker's consumer", || async {
        events
            .get_consumer::<Config>("orders-payment-events")
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let stolen = reader
        .js
        .get_stream("EVENTS")
        .await
        .unwrap()
        .get_consumer::<Config>("orders-payment-events")
        .await;

    assert!(stolen.is_err(), "the reader read a worker's consumer");
}
