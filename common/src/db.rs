//! The PostgreSQL pool and the embedded migrations.

use crate::config::{Config, ExposeSecret};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The schema, embedded at build time from `migrations/`, the only schema source.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool of the runtime role (`DATABASE_URL`) lazily: the process starts (and reports
/// "not ready") while PostgreSQL is down, and connections are made as soon as it answers.
pub fn pool(config: &Config) -> crate::Result<PgPool> {
    pool_at(
        config.database_url.expose_secret(),
        config.database_max_connections,
    )
}

fn pool_at(url: &str, max_connections: u32) -> crate::Result<PgPool> {
    // PostgreSQL's default plan caching (`plan_cache_mode = auto`): a prepared statement is
    // planned for its parameters five times, then keeps a generic plan when that costs no
    // more. Autovacuum's ANALYZE invalidates cached plans as the tables grow, so plans follow
    // the data; a database without autovacuum (or without ANALYZE after a bulk load) keeps
    // the plans made while the tables were empty (docs/operations.md).
    let options = PgConnectOptions::from_str(url)?.application_name("order-service");
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // A connection is pinged before it is handed out only when it has been idle for a
        // while: one used moments ago answered then, and a ping per acquire is a round trip
        // per transaction or read. One that broke meanwhile fails its statement with an I/O
        // error (a 503 in the api, a retry in the workers) and is not pooled again.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// How long a pooled connection may sit idle and still be handed out without a ping.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Applies pending migrations. sqlx takes a PostgreSQL advisory lock for the whole run, so
/// several replicas starting together apply each migration exactly once.
#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &PgPool) -> crate::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Checks that every migration this build knows has been applied, as it knows it. Migrations
/// applied beyond them (a newer release's, compatible by the expand-then-contract rule) are
/// fine. A schema behind, or never migrated, is an error naming `api migrate`.
#[tracing::instrument(skip_all)]
pub async fn verify(pool: &PgPool) -> crate::Result<()> {
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query!("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows.into_iter().map(|r| (r.version, r.checksum)).collect(),
            // 42P01: no migration history at all.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e.into()),
        };
    for migration in MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            None => {
                return Err(crate::Error::Schema(format!(
                    "migration {} ({}) is not applied; run `api migrate` (as the schema owner, \
                     DATABASE_MIGRATE_URL) before starting this release",
                    migration.version, migration.description
                )));
            }
            Some((_, checksum)) if *checksum != *migration.checksum => {
                return Err(crate::Error::Schema(format!(
                    "migration {} ({}) was applied with other contents than this build's",
                    migration.version, migration.description
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Retries while PostgreSQL is still starting (connection failures, a migration interrupted).
async fn retrying<F, Fut>(step: F) -> crate::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    use backon::{ExponentialBuilder, Retryable};
    step.retry(
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
    .await
}

/// The runtime pool of the api and the workers. With `MIGRATE_ON_START` (the default where
/// one role owns the schema) pending migrations are applied first; otherwise (the runtime role
/// cannot change the schema) the schema is only checked, and a schema behind stops the
/// process: `api migrate` runs first.
pub async fn connect(config: &Config) -> crate::Result<PgPool> {
    let pool = pool(config)?;
    if config.migrate_on_start {
        retrying(|| migrate(&pool)).await?;
    } else {
        retrying(|| verify(&pool)).await?;
    }
    Ok(pool)
}

/// Applies pending migrations as the schema owner (`DATABASE_MIGRATE_URL`, else
/// `DATABASE_URL`): the release step, `api migrate`.
pub async fn migrate_as_owner(config: &Config) -> crate::Result<()> {
    let url = config
        .database_migrate_url
        .as_ref()
        .unwrap_or(&config.database_url);
    let pool = pool_at(url.expose_secret(), 1)?;
    let migrated = retrying(|| migrate(&pool)).await;
    pool.close().await;
    migrated
}
