//! The NATS connection and the idempotent provisioning of every stream and consumer.
//!
//! Streams (names prefixed by the namespace):
//!
//! | stream | retention | subjects |
//! | --- | --- | --- |
//! | `ORDERS_CMD` | work queue | `orders.cmd.>` |
//! | `INVENTORY_CMD` | work queue | `inventory.cmd.>` |
//! | `PAYMENTS_CMD` | work queue | `payments.cmd.>` (for the payment system) |
//! | `EVENTS` | limits (7 days) | `orders.evt.>`, `inventory.evt.>`, `payments.evt.>` |
//! | `DEAD_LETTERS` | limits (30 days) | `dlq.>` |
//! | `WEBHOOKS` | work queue | `webhooks.deliver` (the outbound webhooks' pending attempts) |
//!
//! Each has a size and a message count limit (`NATS_STREAM_LIMITS`).
//!
//! Durable consumers that an earlier release created and nothing reads any more are deleted by
//! the release step ([`retire_consumers`]): on a work-queue stream, one of them would hold
//! back messages or, with an overlapping filter, refuse the consumers that replace it.

use crate::config::{Config, StreamLimits};
use crate::messaging::Namespace;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, consumer, stream};
use backon::{ExponentialBuilder, Retryable};
use std::time::Duration;

/// How long the server remembers message ids to drop duplicate publishes.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

pub const ORDERS_CMD: &str = "ORDERS_CMD";
pub const INVENTORY_CMD: &str = "INVENTORY_CMD";
pub const PAYMENTS_CMD: &str = "PAYMENTS_CMD";
pub const EVENTS: &str = "EVENTS";
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";
pub const WEBHOOKS: &str = "WEBHOOKS";

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
            Some((user, password)) => async_nats::ConnectOptions::new().user_and_password(
                user.clone(),
                secrecy::ExposeSecret::expose_secret(password).to_owned(),
            ),
            None => async_nats::ConnectOptions::new(),
        };
        options
            .name(name)
            .custom_inbox_prefix(&config.nats_inbox_prefix)
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

/// Durable consumers of earlier releases: `orders-commands` (all of `orders.cmd.>`, now split
/// between `inventory-place` and `orders-transitions`) and `orders-inventory-events` (the
/// inventory decisions, which no longer exist).
pub const RETIRED_CONSUMERS: [(&str, &str); 2] = [
    (ORDERS_CMD, "orders-commands"),
    (EVENTS, "orders-inventory-events"),
];

/// JetStream's "filtered consumer not unique on workqueue stream": a new consumer overlaps
/// one already there.
const OVERLAPPING_CONSUMER: ErrorCode = ErrorCode(10100);

/// What a user that may not create or change streams is told.
const RUN_MIGRATE: &str =
    "run `api migrate` (as a NATS user allowed to create and update streams) first";

/// Makes every stream of the deployment match this release's configuration. Each stream is
/// read first (`$JS.API.STREAM.INFO`), and created or updated only when it is missing or
/// differs, so the runtime users, which may read stream information but neither create nor
/// change a stream (deploy/nats/auth.conf), start without asking for more once `api migrate`
/// has run; the same call in `api migrate`, and wherever the NATS user may (development,
/// tests), creates or updates them. A missing stream that cannot be created is an error naming
/// `api migrate`; a stream that differs and cannot be updated is only a warning, since it
/// works meanwhile. Safe to run from every replica.
pub async fn provision_streams(
    js: &jetstream::Context,
    ns: &Namespace,
    replicas: usize,
    limits: &StreamLimits,
) -> crate::Result<()> {
    for config in stream_configs(ns, replicas, limits) {
        let current = match js.get_stream(&config.name).await {
            Ok(stream) => Some(stream.cached_info().config.clone()),
            Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j) if j.code() == 404) => {
                None
            }
            Err(e) => return Err(crate::Error::Nats(format!("stream {}: {e}", config.name))),
        };
        if current.as_ref().is_some_and(|c| same_settings(c, &config)) {
            continue;
        }
        match (create_or_update(js, &config).await, current) {
            (Ok(()), _) => tracing::info!(stream = %config.name, "stream created or updated"),
            (Err(e), Some(_)) => tracing::warn!(
                stream = %config.name, error = %e,
                "the stream differs from this release's configuration and this NATS user may not update it; {RUN_MIGRATE}"
            ),
            (Err(e), None) => {
                return Err(crate::Error::Nats(format!(
                    "stream {} does not exist and cannot be created ({e}): {RUN_MIGRATE}",
                    config.name
                )));
            }
        }
    }
    Ok(())
}

/// The configuration of every stream: retention, age, and size limits with the discard
/// policy that suits it (see [`StreamLimits`]).
fn stream_configs(ns: &Namespace, replicas: usize, limits: &StreamLimits) -> Vec<stream::Config> {
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
            PAYMENTS_CMD,
            vec!["payments.cmd.>"],
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
        (
            WEBHOOKS,
            vec![<crate::webhooks::AttemptDelivery as crate::messaging::Message>::SUBJECT],
            stream::RetentionPolicy::WorkQueue,
            Duration::ZERO,
        ),
    ];
    defs.into_iter()
        .map(|(name, subjects, retention, max_age)| {
            let limit = limits.of(name);
            // A full command stream refuses new commands (their publisher answers 503, nothing
            // accepted is lost); a full history drops its oldest messages.
            let discard = match retention {
                stream::RetentionPolicy::WorkQueue => stream::DiscardPolicy::New,
                _ => stream::DiscardPolicy::Old,
            };
            stream::Config {
                name: ns.name(name),
                subjects: subjects.iter().map(|s| ns.subject(s)).collect(),
                retention,
                max_age,
                max_bytes: limit.map_or(-1, |l| l.max_bytes),
                max_messages: limit.map_or(-1, |l| l.max_msgs),
                discard,
                storage: stream::StorageType::File,
                num_replicas: replicas.max(1),
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            }
        })
        .collect()
}

/// Whether a stream's current configuration has every setting provisioning makes.
fn same_settings(current: &stream::Config, wanted: &stream::Config) -> bool {
    let mut subjects = current.subjects.clone();
    let mut wanted_subjects = wanted.subjects.clone();
    subjects.sort();
    wanted_subjects.sort();
    subjects == wanted_subjects
        && current.retention == wanted.retention
        && current.max_age == wanted.max_age
        && current.max_bytes == wanted.max_bytes
        && current.max_messages == wanted.max_messages
        && current.discard == wanted.discard
        && current.storage == wanted.storage
        && current.num_replicas == wanted.num_replicas
        && current.duplicate_window == wanted.duplicate_window
}

async fn create_or_update(js: &jetstream::Context, config: &stream::Config) -> crate::Result<()> {
    // A server-side failure (e.g. nats-server 2.9 creating a stream's store while another
    // client deletes the account's last stream, and with it the store's directory) is worth a
    // few quick retries; a refused configuration, or a request no one answers (a user without
    // the permission), is not.
    (|| js.create_or_update_stream(config.clone()))
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_secs(1))
                .with_max_times(5),
        )
        .when(|e| matches!(e.kind(), CreateStreamErrorKind::JetStream(e) if e.code() >= 500))
        .await
        .map(|_| ())
        .map_err(crate::Error::nats)
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
    let config = consumer::pull::Config {
        durable_name: Some(durable.clone()),
        filter_subject: ns.subject(&spec.filter_subject),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: spec.ack_wait,
        max_deliver: spec.max_deliver,
        max_ack_pending: spec.max_ack_pending,
        ..Default::default()
    };
    match stream.create_consumer(config.clone()).await {
        Err(e) if matches!(e.kind(), ConsumerErrorKind::JetStream(ref j)
            if j.error_code() == OVERLAPPING_CONSUMER) =>
        {
            // A consumer of an earlier release is still there: retire it (where this user may;
            // otherwise the release step must) and try once more.
            tracing::warn!(consumer = %durable, "a consumer of an earlier release overlaps; retiring it");
            retire_consumers(js, ns).await?;
            stream.create_consumer(config).await
        }
        created => created,
    }
    .map_err(|e| crate::Error::Nats(format!("consumer {durable}: {e}")))
}

/// Deletes the durable consumers earlier releases used ([`RETIRED_CONSUMERS`]); those already
/// gone are skipped. Run by the release step (`api migrate`); only its NATS user may.
pub async fn retire_consumers(js: &jetstream::Context, ns: &Namespace) -> crate::Result<()> {
    for (stream, durable) in RETIRED_CONSUMERS {
        let (stream, durable) = (ns.name(stream), ns.name(durable));
        match js.delete_consumer_from_stream(&durable, &stream).await {
            Ok(_) => tracing::info!(%stream, consumer = %durable, "retired consumer deleted"),
            Err(e)
                if matches!(e.kind(), ConsumerErrorKind::JetStream(ref j)
                    if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND
                        || j.error_code() == ErrorCode::STREAM_NOT_FOUND) => {}
            Err(e) => {
                return Err(crate::Error::Nats(format!(
                    "consumer {durable} of an earlier release on {stream} cannot be deleted ({e}): {RUN_MIGRATE}"
                )));
            }
        }
    }
    Ok(())
}
