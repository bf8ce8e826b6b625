//! Reading orders from PostgreSQL. Authorization lives in the queries: a customer's reads are
//! filtered by `user_id`, so another customer's order is simply not found.

use super::model::{Order, OrderItem, TimelineEntry};
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    user_id: Uuid,
    status: String,
    total: i64,
    currency: String,
    rejection_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    order_id: Uuid,
    #[sqlx(flatten)]
    item: OrderItem,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    order_id: Uuid,
    from_status: Option<String>,
    to_status: String,
    at: DateTime<Utc>,
    actor: String,
    reason: Option<String>,
}

/// Who is reading: `Some(user)` restricts to that customer's orders.
pub type Owner = Option<Uuid>;

pub async fn find(db: &PgPool, id: Uuid, owner: Owner) -> sqlx::Result<Option<Order>> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT id, user_id, status, total, currency, rejection_reason, created_at, updated_at
           FROM orders WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await?;
    Ok(assemble(db, row.into_iter().collect()).await?.pop())
}

pub struct ListFilter {
    pub owner: Owner,
    pub status: Option<OrderStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
}

/// Newest first; `limit + 1` rows so the caller knows whether there is a next page. Only the
/// filters given become predicates, so each combination gets a plan that uses its index
/// (`orders_user_created`, `orders_status_created` or `orders_created`).
pub async fn list(db: &PgPool, f: &ListFilter) -> sqlx::Result<Vec<Order>> {
    let mut q = sqlx::QueryBuilder::new(
        "SELECT id, user_id, status, total, currency, rejection_reason, created_at, updated_at
           FROM orders WHERE true",
    );
    if let Some(owner) = f.owner {
        q.push(" AND user_id = ").push_bind(owner);
    }
    if let Some(status) = f.status {
        q.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(from) = f.created_from {
        q.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = f.created_to {
        q.push(" AND created_at < ").push_bind(to);
    }
    if let Some((at, id)) = f.after {
        q.push(" AND (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(f.limit) + 1);
    let rows: Vec<OrderRow> = q.build_query_as().fetch_all(db).await?;
    assemble(db, rows).await
}

/// Loads the lines and timelines of several orders in two queries.
async fn assemble(db: &PgPool, rows: Vec<OrderRow>) -> sqlx::Result<Vec<Order>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let items: Vec<ItemRow> = sqlx::query_as(
        "SELECT order_id, product_id, name, unit_price, quantity, subtotal
           FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT order_id, from_status, to_status, at, actor, reason
           FROM order_events WHERE order_id = ANY($1) ORDER BY order_id, at, id",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;

    let mut items_by: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
    for row in items {
        items_by.entry(row.order_id).or_default().push(row.item);
    }
    let mut events_by: HashMap<Uuid, Vec<TimelineEntry>> = HashMap::new();
    for e in events {
        events_by
            .entry(e.order_id)
            .or_default()
            .push(TimelineEntry {
                from: e.from_status.and_then(|s| s.parse().ok()),
                to: e.to_status.parse().unwrap_or(OrderStatus::Pending),
                at: e.at,
                actor: e.actor,
                reason: e.reason,
            });
    }
    Ok(rows
        .into_iter()
        .map(|r| Order {
            items: items_by.remove(&r.id).unwrap_or_default(),
            timeline: events_by.remove(&r.id).unwrap_or_default(),
            id: r.id,
            user_id: r.user_id,
            status: r.status.parse().unwrap_or(OrderStatus::Pending),
            total: r.total,
            currency: r.currency,
            rejection_reason: r.rejection_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct Quote {
    id: Uuid,
    name: String,
    price: i64,
    currency: String,
}

/// What an order just accepted looks like before the order worker records it: the lines
/// priced from the current catalogue (the worker's snapshot is the authority).
pub async fn pending_view(
    db: &PgPool,
    order_id: Uuid,
    user_id: Uuid,
    lines: &[common::messages::LineRequest],
    accepted_at: DateTime<Utc>,
    store_currency: &str,
) -> sqlx::Result<Order> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let quotes: Vec<Quote> =
        sqlx::query_as("SELECT id, name, price, currency FROM products WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(db)
            .await?;
    let items: Vec<OrderItem> = lines
        .iter()
        .map(|l| {
            let q = quotes.iter().find(|q| q.id == l.product_id);
            OrderItem {
                product_id: l.product_id,
                name: q.map(|q| q.name.clone()),
                unit_price: q.map(|q| q.price),
                quantity: l.quantity,
                subtotal: q.map(|q| q.price.saturating_mul(i64::from(l.quantity))),
            }
        })
        .collect();
    Ok(Order {
        id: order_id,
        user_id,
        status: OrderStatus::Pending,
        total: items.iter().filter_map(|i| i.subtotal).sum(),
        currency: quotes
            .first()
            .map(|q| q.currency.clone())
            .unwrap_or_else(|| store_currency.to_owned()),
        created_at: accepted_at,
        updated_at: accepted_at,
        rejection_reason: None,
        timeline: Vec::new(),
        items,
    })
}
