//! `api migrate`: the once-per-release step. Applies pending migrations, creates or updates
//! the streams and deletes the consumers this release retired, then exits, so a Kubernetes Job (or any release hook) can run it
//! before the new replicas start, instead of the replicas racing for it.
//!
//! The api and workers still migrate and provision at start-up (both are idempotent and the
//! migrations run under an advisory lock); after the Job they find nothing left to do.

use common::startup::Broker;
use common::{Config, db, nats};

/// Migrates the database and provisions every stream.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = db::connect_and_migrate(config).await?;
    let applied = db::MIGRATOR.iter().count();
    pool.close().await;
    tracing::info!(migrations = applied, "database schema up to date");
    let broker = Broker::connect(config, "order-service-migrate").await?;
    nats::retire_consumers(&broker.jetstream, &broker.namespace).await?;
    broker.client.flush().await?;
    tracing::info!(
        replicas = config.nats_stream_replicas,
        "streams provisioned"
    );
    Ok(())
}
