//! Payment events (`payments.evt.succeeded`, `payments.evt.failed`, order worker). Each
//! payment is recorded once, by its provider reference, in the transaction of the transition
//! it causes:
//!
//! * succeeded, the right amount and currency, order CONFIRMED: the order becomes PAID;
//! * succeeded otherwise (wrong amount, paid twice, order no longer payable): the order is left
//!   as it is and the payment recorded `refund_required`; money is never lost silently;
//! * failed, order CONFIRMED: the order is CANCELLED and its stock released;
//! * failed otherwise: recorded `ignored`;
//! * an order not recorded yet: retried with backoff (its placement is on its way).
//!
//! A redelivered event finds its payment recorded and, if it moved the order, publishes that
//! transition's event again.

use crate::announce::{Stepped, announce};
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use crate::transitions::asked::{Asked, NewPayment};
use crate::transitions::tx::{Plan, TransitionTx};
use common::domain::{OrderStatus, PaymentKind, PaymentOutcome};
use common::messages::{PaymentFailed, PaymentSucceeded};
use common::money::{Currency, Money};
use uuid::Uuid;

/// Who transitions orders on payment events, in their timeline.
pub const ACTOR: &str = "system:payments";

/// A payment event, checked.
#[derive(Debug, Clone)]
pub struct Payment {
    pub order_id: Uuid,
    pub kind: PaymentKind,
    pub amount: Money,
    pub currency: Currency,
    pub provider_reference: String,
    /// The provider's explanation of a failure.
    pub reason: Option<String>,
}

/// `payments.evt.succeeded`, received together.
pub async fn succeeded(ctx: Context, events: Vec<Incoming<PaymentSucceeded>>) -> Vec<Handled> {
    received(ctx, events, |m| Payment {
        order_id: m.order_id,
        kind: PaymentKind::Succeeded,
        amount: m.amount,
        currency: m.currency.clone(),
        provider_reference: m.provider_reference.to_string(),
        reason: None,
    })
    .await
}

/// `payments.evt.failed`, received together.
pub async fn failed(ctx: Context, events: Vec<Incoming<PaymentFailed>>) -> Vec<Handled> {
    received(ctx, events, |m| Payment {
        order_id: m.order_id,
        kind: PaymentKind::Failed,
        amount: m.amount,
        currency: m.currency.clone(),
        provider_reference: m.provider_reference.to_string(),
        reason: m.reason.as_ref().map(ToString::to_string),
    })
    .await
}

/// Records the payments `events` report, each read by `payment` (its reference and reason
/// bounded by their types as it decoded).
async fn received<M>(
    ctx: Context,
    events: Vec<Incoming<M>>,
    payment: impl Fn(&M) -> Payment,
) -> Vec<Handled> {
    let check = |e: &Incoming<M>| Ok(payment(&e.message));
    let results = crate::batch::checked(&events, check, |some| record_all(&ctx, some)).await;
    announce(&ctx, &events, results).await
}

/// Records the payments, and the transitions they cause, in one transaction, in order.
async fn record_all(
    ctx: &Context,
    payments: Vec<Payment>,
) -> Result<Vec<Result<Stepped, Failure>>, Failure> {
    let ids: Vec<Uuid> = payments.iter().map(|p| p.order_id).collect();
    let mut tx = TransitionTx::lock(ctx, &ids).await?;
    let references: Vec<String> = payments
        .iter()
        .map(|p| p.provider_reference.clone())
        .collect();
    let mut recorded = tx.recorded_payments(&references).await?;
    let mut planned: Vec<Result<Option<Plan>, Failure>> = Vec::with_capacity(payments.len());
    let mut refunds = Vec::new();
    for payment in &payments {
        let reference = &payment.provider_reference;
        let result = match recorded.get(reference) {
            // Recorded before, or earlier in this batch: only its transition's event again.
            Some(&(order_id, kind, outcome)) => Ok(again(order_id, kind, outcome)),
            None => plan(&mut tx, payment).map(|(outcome, note, planned)| {
                recorded.insert(reference.clone(), (payment.order_id, payment.kind, outcome));
                if outcome == PaymentOutcome::RefundRequired {
                    refunds.push((payment, note));
                }
                planned
            }),
        };
        planned.push(result);
    }
    let again: Vec<Plan> = planned.iter().flatten().flatten().copied().collect();
    let committed = tx.commit(&again).await?;
    for (payment, note) in refunds {
        tracing::warn!(order_id = %payment.order_id, reference = %payment.provider_reference,
            note = note.as_deref(), "payment needs a refund");
        metrics::counter!("payments_refund_required_total").increment(1);
    }
    Ok(planned
        .into_iter()
        .map(|p| {
            Ok(Stepped {
                event: p?.map(|p| committed.event(p)).transpose()?,
                stock: committed.restocked.clone(),
                ..Stepped::default()
            })
        })
        .collect())
}

/// Decides what the payment does to its order as it stands, and records it: its outcome, the
/// note recorded with it, and the transition it causes.
fn plan(
    tx: &mut TransitionTx,
    payment: &Payment,
) -> Result<(PaymentOutcome, Option<String>, Option<Plan>), Failure> {
    let Some(order) = tx.order(payment.order_id) else {
        return Err(Failure::transient(format!(
            "payment {} for order {} arrived before the order was recorded",
            payment.provider_reference, payment.order_id
        )));
    };
    let status = order.status;
    let (outcome, note, asked) = match (payment.kind, status) {
        (PaymentKind::Succeeded, OrderStatus::Confirmed)
            if order.total == payment.amount && order.currency == payment.currency =>
        {
            let asked = transition(
                payment,
                OrderStatus::Paid,
                format!("payment {}", payment.provider_reference),
            );
            (PaymentOutcome::Applied, None, Some(asked))
        }
        (PaymentKind::Succeeded, OrderStatus::Confirmed) => {
            let note = format!(
                "amount mismatch: paid {} {}, due {} {}",
                payment.amount, payment.currency, order.total, order.currency
            );
            (PaymentOutcome::RefundRequired, Some(note), None)
        }
        (PaymentKind::Succeeded, _) => (
            PaymentOutcome::RefundRequired,
            Some(format!("order is {status}, not payable")),
            None,
        ),
        (PaymentKind::Failed, OrderStatus::Confirmed) => {
            let reason = match &payment.reason {
                Some(r) => format!("payment_failed: {r}"),
                None => "payment_failed".to_owned(),
            };
            let asked = transition(payment, OrderStatus::Cancelled, reason);
            (PaymentOutcome::Applied, payment.reason.clone(), Some(asked))
        }
        (PaymentKind::Failed, _) => (PaymentOutcome::Ignored, payment.reason.clone(), None),
    };
    let planned = asked.map(|a| tx.transition(a)).transpose()?;
    tx.record_payment(NewPayment {
        provider_reference: payment.provider_reference.clone(),
        order_id: payment.order_id,
        kind: payment.kind,
        amount: payment.amount,
        currency: payment.currency.clone(),
        outcome,
        note: note.clone(),
    });
    Ok((outcome, note, planned))
}

fn transition(payment: &Payment, to: OrderStatus, reason: String) -> Asked {
    Asked {
        order_id: payment.order_id,
        to,
        allowed_from: Some(vec![OrderStatus::Confirmed]),
        actor: ACTOR.into(),
        reason: Some(reason),
        shipment: None,
        reference: None,
    }
}

/// A payment recorded before: if it moved its order, that transition is published again.
fn again(order_id: Uuid, kind: PaymentKind, outcome: PaymentOutcome) -> Option<Plan> {
    (outcome == PaymentOutcome::Applied).then_some(Plan::Again {
        order_id,
        to: match kind {
            PaymentKind::Succeeded => OrderStatus::Paid,
            PaymentKind::Failed => OrderStatus::Cancelled,
        },
    })
}
