//! Refund requests (`orders.cmd.refund`): each is recorded once, under its order's row lock:
//! `REQUESTED` if it stays within the money it returns, and then the payment system is asked
//! for it; else `REFUSED` with the reason, which the order shows and its event announces.

use super::RefundRow;
use crate::announce::{Stepped, announce};
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use common::domain::RefundStatus;
use common::messages::RefundOrder;
use common::money::MAX_MONEY;
use common::refunds::{Refundable, refundable};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Handles the refund requests received together.
pub async fn request(ctx: Context, commands: Vec<Incoming<RefundOrder>>) -> Vec<Handled> {
    let results = crate::batch::checked(
        &commands,
        |c| checked(&c.message),
        |some| request_all(&ctx, some),
    )
    .await;
    announce(&ctx, &commands, results).await
}

/// The command, checked: a positive amount (its texts are bounded by their types, checked as
/// it decoded).
fn checked(command: &RefundOrder) -> Result<RefundOrder, Failure> {
    if command.amount.is_zero() {
        return Err(Failure::permanent(format!(
            "amount must be 1 to {MAX_MONEY} minor units"
        )));
    }
    Ok(command.clone())
}

/// Records the requests in one transaction, in order: each one sees the refunds recorded
/// before it, so together they never take more than was paid.
async fn request_all(
    ctx: &Context,
    commands: Vec<RefundOrder>,
) -> Result<Vec<Result<Stepped, Failure>>, Failure> {
    let mut tx = ctx.db.begin().await?;
    let order_ids: Vec<Uuid> = commands.iter().map(|c| c.order_id).collect();
    let orders = super::lock_orders(&mut tx, &order_ids).await?;
    let ids: Vec<Uuid> = commands.iter().map(|c| c.refund_id).collect();
    let mut known = super::rows(&mut tx, &ids).await?;
    let mut decided = Vec::with_capacity(commands.len());
    for command in &commands {
        let decision = match known.get(&command.refund_id) {
            // Recorded before, or earlier in this batch: its follow-ups again.
            Some(refund) if same(refund, command) => Ok(command.refund_id),
            Some(_) => Err(Failure::permanent(format!(
                "refund {} was requested before with other figures",
                command.refund_id
            ))),
            None if !orders.contains(&command.order_id) => Err(Failure::permanent(format!(
                "unknown order {}",
                command.order_id
            ))),
            None => record(&mut tx, command).await?.map(|()| command.refund_id),
        };
        if decision.is_ok() && !known.contains_key(&command.refund_id) {
            known.extend(super::rows(&mut tx, &[command.refund_id]).await?);
        }
        decided.push(decision);
    }
    let rows = super::rows(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(crate::announce::refund_steps(decided, &rows))
}

fn same(refund: &RefundRow, command: &RefundOrder) -> bool {
    refund.order_id == command.order_id
        && refund.amount == command.amount
        && refund.payment_reference.as_deref() == command.payment_reference.as_deref()
}

/// Records the refund: `REQUESTED` if the money it returns allows it, else `REFUSED` with the
/// reason. `Err` (inside `Ok`) when it names a payment that is not one of the order's to give
/// back, against which nothing can be recorded.
async fn record(
    tx: &mut Transaction<'static, Postgres>,
    command: &RefundOrder,
) -> Result<Result<(), Failure>, Failure> {
    let left = refundable(
        &mut **tx,
        command.order_id,
        command.payment_reference.as_deref(),
    )
    .await?;
    let what = match &command.payment_reference {
        Some(reference) => format!("payment {reference}"),
        None => format!("order {}", command.order_id),
    };
    let (currency, refusal) = match left {
        None => {
            return Ok(Err(Failure::permanent(format!(
                "{what} is not a payment of order {} to refund",
                command.order_id
            ))));
        }
        Some(Refundable {
            paid: 0, currency, ..
        }) => (currency, Some(format!("{what} has no money captured"))),
        Some(Refundable { left, currency, .. }) if left < command.amount.minor_units() => (
            currency,
            Some(format!(
                "over-refund: {} asked of {what}, {left} left to refund",
                command.amount
            )),
        ),
        Some(Refundable { currency, .. }) => (currency, None),
    };
    let status = match &refusal {
        Some(reason) => {
            tracing::info!(refund_id = %command.refund_id, reason, "refund refused");
            RefundStatus::Refused
        }
        None => RefundStatus::Requested,
    };
    sqlx::query!(
        "INSERT INTO refunds (id, order_id, payment_reference, amount, currency, reason, actor,
                              status, failure_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        command.refund_id,
        command.order_id,
        command.payment_reference.as_deref(),
        i64::from(command.amount),
        currency.as_str(),
        command.reason.as_str(),
        command.actor.as_str(),
        status as RefundStatus,
        refusal.as_deref(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(Ok(()))
}
