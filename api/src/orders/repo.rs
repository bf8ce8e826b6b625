//! Reading orders from PostgreSQL. Authorization lives in the queries: a customer's reads are
//! filtered by `user_id`, so another customer's order is simply not found.

use super::model::{
    EntryKind, Order, OrderItem, OrderPayment, PartTimelineEntry, Placed, Refund,
    RefundTimelineEntry, TimelineEntry, TimelineItem,
};
use chrono::{DateTime, Utc};
use common::domain::{OrderStatus, PaymentStatus, RefundStatus};
use common::messages::{Fulfilment, PlacedOutcome, Return};
use common::money::{Currency, Money};
use common::shipping::{Shipment, ShippingAddress};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

/// Whole orders, one per row (the view `order_documents`, migrations/0022): lists add their
/// predicates on `o`.
const SELECT_ORDERS: &str = "SELECT * FROM order_documents o";

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    user_id: Uuid,
    status: OrderStatus,
    total: i64,
    currency: Currency,
    rejection_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    shipping_address: Option<Json<ShippingAddress>>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    tracking_url: Option<String>,
    items: Json<Vec<OrderItem>>,
    events: Json<Vec<EventRow>>,
    amount_paid: i64,
    amount_refunded: i64,
    payments: Json<Vec<OrderPayment>>,
    refunds: Json<Vec<Refund>>,
    fulfilments: Json<Vec<Fulfilment>>,
    returns: Json<Vec<Return>>,
    parts: Json<Vec<PartTimelineEntry>>,
}

#[derive(serde::Deserialize)]
struct EventRow {
    from_status: Option<OrderStatus>,
    to_status: OrderStatus,
    at: DateTime<Utc>,
    actor: String,
    reason: Option<String>,
}

impl From<OrderRow> for Order {
    fn from(r: OrderRow) -> Self {
        Order {
            id: r.id,
            user_id: r.user_id,
            status: r.status,
            items: r.items.0,
            total: r.total,
            currency: r.currency,
            created_at: r.created_at,
            updated_at: r.updated_at,
            rejection_reason: r.rejection_reason,
            shipping_address: r.shipping_address.map(|a| a.0),
            shipment: match (r.carrier, r.tracking_number) {
                (Some(carrier), Some(tracking_number)) => Some(Shipment {
                    carrier,
                    tracking_number,
                    tracking_url: r.tracking_url,
                }),
                _ => None,
            },
            timeline: timeline(r.events.0, &r.refunds.0, r.parts.0),
            payment_status: PaymentStatus::of(r.amount_paid, r.amount_refunded),
            amount_paid: r.amount_paid,
            amount_refunded: r.amount_refunded,
            payments: r.payments.0,
            refunds: r.refunds.0,
            fulfilments: r.fulfilments.0,
            returns: r.returns.0,
        }
    }
}

/// The status entries and the refunds' changes, merged oldest first (status entries first at
/// the same instant).
fn timeline(
    events: Vec<EventRow>,
    refunds: &[Refund],
    parts: Vec<PartTimelineEntry>,
) -> Vec<TimelineItem> {
    let mut items: Vec<TimelineItem> = events
        .into_iter()
        .map(|e| {
            TimelineItem::Status(TimelineEntry {
                kind: EntryKind::Status,
                from: e.from_status,
                to: e.to_status,
                at: e.at,
                actor: e.actor,
                reason: e.reason,
            })
        })
        .collect();
    for refund in refunds {
        let entry = |status: RefundStatus, at, actor: &str, reason: Option<&String>| {
            TimelineItem::Refund(RefundTimelineEntry {
                kind: EntryKind::Refund,
                refund_id: refund.id,
                refund_status: status,
                amount: refund.amount,
                currency: refund.currency.clone(),
                at,
                actor: actor.to_owned(),
                reason: reason.cloned(),
            })
        };
        // Its request, or its refusal and why.
        let (first, why) = match refund.status {
            RefundStatus::Refused => (RefundStatus::Refused, refund.failure_reason.as_ref()),
            _ => (RefundStatus::Requested, Some(&refund.reason)),
        };
        items.push(entry(first, refund.requested_at, &refund.actor, why));
        if let Some(settled_at) = refund.settled_at {
            items.push(entry(
                refund.status,
                settled_at,
                PAYMENTS_ACTOR,
                refund.failure_reason.as_ref(),
            ));
        }
    }
    items.extend(parts.into_iter().map(TimelineItem::Part));
    // A stable sort keeps each kind's own order at the same instant.
    items.sort_by_key(TimelineItem::at);
    items
}

/// Who answers refunds, in timelines.
const PAYMENTS_ACTOR: &str = "system:payments";

/// Who is reading: `Some(user)` restricts to that customer's orders, and shows the actors as
/// that customer sees them (see [`super::actors`]).
pub type Owner = Option<Uuid>;

/// One order with its lines and timeline, in one statement.
pub async fn find(db: &PgPool, id: Uuid, owner: Owner) -> sqlx::Result<Option<Order>> {
    let row = sqlx::query_as!(
        OrderRow,
        r#"SELECT id AS "id!", user_id AS "user_id!", status AS "status!: OrderStatus",
                  total AS "total!", currency AS "currency!: Currency", rejection_reason,
                  created_at AS "created_at!", updated_at AS "updated_at!",
                  shipping_address AS "shipping_address: Json<ShippingAddress>",
                  carrier, tracking_number, tracking_url,
                  items AS "items!: Json<Vec<OrderItem>>",
                  events AS "events!: Json<Vec<EventRow>>",
                  amount_paid AS "amount_paid!", amount_refunded AS "amount_refunded!",
                  payments AS "payments!: Json<Vec<OrderPayment>>",
                  refunds AS "refunds!: Json<Vec<Refund>>",
                  fulfilments AS "fulfilments!: Json<Vec<Fulfilment>>",
                  returns AS "returns!: Json<Vec<Return>>",
                  parts AS "parts!: Json<Vec<PartTimelineEntry>>"
             FROM order_documents
            WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"#,
        id,
        owner,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Order::from(row).seen_by(owner)))
}

pub struct ListFilter {
    pub owner: Owner,
    pub status: Option<OrderStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<&'static str>,
    pub has_tracking: Option<bool>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
}

/// Newest first; `limit + 1` rows so the caller knows whether there is a next page. Only the
/// filters given become predicates, so each combination gets a plan that uses its index
/// (`orders_user_created`, `orders_status_created`, `orders_country_created`,
/// `orders_tracked_created` or `orders_created`).
pub async fn list(db: &PgPool, f: &ListFilter) -> sqlx::Result<Vec<Order>> {
    let mut q = sqlx::QueryBuilder::new(SELECT_ORDERS);
    q.push(" WHERE true");
    if let Some(owner) = f.owner {
        q.push(" AND o.user_id = ").push_bind(owner);
    }
    if let Some(status) = f.status {
        q.push(" AND o.status = ").push_bind(status);
    }
    if let Some(from) = f.created_from {
        q.push(" AND o.created_at >= ").push_bind(from);
    }
    if let Some(to) = f.created_to {
        q.push(" AND o.created_at < ").push_bind(to);
    }
    if let Some(country) = f.country {
        q.push(" AND o.shipping_address->>'country' = ")
            .push_bind(country);
    }
    match f.has_tracking {
        Some(true) => q.push(" AND o.tracking_number IS NOT NULL"),
        Some(false) => q.push(" AND o.tracking_number IS NULL"),
        None => &mut q,
    };
    if let Some((at, id)) = f.after {
        q.push(" AND (o.created_at, o.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY o.created_at DESC, o.id DESC LIMIT ")
        .push_bind(i64::from(f.limit) + 1);
    let rows: Vec<OrderRow> = q.build_query_as().fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|row| Order::from(row).seen_by(f.owner))
        .collect())
}

/// An account's unpaid (`CONFIRMED`) orders, counted up to a bound.
pub struct Unpaid {
    /// How many, at most the bound.
    pub held: i64,
    /// When the oldest of them was reserved.
    pub oldest: Option<DateTime<Utc>>,
}

/// The unpaid orders of `user_id`, up to `max` of them, oldest first (through the index
/// `orders_unpaid_by_user`).
pub async fn unpaid(db: &PgPool, user_id: Uuid, max: u32) -> sqlx::Result<Unpaid> {
    sqlx::query_as!(
        Unpaid,
        r#"WITH held AS (
               SELECT reserved_at FROM orders
                WHERE user_id = $1 AND status = 'CONFIRMED'
                ORDER BY reserved_at LIMIT $2)
           SELECT count(*) AS "held!", min(reserved_at) AS oldest FROM held"#,
        user_id,
        i64::from(max),
    )
    .fetch_one(db)
    .await
}

/// The order exactly as [`find`] reads it right after the inventory worker recorded it, built
/// from the outcome the worker sent; `None` if the outcome holds what no stored order could.
pub fn recorded(outcome: PlacedOutcome, owner: Owner) -> Option<Order> {
    let PlacedOutcome {
        event,
        items,
        total,
        currency,
        rejection_reason,
        shipping_address,
    } = outcome;
    let items = items
        .into_iter()
        .map(|l| {
            Some(OrderItem::placed(
                l.product_id,
                l.name,
                l.unit_price.map(Money::new).transpose().ok()?,
                l.quantity,
                l.subtotal,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    let order: Order = Placed {
        id: event.order_id,
        user_id: event.user_id,
        status: event.to,
        items,
        total,
        currency: Currency::new(&currency).ok()?,
        // Written in one statement: the order's creation, last change and first entry share
        // the transaction's instant.
        at: event.at,
        rejection_reason,
        shipping_address,
        timeline: timeline(
            vec![EventRow {
                from_status: event.from,
                to_status: event.to,
                at: event.at,
                actor: event.actor,
                reason: event.reason,
            }],
            &[],
            Vec::new(),
        ),
    }
    .into();
    Some(order.seen_by(owner))
}
