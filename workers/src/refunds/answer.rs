//! The payment system's refund answers (`payments.evt.refunded`, `payments.evt.refund_failed`):
//! each is recorded once, by its provider reference, on a refund still `REQUESTED`. A success
//! adds the amount to the order's `amount_refunded` in the same transaction (a refund of a
//! `refund_required` payment returns money the order never counted as paid, so it adds
//! nothing); a failure leaves the money counted as paid.

use crate::announce::{Stepped, announce};
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use common::domain::RefundStatus;
use common::messages::{RefundFailed, RefundSucceeded};
use common::money::{Currency, Money};
use uuid::Uuid;

/// An answer, as decoded (its reference and reason bounded by their types).
#[derive(Debug, Clone)]
pub struct Answer {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    pub provider_reference: String,
    /// For a success: the amount and currency given back.
    pub given_back: Option<(Money, Currency)>,
    /// For a failure: the provider's explanation.
    pub reason: Option<String>,
}

/// `payments.evt.refunded`, received together.
pub async fn refunded(ctx: Context, events: Vec<Incoming<RefundSucceeded>>) -> Vec<Handled> {
    answered(ctx, events, |m| Answer {
        refund_id: m.refund_id,
        order_id: m.order_id,
        provider_reference: m.provider_reference.to_string(),
        given_back: Some((m.amount, m.currency.clone())),
        reason: None,
    })
    .await
}

/// `payments.evt.refund_failed`, received together.
pub async fn failed(ctx: Context, events: Vec<Incoming<RefundFailed>>) -> Vec<Handled> {
    answered(ctx, events, |m| Answer {
        refund_id: m.refund_id,
        order_id: m.order_id,
        provider_reference: m.provider_reference.to_string(),
        given_back: None,
        reason: m.reason.as_ref().map(ToString::to_string),
    })
    .await
}

/// Records the answers `events` carry, each read by `answer`.
async fn answered<M>(
    ctx: Context,
    events: Vec<Incoming<M>>,
    answer: impl Fn(&M) -> Answer,
) -> Vec<Handled> {
    let check = |e: &Incoming<M>| Ok(answer(&e.message));
    let results = crate::batch::checked(&events, check, |some| record_answers(&ctx, some)).await;
    announce(&ctx, &events, results).await
}

struct Recorded {
    order_id: Uuid,
    status: RefundStatus,
    amount: Money,
    currency: Currency,
    payment_reference: Option<String>,
    provider_reference: Option<String>,
}

/// Records the answers in one transaction, their orders locked in id order.
async fn record_answers(
    ctx: &Context,
    outcomes: Vec<Answer>,
) -> Result<Vec<Result<Stepped, Failure>>, Failure> {
    let mut tx = ctx.db.begin().await?;
    let order_ids: Vec<Uuid> = outcomes.iter().map(|o| o.order_id).collect();
    super::lock_orders(&mut tx, &order_ids).await?;
    let mut decided = Vec::with_capacity(outcomes.len());
    let mut succeeded = 0u64;
    for outcome in &outcomes {
        let recorded = sqlx::query_as!(
            Recorded,
            r#"SELECT order_id, status AS "status: RefundStatus", amount AS "amount: Money",
                      currency AS "currency: Currency",
                      payment_reference, provider_reference
                 FROM refunds WHERE id = $1"#,
            outcome.refund_id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let decision = match recorded {
            None => Err(Failure::permanent(format!(
                "unknown refund {}",
                outcome.refund_id
            ))),
            Some(r) if r.order_id != outcome.order_id => Err(Failure::permanent(format!(
                "refund {} is of order {}, not {}",
                outcome.refund_id, r.order_id, outcome.order_id
            ))),
            // Recorded before (a redelivery, or earlier in this batch): its event again.
            Some(r) if r.provider_reference.as_ref() == Some(&outcome.provider_reference) => {
                Ok(outcome.refund_id)
            }
            Some(r) if r.status != RefundStatus::Requested => Err(Failure::permanent(format!(
                "refund {} is already {} (provider reference {})",
                outcome.refund_id,
                r.status.as_str(),
                r.provider_reference.as_deref().unwrap_or("none")
            ))),
            Some(r) => match &outcome.given_back {
                Some((amount, currency)) if (*amount, currency) != (r.amount, &r.currency) => {
                    Err(Failure::permanent(format!(
                        "refund {} was for {} {}, the payment system gave back {amount} {currency}",
                        outcome.refund_id, r.amount, r.currency
                    )))
                }
                _ => {
                    let applied = record_answer(&mut tx, outcome, &r).await?;
                    if applied.is_ok() && outcome.given_back.is_some() {
                        succeeded += 1;
                    }
                    applied.map(|()| outcome.refund_id)
                }
            },
        };
        decided.push(decision);
    }
    let ids: Vec<Uuid> = outcomes.iter().map(|o| o.refund_id).collect();
    let rows = super::rows(&mut tx, &ids).await?;
    tx.commit().await?;
    if succeeded > 0 {
        metrics::counter!("refunds_succeeded_total").increment(succeeded);
    }
    Ok(crate::announce::refund_steps(decided, &rows))
}

/// Writes the answer on the refund and, for money given back from what the order captured,
/// on the order.
async fn record_answer(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    outcome: &Answer,
    recorded: &Recorded,
) -> Result<Result<(), Failure>, Failure> {
    let taken: Option<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM refunds WHERE provider_reference = $1",
        &outcome.provider_reference,
    )
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(other) = taken {
        return Ok(Err(Failure::permanent(format!(
            "provider reference {} is already recorded for refund {other}",
            outcome.provider_reference
        ))));
    }
    let status = match outcome.given_back {
        Some(_) => RefundStatus::Succeeded,
        None => RefundStatus::Failed,
    };
    sqlx::query!(
        "UPDATE refunds SET status = $2, provider_reference = $3, failure_reason = $4,
                settled_at = clock_timestamp(), settled_entry_id = nextval('order_events_id_seq')
          WHERE id = $1 AND status = 'REQUESTED'",
        outcome.refund_id,
        status as RefundStatus,
        &outcome.provider_reference,
        outcome.reason.as_deref(),
    )
    .execute(&mut **tx)
    .await?;
    if status == RefundStatus::Succeeded && recorded.payment_reference.is_none() {
        sqlx::query!(
            "UPDATE orders SET amount_refunded = amount_refunded + $2 WHERE id = $1",
            recorded.order_id,
            i64::from(recorded.amount),
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(Ok(()))
}
