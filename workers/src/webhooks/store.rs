//! The webhooks worker's statements: the endpoints events fan out to, claiming a delivery for an
//! attempt, and recording the attempt with what it changes (the delivery's schedule, the
//! endpoint's failing streak, and its disabling) in one transaction.

use chrono::{DateTime, Utc};
use common::domain::WebhookDeliveryStatus;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// An enabled endpoint and what it subscribes to.
pub struct Subscriber {
    pub id: Uuid,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn subscribers(db: &PgPool) -> sqlx::Result<Vec<Subscriber>> {
    sqlx::query_as!(
        Subscriber,
        "SELECT id, events, created_at FROM webhook_endpoints WHERE enabled"
    )
    .fetch_all(db)
    .await
}

/// A delivery claimed for an attempt, with its endpoint.
pub struct Claimed {
    pub payload: String,
    pub scheduled_attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub url: String,
    pub enabled: bool,
    pub secret: Vec<u8>,
    /// The rotated secret, while it still signs.
    pub previous_secret: Option<Vec<u8>>,
    pub now: DateTime<Utc>,
}

/// Why a delivery was not claimed.
pub enum Unclaimed {
    /// Gone, finished, or driven by another ticket: the message has nothing left to do.
    Done,
    /// Another attempt holds it until then.
    Leased(Duration),
}

/// Claims delivery `id` under `ticket` for `lease`, if it is pending, driven by this ticket and
/// no attempt holds it.
pub async fn claim(
    db: &PgPool,
    id: Uuid,
    ticket: Uuid,
    lease: Duration,
) -> sqlx::Result<Result<Claimed, Unclaimed>> {
    let claimed = sqlx::query_as!(
        Claimed,
        r#"UPDATE webhook_deliveries d SET leased_until = now() + make_interval(secs => $3)
             FROM webhook_endpoints e
            WHERE d.id = $1 AND d.ticket = $2 AND d.status = 'PENDING' AND e.id = d.endpoint_id
              AND (d.leased_until IS NULL OR d.leased_until < now())
        RETURNING d.payload, d.scheduled_attempts,
                  d.next_attempt_at AS "next_attempt_at!", e.url, e.enabled, e.secret,
                  CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
                      AS previous_secret,
                  now() AS "now!""#,
        id,
        ticket,
        lease.as_secs_f64(),
    )
    .fetch_optional(db)
    .await?;
    if let Some(claimed) = claimed {
        return Ok(Ok(claimed));
    }
    let held = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM leased_until - now())::float8 AS "left!"
             FROM webhook_deliveries
            WHERE id = $1 AND ticket = $2 AND status = 'PENDING' AND leased_until >= now()"#,
        id,
        ticket,
    )
    .fetch_optional(db)
    .await?;
    Ok(Err(match held {
        Some(left) => Unclaimed::Leased(Duration::from_secs_f64(left.max(0.0))),
        None => Unclaimed::Done,
    }))
}

/// Lets go of a claimed delivery that is not due yet.
pub async fn release(db: &PgPool, id: Uuid, ticket: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webhook_deliveries SET leased_until = NULL WHERE id = $1 AND ticket = $2",
        id,
        ticket,
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// Ends a delivery whose endpoint was disabled: `FAILED`, with the reason.
pub async fn give_up(db: &PgPool, id: Uuid, ticket: Uuid, reason: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webhook_deliveries
            SET status = 'FAILED', next_attempt_at = NULL, leased_until = NULL, last_error = $3,
                updated_at = now()
          WHERE id = $1 AND ticket = $2 AND status = 'PENDING'",
        id,
        ticket,
        reason,
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// One attempt, as it is recorded.
pub struct Attempt<'a> {
    pub delivery_id: Uuid,
    pub ticket: Uuid,
    pub endpoint_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub duration: Duration,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub response_body: &'a str,
    pub succeeded: bool,
    /// The delivery's status after it, and when the next attempt is due while pending.
    pub next: (WebhookDeliveryStatus, Option<DateTime<Utc>>),
}

/// What recording an attempt changed.
pub struct Recorded {
    /// The delivery is still driven by the attempt's ticket (no retry or replay replaced it).
    pub current: bool,
    /// The endpoint was disabled by this failure, with this reason.
    pub disabled: Option<String>,
}

/// Records `attempt` (`last_error` is what the delivery log shows of a failure): its row, the
/// delivery's new status and schedule (only while its ticket still drives the delivery: an
/// attempt that was in flight when a replay or a retry started the delivery anew does not end
/// it, so the re-send asked for still happens), and the endpoint's failing streak, disabling it
/// once it has failed every attempt for `disable_after`.
pub async fn record(
    db: &PgPool,
    attempt: &Attempt<'_>,
    disable_after: Duration,
    last_error: Option<&str>,
) -> sqlx::Result<Recorded> {
    let mut tx = db.begin().await?;
    sqlx::query!(
        "INSERT INTO webhook_attempts
                (delivery_id, attempted_at, duration_ms, status_code, error, response_body)
         VALUES ($1, $2, $3, $4, $5, $6)",
        attempt.delivery_id,
        attempt.attempted_at,
        i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX),
        attempt.status_code.map(|s| s as i16),
        attempt.error,
        attempt.response_body,
    )
    .execute(&mut *tx)
    .await?;
    let (status, next_attempt_at) = attempt.next;
    let current = sqlx::query_scalar!(
        r#"UPDATE webhook_deliveries
              SET attempt_count = attempt_count + 1,
                  scheduled_attempts = scheduled_attempts + (ticket = $2)::int,
                  status = CASE WHEN ticket <> $2 THEN status WHEN $3 THEN 'SUCCEEDED' ELSE $4 END,
                  next_attempt_at = CASE WHEN ticket <> $2 THEN next_attempt_at WHEN $3 THEN NULL
                                         ELSE $5 END,
                  leased_until = CASE WHEN ticket = $2 THEN NULL ELSE leased_until END,
                  last_error = $6, updated_at = now()
            WHERE id = $1
        RETURNING ticket = $2 AS "current!""#,
        attempt.delivery_id,
        attempt.ticket,
        attempt.succeeded,
        status as WebhookDeliveryStatus,
        next_attempt_at,
        last_error,
    )
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(false);
    let disabled = sqlx::query_scalar!(
        r#"WITH before AS (SELECT enabled, failing_since FROM webhook_endpoints WHERE id = $1 FOR UPDATE)
           UPDATE webhook_endpoints e
              SET failing_since = CASE WHEN $2 THEN NULL ELSE coalesce(e.failing_since, $3) END,
                  enabled = e.enabled AND ($2 OR coalesce(e.failing_since, $3) > now() - make_interval(secs => $4)),
                  disabled_reason = CASE
                      WHEN e.enabled AND NOT $2 AND coalesce(e.failing_since, $3) <= now() - make_interval(secs => $4)
                      THEN 'every attempt failed since '
                           || to_char(coalesce(e.failing_since, $3) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                      ELSE e.disabled_reason END
             FROM before
            WHERE e.id = $1
        RETURNING CASE WHEN before.enabled AND NOT e.enabled THEN e.disabled_reason END AS disabled"#,
        attempt.endpoint_id,
        attempt.succeeded,
        attempt.attempted_at,
        disable_after.as_secs_f64(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    tx.commit().await?;
    Ok(Recorded { current, disabled })
}

/// Pending deliveries of every endpoint (zero for those with none).
pub async fn pending_per_endpoint(db: &PgPool) -> sqlx::Result<Vec<(Uuid, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT e.id, count(d.id) AS "pending!"
             FROM webhook_endpoints e
             LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id AND d.status = 'PENDING'
            GROUP BY e.id"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.pending)).collect())
}
