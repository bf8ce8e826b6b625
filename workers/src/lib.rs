//! JetStream workers of the order service, one commit per step. The inventory worker records
//! placed orders with their stock reserved and applies stock adjustments; the order worker
//! applies status transitions and payment events (each with its stock effect) and expires
//! unpaid reservations; the webhooks worker delivers order events to the endpoints ADMINs
//! register. Each kind can run alone (`workers inventory`, `workers orders`, `workers webhooks`)
//! so ops scale them independently. `docs/architecture.md` maps every step to its module.

pub mod adjusting;
pub mod after_sale;
pub mod announce;
pub mod batch;
pub mod consumer;
pub mod context;
pub mod counters;
pub mod dispatch;
pub mod expiry;
pub mod http;
pub mod kinds;
pub mod lag;
pub mod payments;
pub mod placing;
pub mod reconcile;
pub mod refunds;
pub mod transitions;
pub mod webhooks;

use common::messaging::Bus;
use common::startup::Broker;
use common::{Config, db};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use context::Context;
pub use kinds::Kind;

/// A set of worker kinds, connected and bound, ready to run.
pub struct Workers {
    context: Context,
    nats: async_nats::Client,
    kinds: Vec<Kind>,
    listener: TcpListener,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl Workers {
    /// Migrates the database, provisions streams, and binds `WORKER_HTTP_ADDR`.
    pub async fn build(config: Config, kinds: Vec<Kind>) -> anyhow::Result<Self> {
        if kinds.contains(&Kind::Webhooks) && config.webhooks.encryption_key().is_none() {
            anyhow::bail!(
                "the webhooks worker needs WEBHOOK_ENCRYPTION_KEY, the key the endpoints' signing secrets are encrypted with (base64 of 32 bytes, the api's own)"
            );
        }
        let metrics = common::metrics::install();
        let pool = db::connect(&config).await?;
        let Broker {
            client,
            jetstream: js,
            namespace: ns,
        } = Broker::connect(&config, "order-service-workers").await?;
        let listener = TcpListener::bind(config.worker_http_addr).await?;
        Ok(Workers {
            context: Context::new(pool, Bus::new(js, ns), std::sync::Arc::new(config)),
            nats: client,
            kinds,
            listener,
            metrics,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs every consumer of the chosen kinds and the HTTP endpoints until `shutdown`; then
    /// drains in-flight messages (each is acked or nacked) and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut watched = Vec::new();
        for kind in &self.kinds {
            for consumer in kind.consumers(&self.context).await? {
                watched.push(consumer.watch());
                tasks.spawn(consumer.run(shutdown.clone()));
            }
            if *kind == Kind::Orders {
                tasks.spawn(common::redrive::serve(
                    self.nats.clone(),
                    self.context.bus.clone(),
                    shutdown.clone(),
                ));
                tasks.spawn(expiry::run(
                    self.context.clone(),
                    self.context.config.expiry_sweep_interval,
                    shutdown.clone(),
                ));
            }
            if *kind == Kind::Webhooks {
                let kind = webhooks::start(&self.context, &shutdown).await?;
                watched.extend(kind.watched);
                for task in kind.tasks {
                    tasks.spawn(task);
                }
            }
            tracing::info!(kind = %kind, "worker kind started");
        }
        tasks.spawn(lag::run(watched, lag::SAMPLE_INTERVAL, shutdown.clone()));
        tasks.spawn(reconcile::run(self.context.clone(), shutdown.clone()));
        let http_state = http::HttpState {
            db: self.context.db.clone(),
            nats: self.nats.clone(),
            metrics: self.metrics.clone(),
        };
        tracing::info!(addr = %self.listener.local_addr()?, "worker http listening");
        let http_shutdown = shutdown.clone();
        let server = common::serve::serve(
            self.listener,
            http::router(http_state),
            self.context.config.http_header_read_timeout,
            async move { http_shutdown.cancelled().await },
        );
        let ((), ()) = tokio::join!(server, async {
            while let Some(done) = tasks.join_next().await {
                if let Err(e) = done {
                    tracing::error!(error = %e, "consumer task failed");
                }
            }
        });
        // Make sure every ack and publish left the client before the process exits.
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(error = %e, "NATS flush on shutdown failed");
        }
        tracing::info!("workers stopped");
        Ok(())
    }
}
