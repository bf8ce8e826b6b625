//! Cancelling a paid order gives its money back: the move into CANCELLED records a refund of
//! whatever the order captured and has not refunded (or asked to refund) yet, in the
//! transition's transaction; the payment system is asked for it after the commit.

use super::RefundRow;
use crate::consumer::Failure;
use common::domain::{MAX_STORED_REASON_CHARS, RefundStatus};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

pub type Requested = RefundRow;

/// Fixed namespace of the refund ids cancellations derive (UUID v5).
const CANCEL_REFUND_NAMESPACE: Uuid = Uuid::from_u128(0x7265_6675_6e64_2d6f_6e2d_6361_6e63_656c);

/// A cancellation in a transitions transaction.
pub struct Cancel {
    pub order_id: Uuid,
    /// Who cancelled; `None` for a cancellation made before (a redelivery), which records
    /// nothing new and only finds its refund.
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// The id of the refund an order's cancellation requests: the same on every delivery.
pub fn refund_id(order_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &CANCEL_REFUND_NAMESPACE,
        format!("order:{order_id}:cancel").as_bytes(),
    )
}

/// Records, for each new cancellation, a refund of the money its order captured and has not
/// refunded or asked to refund (none when there is nothing left), and gives the refunds of
/// these cancellations still waiting for the payment system, by order. The orders are locked.
pub async fn refund_on_cancel(
    tx: &mut Transaction<'static, Postgres>,
    cancels: &[Cancel],
) -> Result<HashMap<Uuid, Requested>, Failure> {
    let fresh: Vec<&Cancel> = cancels.iter().filter(|c| c.actor.is_some()).collect();
    if !fresh.is_empty() {
        let refund_ids: Vec<Uuid> = fresh.iter().map(|c| refund_id(c.order_id)).collect();
        let order_ids: Vec<Uuid> = fresh.iter().map(|c| c.order_id).collect();
        let actors: Vec<Option<&str>> = fresh.iter().map(|c| c.actor.as_deref()).collect();
        let reasons: Vec<String> = fresh.iter().map(|c| reason(c.reason.as_deref())).collect();
        sqlx::query!(
            "INSERT INTO refunds (id, order_id, amount, currency, reason, actor)
             SELECT c.refund_id, o.id, l.left_to_refund, o.currency, c.reason, c.actor
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])
                    AS c(refund_id, order_id, actor, reason)
               JOIN orders o ON o.id = c.order_id
              CROSS JOIN LATERAL (
                    SELECT o.amount_paid - coalesce(sum(r.amount), 0)::int8 AS left_to_refund
                      FROM refunds r
                     WHERE r.order_id = o.id AND r.payment_reference IS NULL
                       AND r.status IN ('REQUESTED', 'SUCCEEDED')) l
              WHERE l.left_to_refund > 0
             ON CONFLICT (id) DO NOTHING",
            &refund_ids,
            &order_ids,
            &actors as &[Option<&str>],
            &reasons,
        )
        .execute(&mut **tx)
        .await?;
    }
    let ids: Vec<Uuid> = cancels.iter().map(|c| refund_id(c.order_id)).collect();
    Ok(super::rows(tx, &ids)
        .await?
        .into_values()
        .filter(|r| r.status == RefundStatus::Requested)
        .map(|r| (r.order_id, r))
        .collect())
}

/// The refund's reason: the cancellation's, within the bound.
fn reason(cancelled_because: Option<&str>) -> String {
    match cancelled_because {
        Some(r) => format!("order cancelled: {r}")
            .chars()
            .take(MAX_STORED_REASON_CHARS)
            .collect(),
        None => "order cancelled".to_owned(),
    }
}
