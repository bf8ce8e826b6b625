//! Purging the rows that would otherwise only grow: idempotency keys older than a day, refresh
//! tokens used more than a week ago, sessions (with their tokens) a day after they ended,
//! webhook deliveries (with their attempts) 30 days after they ended, and the recorded
//! outcomes of after-sale steps a day after they were recorded (as the idempotency keys that
//! name their requests).
//!
//! Every api replica runs the purge every `PURGE_INTERVAL_MS`; a transaction-scoped advisory
//! lock lets one replica purge at a time and the others skip that round, and the deletes are
//! plain predicates, so a purge that overlaps another changes nothing twice.

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// After a day a client no longer retries a placement; a retry after that is a new request
/// with the same key, and the key still names the same order id.
pub const IDEMPOTENCY_KEY_HOURS: i32 = 24;
/// How long a rotated refresh token is kept to recognise its reuse (which revokes the session).
/// Presented later, it is simply unknown: 401, without revoking the session.
pub const USED_REFRESH_TOKEN_DAYS: i32 = 7;
/// How long an ended (expired or revoked) session is kept before it goes with its tokens.
pub const ENDED_SESSION_DAYS: i32 = 1;
/// How long a webhook delivery that ended (succeeded or failed) stays in its endpoint's log.
pub const WEBHOOK_DELIVERY_DAYS: i32 = 30;

/// Key of the advisory lock one purge holds (`purge` in ASCII).
const PURGE_LOCK: i64 = 0x0070_7572_6765;

/// Rows one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub idempotency_keys: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub webhook_deliveries: u64,
    pub after_sale_outcomes: u64,
}

/// Purges once; `None` when another replica is purging right now.
#[tracing::instrument(skip_all)]
pub async fn purge(db: &PgPool) -> sqlx::Result<Option<Purged>> {
    let mut tx = db.begin().await?;
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#,
        PURGE_LOCK,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !locked {
        return Ok(None);
    }
    let idempotency_keys = sqlx::query!(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
        IDEMPOTENCY_KEY_HOURS,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let sessions = sqlx::query!(
        "DELETE FROM sessions WHERE expires_at < now() - make_interval(days => $1)
             OR revoked_at < now() - make_interval(days => $1)",
        ENDED_SESSION_DAYS,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let refresh_tokens = sqlx::query!(
        "DELETE FROM refresh_tokens WHERE used_at < now() - make_interval(days => $1)",
        USED_REFRESH_TOKEN_DAYS,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let webhook_deliveries = sqlx::query!(
        "DELETE FROM webhook_deliveries
          WHERE status <> 'PENDING' AND updated_at < now() - make_interval(days => $1)",
        WEBHOOK_DELIVERY_DAYS,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let after_sale_outcomes = sqlx::query!(
        "DELETE FROM after_sale_outcomes WHERE recorded_at < now() - make_interval(hours => $1)",
        IDEMPOTENCY_KEY_HOURS,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Some(Purged {
        after_sale_outcomes,
        idempotency_keys,
        refresh_tokens,
        sessions,
        webhook_deliveries,
    }))
}

/// Purges every `interval` until `shutdown`, the first time one interval after start (a
/// fleet of replicas starting together does not all purge at once).
pub async fn run(db: PgPool, interval: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match purge(&db).await {
            Ok(Some(purged)) if purged != Purged::default() => {
                tracing::info!(
                    idempotency_keys = purged.idempotency_keys,
                    refresh_tokens = purged.refresh_tokens,
                    sessions = purged.sessions,
                    webhook_deliveries = purged.webhook_deliveries,
                    after_sale_outcomes = purged.after_sale_outcomes,
                    "purged expired rows"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed; retried next interval"),
        }
    }
}
