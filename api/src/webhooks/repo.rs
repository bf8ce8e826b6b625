//! Data access of the webhooks domain. No statement here reads a secret back: they are
//! written sealed and read only by the webhooks worker.

use crate::webhooks::model::{Attempt, Delivery, Endpoint};
use chrono::{DateTime, Utc};
use common::domain::WebhookDeliveryStatus;
use common::webhooks::webhook_id;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

pub async fn insert(
    db: &PgPool,
    id: Uuid,
    url: &str,
    events: &[String],
    description: &str,
    sealed_secret: &[u8],
) -> sqlx::Result<Endpoint> {
    sqlx::query_as!(
        Endpoint,
        "INSERT INTO webhook_endpoints (id, url, events, description, secret)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, url, events, description, enabled, disabled_reason,
                   previous_secret_expires_at, created_at, updated_at",
        id,
        url,
        events,
        description,
        sealed_secret,
    )
    .fetch_one(db)
    .await
}

pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        "SELECT id, url, events, description, enabled, disabled_reason,
                previous_secret_expires_at, created_at, updated_at
           FROM webhook_endpoints WHERE id = $1",
        id,
    )
    .fetch_optional(db)
    .await
}

/// Up to `limit` endpoints in creation order, after `after`.
pub async fn list(
    db: &PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Endpoint>> {
    let (at, id) = after.unzip();
    sqlx::query_as!(
        Endpoint,
        "SELECT id, url, events, description, enabled, disabled_reason,
                previous_secret_expires_at, created_at, updated_at
           FROM webhook_endpoints
          WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2)
          ORDER BY created_at, id LIMIT $3",
        at,
        id,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The checked fields of a change; `None` keeps what the endpoint has.
pub struct Change<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub description: Option<&'a str>,
    pub enabled: Option<bool>,
}

/// Applies `change`. Enabling a disabled endpoint clears its reason and its failing streak;
/// disabling one records that an ADMIN did.
pub async fn update(db: &PgPool, id: Uuid, change: &Change<'_>) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        "UPDATE webhook_endpoints
            SET url = coalesce($2, url), events = coalesce($3, events),
                description = coalesce($4, description), enabled = coalesce($5, enabled),
                disabled_reason = CASE WHEN $5 IS TRUE THEN NULL
                                       WHEN $5 IS FALSE AND enabled THEN 'disabled by an ADMIN'
                                       ELSE disabled_reason END,
                failing_since = CASE WHEN $5 IS TRUE AND NOT enabled THEN NULL
                                     ELSE failing_since END,
                updated_at = now()
          WHERE id = $1
          RETURNING id, url, events, description, enabled, disabled_reason,
                    previous_secret_expires_at, created_at, updated_at",
        id,
        change.url,
        change.events,
        change.description,
        change.enabled,
    )
    .fetch_optional(db)
    .await
}

/// Deletes an endpoint with its deliveries; whether it existed.
pub async fn delete(db: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1", id)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

/// Makes `sealed_secret` the signing secret; the one it replaces signs beside it for `overlap`.
pub async fn rotate(
    db: &PgPool,
    id: Uuid,
    sealed_secret: &[u8],
    overlap: Duration,
) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        "UPDATE webhook_endpoints
            SET previous_secret = secret, secret = $2,
                previous_secret_expires_at = now() + make_interval(secs => $3),
                updated_at = now()
          WHERE id = $1
          RETURNING id, url, events, description, enabled, disabled_reason,
                    previous_secret_expires_at, created_at, updated_at",
        id,
        sealed_secret,
        overlap.as_secs_f64(),
    )
    .fetch_optional(db)
    .await
}

struct DeliveryRow {
    id: Uuid,
    event_id: Uuid,
    event_type: String,
    status: WebhookDeliveryStatus,
    attempt_count: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    payload: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Most attempts shown per delivery (the last ones).
const SHOWN_ATTEMPTS: i64 = 50;

/// Up to `limit` deliveries of `endpoint`, newest first, before `before`, with `status` if
/// given, each with its attempts.
pub async fn deliveries(
    db: &PgPool,
    endpoint: Uuid,
    status: Option<WebhookDeliveryStatus>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Delivery>> {
    let (at, id) = before.unzip();
    let rows = sqlx::query_as!(
        DeliveryRow,
        r#"SELECT id, event_id, event_type, status AS "status: WebhookDeliveryStatus",
                  attempt_count, next_attempt_at, last_error, payload, created_at, updated_at
             FROM webhook_deliveries
            WHERE endpoint_id = $1 AND ($2::webhook_delivery_status IS NULL OR status = $2)
              AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
            ORDER BY created_at DESC, id DESC LIMIT $5"#,
        endpoint,
        status as Option<WebhookDeliveryStatus>,
        at,
        id,
        limit,
    )
    .fetch_all(db)
    .await?;
    with_attempts(db, rows).await
}

/// One delivery of `endpoint`, with its attempts.
pub async fn delivery(db: &PgPool, endpoint: Uuid, id: Uuid) -> sqlx::Result<Option<Delivery>> {
    let rows = sqlx::query_as!(
        DeliveryRow,
        r#"SELECT id, event_id, event_type, status AS "status: WebhookDeliveryStatus",
                  attempt_count, next_attempt_at, last_error, payload, created_at, updated_at
             FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2"#,
        id,
        endpoint,
    )
    .fetch_all(db)
    .await?;
    Ok(with_attempts(db, rows).await?.pop())
}

async fn with_attempts(db: &PgPool, rows: Vec<DeliveryRow>) -> sqlx::Result<Vec<Delivery>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts = sqlx::query!(
        r#"SELECT delivery_id, attempted_at, duration_ms, status_code, error, response_body
             FROM (SELECT *, row_number() OVER (PARTITION BY delivery_id ORDER BY id DESC) AS age
                     FROM webhook_attempts WHERE delivery_id = ANY($1)) a
            WHERE age <= $2 ORDER BY delivery_id, id"#,
        &ids,
        SHOWN_ATTEMPTS,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            id: r.id,
            webhook_id: webhook_id(r.id),
            event_id: r.event_id,
            event_type: r.event_type,
            status: r.status,
            attempt_count: r.attempt_count,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            payload: serde_json::from_str(&r.payload)
                .unwrap_or(serde_json::Value::String(r.payload)),
            attempts: attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| Attempt {
                    attempted_at: a.attempted_at,
                    duration_ms: a.duration_ms,
                    status_code: a.status_code,
                    error: a.error.clone(),
                    response_body: a.response_body.clone(),
                })
                .collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

/// Makes delivery `id` of `endpoint` due now under a new ticket (an exhausted one pending
/// again, for one more attempt); `None` when the endpoint has no such delivery.
pub async fn retry(
    db: &PgPool,
    endpoint: Uuid,
    id: Uuid,
    ticket: Uuid,
) -> sqlx::Result<Option<()>> {
    let updated = sqlx::query!(
        "UPDATE webhook_deliveries
            SET status = 'PENDING', ticket = $3, next_attempt_at = now(), leased_until = NULL,
                updated_at = now()
          WHERE id = $1 AND endpoint_id = $2",
        id,
        endpoint,
        ticket,
    )
    .execute(db)
    .await?;
    Ok((updated.rows_affected() > 0).then_some(()))
}
