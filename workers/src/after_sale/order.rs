//! One after-sale step's transaction: the order locked, its lines read, and what every step
//! writes beside its own rows: the order's derived status with its timeline entry, a refund
//! through the refund path, and the step's outcome under the request that asked for it.

use super::ask::Refused;
use crate::consumer::Failure;
use crate::refunds::RefundRow;
use chrono::{DateTime, Utc};
use common::domain::{MAX_STORED_REASON_CHARS, OrderStatus, ReservationState};
use common::messages::OrderStatusChanged;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// The order, locked for the step.
#[derive(Debug, Clone)]
pub struct LockedOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
}

/// One line of the order with its after-sale quantities.
#[derive(Debug, Clone)]
pub struct Line {
    pub product_id: Uuid,
    pub quantity: i32,
    pub unit_price: i64,
    pub fulfilled: i32,
    pub cancelled: i32,
    pub delivered: i32,
    pub returned: i32,
    pub return_requested: i32,
}

impl Line {
    /// Neither shipped nor cancelled yet.
    pub fn left(&self) -> i32 {
        self.quantity - self.fulfilled - self.cancelled
    }

    /// Delivered, and neither returned nor asked for return.
    pub fn returnable(&self) -> i32 {
        self.delivered - self.returned - self.return_requested
    }
}

/// Fixed namespace of the ids of the refunds after-sale steps ask for (UUID v5).
const REFUND_IDS: Uuid = Uuid::from_u128(0x6166_7465_722d_7361_6c65_2d72_6566_756e);

/// The refund a step asks for: the same on every delivery of the step.
pub fn refund_id(request_id: Uuid) -> Uuid {
    Uuid::new_v5(&REFUND_IDS, request_id.as_bytes())
}

/// The reference a step's status entry carries, so a redelivery finds it.
pub fn entry_reference(request_id: Uuid) -> String {
    format!("after-sale:{request_id}")
}

pub struct OrderTx {
    pub tx: Transaction<'static, Postgres>,
    pub order: LockedOrder,
    pub lines: Vec<Line>,
}

impl OrderTx {
    /// Begins the transaction and locks the order; `None` when there is no such order.
    pub async fn lock(db: &sqlx::PgPool, order_id: Uuid) -> Result<Option<Self>, Failure> {
        let mut tx = db.begin().await?;
        let Some(order) = sqlx::query_as!(
            LockedOrder,
            r#"SELECT id, user_id, status AS "status: OrderStatus" FROM orders
                WHERE id = $1 FOR UPDATE"#,
            order_id,
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let lines = sqlx::query_as!(
            Line,
            r#"SELECT product_id, quantity, unit_price AS "unit_price!", fulfilled_quantity AS fulfilled,
                      cancelled_quantity AS cancelled, delivered_quantity AS delivered,
                      returned_quantity AS returned, return_requested_quantity AS return_requested
                 FROM order_items WHERE order_id = $1 AND unit_price IS NOT NULL
                ORDER BY product_id"#,
            order_id,
        )
        .fetch_all(&mut *tx)
        .await?;
        Ok(Some(OrderTx { tx, order, lines }))
    }

    /// The line of `product_id`, or a refusal naming it.
    pub fn line(&self, product_id: Uuid) -> Result<&Line, Refused> {
        self.lines
            .iter()
            .find(|l| l.product_id == product_id)
            .ok_or_else(|| Refused(format!("product {product_id} is not a line of this order")))
    }

    /// The status the lines make of a shipped order: `SHIPPED` once nothing is left,
    /// `PARTIALLY_SHIPPED` while something is.
    pub fn derived_status(&self) -> OrderStatus {
        if self.lines.iter().all(|l| l.left() == 0) {
            OrderStatus::Shipped
        } else {
            OrderStatus::PartiallyShipped
        }
    }

    /// Moves the order to `to` with its timeline entry (under the step's reference), and
    /// turns the reservations still held into a sale once it is `SHIPPED`. Gives the status
    /// event, or `None` when the order is already there.
    pub async fn move_to(
        &mut self,
        to: OrderStatus,
        actor: &str,
        reason: &str,
        request_id: Uuid,
    ) -> Result<Option<OrderStatusChanged>, Failure> {
        let from = self.order.status;
        if from == to {
            return Ok(None);
        }
        let reason: String = reason.chars().take(MAX_STORED_REASON_CHARS).collect();
        sqlx::query!(
            "UPDATE orders SET status = $2 WHERE id = $1",
            self.order.id,
            to as OrderStatus,
        )
        .execute(&mut *self.tx)
        .await?;
        let entry = sqlx::query!(
            r#"INSERT INTO order_events (order_id, from_status, to_status, actor, reason, reference)
               VALUES ($1, $2, $3, $4, $5, $6)
               RETURNING id, at"#,
            self.order.id,
            from as OrderStatus,
            to as OrderStatus,
            actor,
            reason,
            entry_reference(request_id),
        )
        .fetch_one(&mut *self.tx)
        .await?;
        if to == OrderStatus::Shipped {
            sqlx::query!(
                "UPDATE reservations SET state = $2 WHERE order_id = $1 AND state = $3",
                self.order.id,
                ReservationState::Committed as ReservationState,
                ReservationState::Reserved as ReservationState,
            )
            .execute(&mut *self.tx)
            .await?;
        }
        crate::counters::record_transition(to);
        self.order.status = to;
        Ok(Some(OrderStatusChanged {
            order_id: self.order.id,
            user_id: self.order.user_id,
            from: Some(from),
            to,
            at: entry.at,
            actor: actor.to_owned(),
            reason: Some(reason),
            entry_id: Some(entry.id),
            shipment: None,
        }))
    }

    /// Asks for `value` (minor units) back through the refund path, capped at what the order
    /// captured and has not refunded or asked to refund; nothing when that is 0. Gives the
    /// refund as recorded.
    pub async fn refund(
        &mut self,
        request_id: Uuid,
        value: i64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<RefundRow>, Failure> {
        let id = refund_id(request_id);
        let reason: String = reason.chars().take(MAX_STORED_REASON_CHARS).collect();
        sqlx::query!(
            "INSERT INTO refunds (id, order_id, amount, currency, reason, actor)
             SELECT $1, o.id, least($2::int8, l.left_to_refund), o.currency, $3, $4
               FROM orders o
              CROSS JOIN LATERAL (
                    SELECT o.amount_paid - coalesce(sum(r.amount), 0)::int8 AS left_to_refund
                      FROM refunds r
                     WHERE r.order_id = o.id AND r.payment_reference IS NULL
                       AND r.status IN ('REQUESTED', 'SUCCEEDED')) l
              WHERE o.id = $5 AND least($2::int8, l.left_to_refund) > 0
             ON CONFLICT (id) DO NOTHING",
            id,
            value,
            reason,
            actor,
            self.order.id,
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(crate::refunds::rows(&mut self.tx, &[id]).await?.remove(&id))
    }

    /// Records the step made under its request, then commits.
    pub async fn commit(mut self, request_id: Uuid) -> Result<(), Failure> {
        sqlx::query!(
            "INSERT INTO after_sale_outcomes (request_id, order_id) VALUES ($1, $2)
             ON CONFLICT (request_id) DO NOTHING",
            request_id,
            self.order.id,
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// A step's outcome as recorded before: `Some(None)` made, `Some(Some(why))` refused.
pub async fn recorded_outcome(
    db: &sqlx::PgPool,
    request_id: Uuid,
) -> Result<Option<Option<String>>, Failure> {
    Ok(sqlx::query_scalar!(
        "SELECT refusal FROM after_sale_outcomes WHERE request_id = $1",
        request_id,
    )
    .fetch_optional(db)
    .await?)
}

/// Records that the step asked for under `request_id` was made (by a path with its own
/// transaction).
pub async fn record_made(
    db: &sqlx::PgPool,
    request_id: Uuid,
    order_id: Uuid,
) -> Result<(), Failure> {
    sqlx::query!(
        "INSERT INTO after_sale_outcomes (request_id, order_id) VALUES ($1, $2)
         ON CONFLICT (request_id) DO NOTHING",
        request_id,
        order_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records that the step asked for under `request_id` was refused, and why.
pub async fn record_refusal(
    db: &sqlx::PgPool,
    request_id: Uuid,
    order_id: Uuid,
    why: &str,
) -> Result<(), Failure> {
    let why: String = why.chars().take(2000).collect();
    sqlx::query!(
        "INSERT INTO after_sale_outcomes (request_id, order_id, refusal) VALUES ($1, $2, $3)
         ON CONFLICT (request_id) DO NOTHING",
        request_id,
        order_id,
        why,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The status entry a step made before (a redelivery), as its event.
pub async fn recorded_status_event(
    db: &sqlx::PgPool,
    order_id: Uuid,
    request_id: Uuid,
) -> Result<Option<OrderStatusChanged>, Failure> {
    let row = sqlx::query!(
        r#"SELECT o.user_id, e.from_status AS "from_status: OrderStatus",
                  e.to_status AS "to_status: OrderStatus", e.id, e.at, e.actor, e.reason
             FROM order_events e JOIN orders o ON o.id = e.order_id
            WHERE e.order_id = $1 AND e.reference = $2"#,
        order_id,
        entry_reference(request_id),
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| OrderStatusChanged {
        order_id,
        user_id: r.user_id,
        from: r.from_status,
        to: r.to_status,
        at: r.at,
        actor: r.actor,
        reason: r.reason,
        entry_id: Some(r.id),
        shipment: None,
    }))
}

/// Now, as the database sees it (the return window is judged against its clock).
pub async fn now(tx: &mut Transaction<'static, Postgres>) -> Result<DateTime<Utc>, Failure> {
    Ok(sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&mut **tx)
        .await?)
}
