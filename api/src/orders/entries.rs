//! Timeline entries read by id, for the order event streams: what a stream opens with and what
//! a client resuming with `Last-Event-ID` missed. Status changes and refund changes share one
//! sequence of entry ids (the `timeline_entries` view reads both). Authorization lives in the
//! queries, as in the other reads: a customer's reads are filtered by `user_id`.

use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use common::domain::{OrderStatus, PaymentStatus, RefundStatus, ReturnStatus};
use common::messages::{FulfilmentChanged, OrderStatusChanged, RefundChanged, ReturnChanged};
use common::money::{Currency, Money};
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
    /// Who or which system made the change: `user:<id>`, `system:inventory`, …; a customer
    /// sees staff accounts as `staff`.
    pub actor: String,
    pub reason: Option<String>,
}

/// One change of one of an order's refunds: its timeline entry, with the entry's id and the
/// order's, and, when heard live, where the order's money then stood.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": 43, "order_id": "0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f",
    "refund_id": "0192f3c4-0000-7000-8000-00000000000a", "refund_status": "SUCCEEDED",
    "amount": 1250, "currency": "USD", "payment_reference": null,
    "at": "2026-01-05T10:00:00Z", "actor": "system:payments", "reason": null,
    "payment_status": "REFUNDED", "amount_paid": 1250, "amount_refunded": 1250}))]
pub struct RefundEntry {
    /// The timeline entry's id, also the SSE event id (one sequence with the status entries).
    /// Absent only for changes announced by workers older than this field.
    pub id: Option<i64>,
    pub order_id: Uuid,
    pub refund_id: Uuid,
    /// The refund's status from this change on.
    pub refund_status: RefundStatus,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// The `refund_required` payment the refund gives back; `null`: the order's captured money.
    pub payment_reference: Option<String>,
    pub at: DateTime<Utc>,
    /// Who asked for the refund (`user:<id>`, `staff` to a customer), or `system:payments`
    /// for the payment system's answer.
    pub actor: String,
    /// Why it was asked for, why it failed, or why the order worker refused it.
    pub reason: Option<String>,
    /// The order's payment status after the change; on live events only (absent when
    /// replayed from the timeline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<PaymentStatus>,
    /// The order's `amount_paid` after the change; on live events only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<i64>,
    /// The order's `amount_refunded` after the change; on live events only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_refunded: Option<i64>,
}

/// Who answers refunds, in timelines.
const PAYMENTS_ACTOR: &str = "system:payments";

impl From<&RefundChanged> for RefundEntry {
    fn from(c: &RefundChanged) -> Self {
        RefundEntry {
            id: c.entry_id,
            order_id: c.order_id,
            refund_id: c.refund_id,
            refund_status: c.status,
            amount: c.amount,
            currency: c.currency.clone(),
            payment_reference: c.payment_reference.clone(),
            at: c.at,
            actor: match c.status {
                RefundStatus::Requested | RefundStatus::Refused => c.actor.clone(),
                _ => PAYMENTS_ACTOR.to_owned(),
            },
            reason: c.reason.clone(),
            payment_status: Some(c.payment_status),
            amount_paid: Some(c.amount_paid),
            amount_refunded: Some(c.amount_refunded),
        }
    }
}

/// One change of one of an order's shipments: its timeline entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FulfilmentEntry {
    /// The timeline entry's id, also the SSE event id.
    pub id: Option<i64>,
    pub order_id: Uuid,
    pub fulfilment_id: Uuid,
    /// `SHIPPED` or `DELIVERED`, from this change on.
    pub status: String,
    pub at: DateTime<Utc>,
    /// Who made the change; a customer sees staff accounts as `staff`.
    pub actor: String,
}

/// One change of one of an order's returns: its timeline entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReturnEntry {
    /// The timeline entry's id, also the SSE event id.
    pub id: Option<i64>,
    pub order_id: Uuid,
    pub return_id: Uuid,
    /// `REQUESTED`, `RECEIVED`, `REJECTED` or `CANCELLED`, from this change on.
    pub status: String,
    pub at: DateTime<Utc>,
    /// Who made the change; a customer sees staff accounts as `staff`.
    pub actor: String,
    /// Why it was asked for, or rejected.
    pub reason: Option<String>,
}

impl From<&FulfilmentChanged> for FulfilmentEntry {
    fn from(c: &FulfilmentChanged) -> Self {
        FulfilmentEntry {
            id: Some(c.entry_id),
            order_id: c.order_id,
            fulfilment_id: c.fulfilment.id,
            status: upper(&c.fulfilment.status),
            at: c.at,
            actor: c.actor.clone(),
        }
    }
}

impl From<&ReturnChanged> for ReturnEntry {
    fn from(c: &ReturnChanged) -> Self {
        let r = &c.return_;
        ReturnEntry {
            id: Some(c.entry_id),
            order_id: c.order_id,
            return_id: r.id,
            status: upper(&r.status),
            at: c.at,
            actor: c.actor.clone(),
            reason: match r.status {
                ReturnStatus::Requested => Some(r.reason.clone()),
                _ => r.rejection_reason.clone(),
            },
        }
    }
}

/// A status as its JSON names it.
fn upper<T: Serialize>(status: &T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The data of an order event stream's change events, by their `event:` name:
/// `status_changed` carries a `StatusEntry`, `refund_changed` a `RefundEntry`,
/// `fulfilment_changed` a `FulfilmentEntry`, `return_changed` a `ReturnEntry`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StreamEntry {
    Status(StatusEntry),
    Refund(RefundEntry),
    Fulfilment(FulfilmentEntry),
    Return(ReturnEntry),
}

impl StreamEntry {
    pub fn id(&self) -> Option<i64> {
        match self {
            StreamEntry::Status(e) => e.id,
            StreamEntry::Refund(e) => e.id,
            StreamEntry::Fulfilment(e) => e.id,
            StreamEntry::Return(e) => e.id,
        }
    }

    /// The SSE `event:` name of the entry's kind.
    pub fn event_name(&self) -> &'static str {
        match self {
            StreamEntry::Status(_) => "status_changed",
            StreamEntry::Refund(_) => "refund_changed",
            StreamEntry::Fulfilment(_) => "fulfilment_changed",
            StreamEntry::Return(_) => "return_changed",
        }
    }
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

/// A row of `timeline_entries`: the columns of its kind are set.
struct EntryRow {
    id: i64,
    order_id: Uuid,
    kind: String,
    from_status: Option<OrderStatus>,
    to_status: Option<OrderStatus>,
    refund_id: Option<Uuid>,
    refund_status: Option<RefundStatus>,
    amount: Option<Money>,
    currency: Option<Currency>,
    payment_reference: Option<String>,
    at: DateTime<Utc>,
    actor: String,
    reason: Option<String>,
    part_id: Option<Uuid>,
    part_status: Option<String>,
}

impl EntryRow {
    fn entry(self) -> Option<StreamEntry> {
        match (self.kind.as_str(), self.to_status) {
            ("status", Some(to)) => Some(StreamEntry::Status(StatusEntry {
                id: Some(self.id),
                order_id: self.order_id,
                from: self.from_status,
                to,
                at: self.at,
                actor: self.actor,
                reason: self.reason,
            })),
            ("refund", _) => Some(StreamEntry::Refund(RefundEntry {
                id: Some(self.id),
                order_id: self.order_id,
                refund_id: self.refund_id?,
                refund_status: self.refund_status?,
                amount: self.amount?,
                currency: self.currency?,
                payment_reference: self.payment_reference,
                at: self.at,
                actor: self.actor,
                reason: self.reason,
                payment_status: None,
                amount_paid: None,
                amount_refunded: None,
            })),
            ("fulfilment", _) => Some(StreamEntry::Fulfilment(FulfilmentEntry {
                id: Some(self.id),
                order_id: self.order_id,
                fulfilment_id: self.part_id?,
                status: self.part_status?,
                at: self.at,
                actor: self.actor,
            })),
            ("return", _) => Some(StreamEntry::Return(ReturnEntry {
                id: Some(self.id),
                order_id: self.order_id,
                return_id: self.part_id?,
                status: self.part_status?,
                at: self.at,
                actor: self.actor,
                reason: self.reason,
            })),
            _ => None,
        }
    }
}

fn entries(rows: Vec<EntryRow>) -> Vec<StreamEntry> {
    rows.into_iter().filter_map(EntryRow::entry).collect()
}

/// Who is reading: `Some(user)` restricts to that customer's orders.
pub type Owner = Option<Uuid>;

/// The id of an order's latest timeline entry.
pub async fn last_entry_id(db: &PgPool, order_id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT max(id) FROM timeline_entries WHERE order_id = $1",
        order_id,
    )
    .fetch_one(db)
    .await
}

/// Where an order stands, for deciding whether its stream ends.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub status: OrderStatus,
    /// A refund of the order waits for the payment system's answer, or a return of it for
    /// staff to receive or reject: more changes will come.
    pub refund_pending: bool,
}

/// An order's status and whether a refund of it is pending, if `owner` may see the order.
pub async fn standing(db: &PgPool, order_id: Uuid, owner: Owner) -> ApiResult<Option<Standing>> {
    Ok(sqlx::query_as!(
        Standing,
        r#"SELECT o.status AS "status: OrderStatus",
                  (EXISTS (SELECT 1 FROM refunds r
                            WHERE r.order_id = o.id AND r.status = 'REQUESTED')
                   OR EXISTS (SELECT 1 FROM returns t
                               WHERE t.order_id = o.id AND t.status = 'REQUESTED'))
                      AS "refund_pending!"
             FROM orders o WHERE o.id = $1 AND ($2::uuid IS NULL OR o.user_id = $2)"#,
        order_id,
        owner,
    )
    .fetch_optional(db)
    .await?)
}

/// An order's entries after entry `after`, oldest first. An order's changes are made under its
/// row lock, so their ids grow in the order they were committed. A statement of its own, so
/// that every plan of it, generic or custom, reads the order's entries through `order_id`.
pub async fn of_order(db: &PgPool, order_id: Uuid, after: i64) -> ApiResult<Vec<StreamEntry>> {
    let rows = sqlx::query_as!(
        EntryRow,
        r#"SELECT t.id AS "id!", t.order_id AS "order_id!", t.kind AS "kind!",
                  t.from_status AS "from_status: OrderStatus",
                  t.to_status AS "to_status: OrderStatus", t.refund_id,
                  t.refund_status AS "refund_status: RefundStatus",
                  t.amount AS "amount: Money", t.currency AS "currency: Currency",
                  t.payment_reference, t.at AS "at!", t.actor AS "actor!", t.reason,
                  t.part_id, t.part_status
             FROM timeline_entries t
            WHERE t.order_id = $1 AND t.id > $2
            ORDER BY t.id"#,
        order_id,
        after,
    )
    .fetch_all(db)
    .await?;
    Ok(entries(rows))
}

/// Up to `limit` entries after entry `after`, by id: of one customer's orders or everyone's;
/// with a target status, only the status changes into it.
pub async fn after(
    db: &PgPool,
    owner: Owner,
    to: Option<OrderStatus>,
    after: i64,
    limit: i64,
) -> ApiResult<Vec<StreamEntry>> {
    let rows = sqlx::query_as!(
        EntryRow,
        r#"SELECT t.id AS "id!", t.order_id AS "order_id!", t.kind AS "kind!",
                  t.from_status AS "from_status: OrderStatus",
                  t.to_status AS "to_status: OrderStatus", t.refund_id,
                  t.refund_status AS "refund_status: RefundStatus",
                  t.amount AS "amount: Money", t.currency AS "currency: Currency",
                  t.payment_reference, t.at AS "at!", t.actor AS "actor!", t.reason,
                  t.part_id, t.part_status
             FROM timeline_entries t JOIN orders o ON o.id = t.order_id
            WHERE t.id > $1 AND ($2::uuid IS NULL OR o.user_id = $2)
              AND ($3::order_status IS NULL OR t.to_status = $3)
            ORDER BY t.id LIMIT $4"#,
        after,
        owner,
        to as Option<OrderStatus>,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(entries(rows))
}
