//! Refunds (order worker): an ADMIN's refund requests (`orders.cmd.refund`), the refunds that
//! cancelling a paid order requests, and the payment system's answers
//! (`payments.evt.refunded`, `payments.evt.refund_failed`).
//!
//! A refund is recorded `REQUESTED` under its order's row lock, only if the order's `REQUESTED`
//! and `SUCCEEDED` refunds stay within what was paid, and the payment system is asked for it
//! (`payments.cmd.refund`, message id `refund-<refund_id>`) after the commit; one that would
//! take more is recorded `REFUSED` with the reason, and never asked for. Its answer is
//! recorded once per provider reference: `SUCCEEDED` adds the amount to the order's
//! `amount_refunded` in the same transaction; `FAILED` leaves the money counted as paid, so it
//! may be refunded anew. Each change is published as `orders.evt.refund_changed`.
//!
//! Idempotent: a refund id is recorded once (primary key) and an answer once per provider
//! reference (unique), so a redelivered message finds its work done and publishes its
//! follow-ups again, under the same message ids.

pub mod answer;
pub mod cancel;
pub mod request;

use crate::consumer::Failure;
use crate::context::Context;
use chrono::{DateTime, Utc};
use common::domain::{PaymentStatus, RefundStatus};
use common::messages::{RefundChanged, RefundPayment};
use common::money::{Currency, Money};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// A refund as recorded, with its order's money as it stands: what is published about it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefundRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub payment_reference: Option<String>,
    pub amount: Money,
    pub currency: Currency,
    pub reason: String,
    pub actor: String,
    pub status: RefundStatus,
    pub at: DateTime<Utc>,
    pub failure_reason: Option<String>,
    pub amount_paid: i64,
    pub amount_refunded: i64,
    /// The payment the money came from: the refunded payment, else the order's applied one.
    pub paid_with: Option<String>,
    /// The timeline entry of the refund's latest change.
    pub entry_id: i64,
}

impl RefundRow {
    /// The command to the payment system, while the refund waits for it.
    pub fn command(&self) -> Option<RefundPayment> {
        (self.status == RefundStatus::Requested).then(|| RefundPayment {
            refund_id: self.id,
            order_id: self.order_id,
            amount: self.amount,
            currency: self.currency.clone(),
            payment_reference: self.paid_with.clone(),
            reason: self.reason.clone(),
        })
    }

    /// The order event of the refund's current status.
    pub fn event(&self) -> RefundChanged {
        RefundChanged {
            order_id: self.order_id,
            user_id: self.user_id,
            refund_id: self.id,
            status: self.status,
            amount: self.amount,
            currency: self.currency.clone(),
            payment_reference: self.payment_reference.clone(),
            at: self.at,
            actor: self.actor.clone(),
            reason: match self.status {
                RefundStatus::Failed | RefundStatus::Refused => self.failure_reason.clone(),
                _ => Some(self.reason.clone()),
            },
            payment_status: PaymentStatus::of(self.amount_paid, self.amount_refunded),
            amount_paid: self.amount_paid,
            amount_refunded: self.amount_refunded,
            entry_id: Some(self.entry_id),
        }
    }
}

/// Reads refunds by id, with their orders' money, inside the step's transaction.
pub async fn rows(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, RefundRow>, Failure> {
    let rows = sqlx::query_as!(
        RefundRow,
        r#"SELECT r.id, r.order_id, o.user_id, r.payment_reference, r.amount AS "amount: Money",
                  r.currency AS "currency: Currency", r.reason,
                  r.actor, r.status AS "status: RefundStatus",
                  coalesce(r.settled_at, r.requested_at) AS "at!", r.failure_reason,
                  o.amount_paid, o.amount_refunded,
                  coalesce(r.payment_reference,
                           (SELECT p.provider_reference FROM payments p
                             WHERE p.order_id = r.order_id AND p.kind = 'succeeded'
                               AND p.outcome = 'applied'
                             ORDER BY p.received_at LIMIT 1)) AS paid_with,
                  coalesce(r.settled_entry_id, r.requested_entry_id) AS "entry_id!"
             FROM refunds r JOIN orders o ON o.id = r.order_id
            WHERE r.id = ANY($1)"#,
        ids,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Locks the orders in id order, as every transaction over orders does, and gives the ids
/// of those that exist.
pub async fn lock_orders(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, Failure> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    Ok(sqlx::query_scalar!(
        "SELECT id FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &ids,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Publishes what a step's refunds lead to: the command to the payment system while a refund
/// waits for it, then the order event of its status. Each is acknowledged by JetStream.
pub async fn publish(
    ctx: &Context,
    refunds: &[RefundRow],
    correlation_id: &common::correlation::CorrelationId,
) -> Result<(), Failure> {
    for refund in refunds {
        if let Some(command) = refund.command() {
            ctx.bus.publish(command, correlation_id).await?;
        }
        ctx.bus.publish(refund.event(), correlation_id).await?;
    }
    Ok(())
}
