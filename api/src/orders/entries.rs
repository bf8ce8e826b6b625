//! Timeline entries read by id, for the order event streams: what a stream opens with and what
//! a client resuming with `Last-Event-ID` missed. Authorization lives in the queries, as in the
//! other reads: a customer's reads are filtered by `user_id`.

use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use common::messages::OrderStatusChanged;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// One status change of an order: its timeline entry, with the entry's id and the order's.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": 42, "order_id": "0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f",
    "from": "PAID", "to": "SHIPPED", "at": "2026-01-05T10:00:00Z",
    "actor": "user:0192f3c4-0000-7000-8000-000000000001", "reason": null}))]
pub struct StatusEntry {
    /// The timeline entry's id, also the SSE event id. Absent only for changes announced by
    /// workers older than this field.
    pub id: Option<i64>,
    pub order_id: Uuid,
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub at: DateTime<Utc>,
    /// Who or which system made the change: `user:<id>`, `system:inventory`, …
    pub actor: String,
    pub reason: Option<String>,
}

impl From<&OrderStatusChanged> for StatusEntry {
    fn from(c: &OrderStatusChanged) -> Self {
        StatusEntry {
            id: c.entry_id,
            order_id: c.order_id,
            from: c.from,
            to: c.to,
            at: c.at,
            actor: c.actor.clone(),
            reason: c.reason.clone(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    order_id: Uuid,
    from_status: Option<OrderStatus>,
    to_status: OrderStatus,
    at: DateTime<Utc>,
    actor: String,
    reason: Option<String>,
}

impl From<EntryRow> for StatusEntry {
    fn from(r: EntryRow) -> Self {
        StatusEntry {
            id: Some(r.id),
            order_id: r.order_id,
            from: r.from_status,
            to: r.to_status,
            at: r.at,
            actor: r.actor,
            reason: r.reason,
        }
    }
}

fn entries(rows: Vec<EntryRow>) -> ApiResult<Vec<StatusEntry>> {
    Ok(rows.into_iter().map(StatusEntry::from).collect())
}

/// Who is reading: `Some(user)` restricts to that customer's orders.
pub type Owner = Option<Uuid>;

/// The id of an order's latest timeline entry.
pub async fn last_entry_id(db: &PgPool, order_id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT max(id) FROM order_events WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(db)
        .await
}

/// An order's status, if `owner` may see the order.
pub async fn status_of(
    db: &PgPool,
    order_id: Uuid,
    owner: Owner,
) -> ApiResult<Option<OrderStatus>> {
    Ok(sqlx::query_scalar(
        "SELECT status FROM orders WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
    )
    .bind(order_id)
    .bind(owner)
    .fetch_optional(db)
    .await?)
}

/// An order's entries after entry `after`, oldest first. An order's changes are made under its
/// row lock, so their ids grow in the order they were committed.
pub async fn of_order(db: &PgPool, order_id: Uuid, after: i64) -> ApiResult<Vec<StatusEntry>> {
    let rows = sqlx::query_as(
        "SELECT id, order_id, from_status, to_status, at, actor, reason FROM order_events
          WHERE order_id = $1 AND id > $2 ORDER BY id",
    )
    .bind(order_id)
    .bind(after)
    .fetch_all(db)
    .await?;
    entries(rows)
}

/// Up to `limit` entries after entry `after`, by id: of one customer's orders or everyone's,
/// and of one target status or any.
pub async fn after(
    db: &PgPool,
    owner: Owner,
    to: Option<OrderStatus>,
    after: i64,
    limit: i64,
) -> ApiResult<Vec<StatusEntry>> {
    let rows = sqlx::query_as(
        "SELECT e.id, e.order_id, e.from_status, e.to_status, e.at, e.actor, e.reason
           FROM order_events e JOIN orders o ON o.id = e.order_id
          WHERE e.id > $1 AND ($2::uuid IS NULL OR o.user_id = $2)
            AND ($3::order_status IS NULL OR e.to_status = $3)
          ORDER BY e.id LIMIT $4",
    )
    .bind(after)
    .bind(owner)
    .bind(to)
    .bind(limit)
    .fetch_all(db)
    .await?;
    entries(rows)
}
