//! The PostgreSQL pool and the embedded migrations.

use crate::config::{Config, ExposeSecret};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The schema, embedded at build time from `migrations/`, the only schema source.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool lazily: the process starts (and reports "not ready") while PostgreSQL is down,
/// and connections are made as soon as it answers.
pub fn pool(config: &Config) -> crate::Result<PgPool> {
    let options = PgConnectOptions::from_str(config.database_url.expose_secret())?
        .application_name("order-service")
        // Plan each execution of a prepared statement for its parameters and the tables' size
        // now. A generic plan made while the order tables were nearly empty (a fresh deployment)
        // keeps scanning them whole as they grow until statistics change, and statistics never
        // change where autovacuum is off: a fresh-database soak lost 80% of its throughput in
        // ten minutes that way (BENCHMARKS.md, "Memory and plans over ten minutes").
        .options([("plan_cache_mode", "force_custom_plan")]);
    Ok(PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// Applies pending migrations. sqlx takes a PostgreSQL advisory lock for the whole run, so
/// several replicas starting together apply each migration exactly once.
#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &PgPool) -> crate::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Connects and migrates, retrying while PostgreSQL is still starting.
pub async fn connect_and_migrate(config: &Config) -> crate::Result<PgPool> {
    use backon::{ExponentialBuilder, Retryable};
    let pool = pool(config)?;
    (|| async { migrate(&pool).await })
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(12),
        )
        .when(|e| {
            matches!(
                e,
                crate::Error::Database(_)
                    | crate::Error::Migrate(sqlx::migrate::MigrateError::Execute(_))
            )
        })
        .notify(|e, after| tracing::warn!(error = %e, retry_in = ?after, "database not ready"))
        .await?;
    Ok(pool)
}
