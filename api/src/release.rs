//! `api migrate`: the once-per-release step. Applies pending migrations, creates or updates
//! the streams and deletes the consumers this release retired, then exits, so a Kubernetes Job (or any release hook) can run it
//! before the new replicas start, instead of the replicas racing for it.
//!
//! It migrates as the schema owner, `DATABASE_MIGRATE_URL` (else `DATABASE_URL`). Where the
//! runtime role is the owner too, the api and workers also migrate at start-up (idempotent,
//! under an advisory lock) and find nothing left to do; with a schema owner of its own
//! (`MIGRATE_ON_START=false`) they only check the schema is current.

use common::startup::Broker;
use common::{Config, db, nats};

/// Migrates the database and provisions every stream.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    db::migrate_as_owner(config).await?;
    let applied = db::MIGRATOR.iter().count();
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
