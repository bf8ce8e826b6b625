//! The NATS connection and the idempotent provisioning of every stream and consumer.
//!
//! Streams (names prefixed by the namespace):
//!
//! | stream | retention | subjects |
//! | --- | --- | --- |
//! | `ORDERS_CMD` | work queue | `orders.cmd.>` |
//! | `INVENTORY_CMD` | work queue | `inventory.cmd.>` |
//! | `EVENTS` | limits (7 days) | `orders.evt.>`, `inventory.evt.>`, `payments.evt.>` |
//! | `DEAD_LETTERS` | limits (30 days) | `dlq.>` |
//!
//! Durable consumers that earlier versions created and nothing reads any more are deleted
//! here ([`RETIRED_CONSUMERS`]): on a work-queue stream, one of them would hold back messages
//! or, with an overlapping filter, refuse the consumers that replace it.

use crate::config::Config;
use crate::messaging::Namespace;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, consumer, stream};
use backon::{ExponentialBuilder, Retryable};
use std::time::Duration;

/// How long the server remembers message ids to drop duplicate publishes.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

pub const ORDERS_CMD: &str = "ORDERS_CMD";
pub const INVENTORY_CMD: &str = "INVENTORY_CMD";
pub const EVENTS: &str = "EVENTS";
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";

/// Connects to NATS, retrying with backoff until the server answers. The client reconnects
/// on its own afterwards.
pub async fn connect(config: &Config, name: &str) -> crate::Result<async_nats::Client> {
    use backon::{ExponentialBuilder, Retryable};
    let servers: Vec<String> = config
        .nats_url
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    let connect = || async {
        let options = match &config.nats_credentials {
            Some((user, password)) => async_nats::ConnectOptions::new()
                .user_and_password(user.clone(), password.expose().to_owned()),
            None => async_nats::ConnectOptions::new(),
        };
        options
            .name(name)
            .connection_timeout(Duration::from_secs(3))
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            })
            .connect(servers.as_slice())
            .await
    };
    connect
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(12),
        )
        .notify(|e, after| tracing::warn!(error = %e, retry_in = ?after, "NATS not reachable"))
        .await
        .map_err(crate::Error::nats)
}

/// A durable pull consumer a worker reads from.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Base stream name (namespace added when provisioning).
    pub stream: &'static str,
    /// Base durable name (namespace added when provisioning).
    pub durable: String,
    /// Filter, relative to the namespace.
    pub filter_subject: String,
    pub max_deliver: i64,
    pub ack_wait: Duration,
    pub max_ack_pending: i64,
}

impl ConsumerSpec {
    pub fn new(
        stream: &'static str,
        durable: impl Into<String>,
        filter: impl Into<String>,
    ) -> Self {
        ConsumerSpec {
            stream,
            durable: durable.into(),
            filter_subject: filter.into(),
            max_deliver: 10,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1024,
        }
    }
}

/// Durable consumers of earlier versions: `orders-commands` (all of `orders.cmd.>`, now split
/// between `inventory-place` and `orders-transitions`) and `orders-inventory-events` (the
/// inventory decisions, which no longer exist).
pub const RETIRED_CONSUMERS: [(&str, &str); 2] = [
    (ORDERS_CMD, "orders-commands"),
    (EVENTS, "orders-inventory-events"),
];

/// Creates or updates every stream of the deployment and deletes retired consumers. Safe to
/// run from every replica.
pub async fn provision_streams(
    js: &jetstream::Context,
    ns: &Namespace,
    replicas: usize,
) -> crate::Result<()> {
    let defs = [
        (
            ORDERS_CMD,
            vec!["orders.cmd.>"],
            stream::RetentionPolicy::WorkQueue,
            Duration::ZERO,
        ),
        (
            INVENTORY_CMD,
            vec!["inventory.cmd.>"],
            stream::RetentionPolicy::WorkQueue,
            Duration::ZERO,
        ),
        (
            EVENTS,
            vec!["orders.evt.>", "inventory.evt.>", "payments.evt.>"],
            stream::RetentionPolicy::Limits,
            Duration::from_secs(7 * 24 * 3600),
        ),
        (
            DEAD_LETTERS,
            vec!["dlq.>"],
            stream::RetentionPolicy::Limits,
            Duration::from_secs(30 * 24 * 3600),
        ),
    ];
    for (name, subjects, retention, max_age) in defs {
        let config = stream::Config {
            name: ns.name(name),
            subjects: subjects.iter().map(|s| ns.subject(s)).collect(),
            retention,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        // A server-side failure (e.g. nats-server 2.9 creating a stream's store while another
        // client deletes the account's last stream, and with it the store's directory) is
        // worth a few quick retries; a refused configuration is not.
        (|| js.create_or_update_stream(config.clone()))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_secs(1))
                    .with_max_times(5),
            )
            .when(|e| match e.kind() {
                CreateStreamErrorKind::JetStream(e) => e.code() >= 500,
                CreateStreamErrorKind::TimedOut => true,
                _ => false,
            })
            .await
            .map_err(|e| crate::Error::Nats(format!("stream {}: {e}", ns.name(name))))?;
    }
    for (stream, durable) in RETIRED_CONSUMERS {
        let (stream, durable) = (ns.name(stream), ns.name(durable));
        match js.delete_consumer_from_stream(&durable, &stream).await {
            Ok(_) => tracing::info!(%stream, consumer = %durable, "retired consumer deleted"),
            Err(e)
                if matches!(e.kind(), ConsumerErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) => {}
            Err(e) => {
                return Err(crate::Error::Nats(format!(
                    "retired consumer {durable} on {stream}: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Creates (or updates) a durable pull consumer and returns it.
pub async fn provision_consumer(
    js: &jetstream::Context,
    ns: &Namespace,
    spec: &ConsumerSpec,
) -> crate::Result<consumer::Consumer<consumer::pull::Config>> {
    let stream_name = ns.name(spec.stream);
    let durable = ns.name(&spec.durable);
    let stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| crate::Error::Nats(format!("stream {stream_name}: {e}")))?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: ns.subject(&spec.filter_subject),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver: spec.max_deliver,
            max_ack_pending: spec.max_ack_pending,
            ..Default::default()
        })
        .await
        .map_err(|e| crate::Error::Nats(format!("consumer {durable}: {e}")))
}
