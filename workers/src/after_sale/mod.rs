//! After the sale (order worker): the steps staff and customers take once an order is paid
//! (`orders.cmd.after_sale`, from the api), and the shipments and deliveries warehouses and
//! carriers report for some quantities or one shipment (`orders.cmd.fulfil` with `lines`,
//! `orders.cmd.deliver` with `fulfilment_id`).
//!
//! Each step is one transaction under the order's row lock ([`order::OrderTx`]): its rows, the
//! per-line quantities (whose bounds the database checks), stock, the order's derived status
//! with its timeline entry, a refund through the refund path, and the step's outcome under the
//! request that asked for it; then its events. A step the order does not allow is refused:
//! the refusal is recorded for the api to answer (409), or dead-lettered with the reason when
//! an outside system reported it. A redelivered step finds its outcome recorded and publishes
//! its events again.

mod ask;
pub mod order;
mod read;
pub mod returns;
pub mod shipping;

pub use ask::{Ask, Made, Refused};

use crate::announce::{Change, Stepped, announce};
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use crate::transitions::asked::Asked;
use common::domain::{Lines, OrderStatus};
use common::messages::{AfterSale, AfterSaleStep, DeliverOrder, FulfilOrder};
use order::OrderTx;
use shipping::Fulfil;
use uuid::Uuid;

/// A step, checked.
enum Step {
    Fulfil(Fulfil),
    Deliver {
        fulfilment_id: Uuid,
        reference: Option<String>,
    },
    CancelRemaining(String),
    RequestReturn(Lines, String),
    ReceiveReturn(Uuid, Vec<Uuid>),
    RejectReturn(Uuid, String),
    CancelReturn(Uuid),
}

/// Fixed namespace of the request ids of steps outside systems report (UUID v5 of the
/// reference).
const REPORTED: Uuid = Uuid::from_u128(0x7265_706f_7274_6564_2d73_7465_7073_0001);

/// `orders.cmd.after_sale`, received together: each step in its own transaction, in order.
pub async fn after_sale(ctx: Context, commands: Vec<Incoming<AfterSale>>) -> Vec<Handled> {
    let mut results = Vec::with_capacity(commands.len());
    for c in &commands {
        results.push(c.within(answered(&ctx, &c.message)).await);
    }
    announce(&ctx, &commands, results).await
}

/// One step asked through the api: made, or refused with the refusal recorded for the api.
async fn answered(ctx: &Context, command: &AfterSale) -> Result<Stepped, Failure> {
    let ask = Ask {
        order_id: command.order_id,
        request_id: command.request_id,
        actor: command.actor.to_string(),
        staff: command.staff,
    };
    let step = checked(&command.step, ask.staff)?;
    match made(ctx, &ask, &step).await? {
        Ok(stepped) => Ok(stepped),
        Err(Refused(why)) => {
            tracing::info!(order_id = %ask.order_id, request_id = %ask.request_id, why,
                "after-sale step refused");
            order::record_refusal(&ctx.db, ask.request_id, ask.order_id, &why).await?;
            Ok(Stepped::default())
        }
    }
}

/// A shipment of some quantities a warehouse reports (`orders.cmd.fulfil` with `lines`).
pub async fn reported_fulfilment(ctx: &Context, c: &FulfilOrder) -> Result<Stepped, Failure> {
    let reference = c.reference.as_str();
    let step = Step::Fulfil(Fulfil {
        lines: c.lines.clone(),
        shipment: Some(c.shipment()),
        reference: Some(reference.to_owned()),
    });
    reported(
        ctx,
        c.order_id,
        "fulfil",
        reference,
        crate::transitions::asked::WAREHOUSE,
        &step,
    )
    .await
}

/// A delivery of one shipment a carrier reports (`orders.cmd.deliver` with `fulfilment_id`).
pub async fn reported_delivery(
    ctx: &Context,
    c: &DeliverOrder,
    fulfilment_id: Uuid,
) -> Result<Stepped, Failure> {
    let reference = c.reference.as_str();
    let step = Step::Deliver {
        fulfilment_id,
        reference: Some(reference.to_owned()),
    };
    reported(
        ctx,
        c.order_id,
        "deliver",
        reference,
        crate::transitions::asked::CARRIER,
        &step,
    )
    .await
}

/// A step an outside system reported under its reference: a refusal is dead-lettered.
async fn reported(
    ctx: &Context,
    order_id: Uuid,
    kind: &str,
    reference: &str,
    actor: &str,
    step: &Step,
) -> Result<Stepped, Failure> {
    let ask = Ask {
        order_id,
        request_id: Uuid::new_v5(&REPORTED, format!("{kind}:{reference}").as_bytes()),
        actor: actor.to_owned(),
        staff: true,
    };
    made(ctx, &ask, step)
        .await?
        .map_err(|Refused(why)| Failure::permanent(why))
}

/// Makes the step, or finds it made (or refused) before.
async fn made(ctx: &Context, ask: &Ask, step: &Step) -> Made {
    if let Some(outcome) = order::recorded_outcome(&ctx.db, ask.request_id).await? {
        return match outcome {
            Some(why) => Ok(Err(Refused(why))),
            None => again(ctx, ask, step).await.map(Ok),
        };
    }
    let Some(mut o) = OrderTx::lock(&ctx.db, ask.order_id).await? else {
        return Ok(Err(Refused(format!("unknown order {}", ask.order_id))));
    };
    let result = match step {
        Step::Fulfil(f) => shipping::fulfil(&mut o, ask, f).await?,
        Step::Deliver {
            fulfilment_id,
            reference,
        } => shipping::deliver(&mut o, ask, *fulfilment_id, reference.as_deref()).await?,
        Step::CancelRemaining(reason)
            if matches!(o.order.status, OrderStatus::Confirmed | OrderStatus::Paid)
                && o.lines.iter().all(|l| l.fulfilled == 0) =>
        {
            drop(o);
            return cancel_whole(ctx, ask, reason).await;
        }
        Step::CancelRemaining(reason) => shipping::cancel_remaining(&mut o, ask, reason).await?,
        Step::RequestReturn(lines, reason) => {
            let window = ctx.config.return_window;
            returns::request(&mut o, ask, lines, reason, window).await?
        }
        Step::ReceiveReturn(id, restock) => returns::receive(&mut o, ask, *id, restock).await?,
        Step::RejectReturn(id, reason) => returns::close(&mut o, ask, *id, Some(reason)).await?,
        Step::CancelReturn(id) => returns::close(&mut o, ask, *id, None).await?,
    };
    match result {
        Ok(stepped) => {
            o.commit(ask.request_id).await?;
            Ok(Ok(stepped))
        }
        // Dropping the transaction rolls back whatever the step had begun.
        Err(refused) => Ok(Err(refused)),
    }
}

/// Cancelling what is left of an order with nothing shipped is cancelling the order: the
/// transitions path does it (stock released, captured money refunded).
async fn cancel_whole(ctx: &Context, ask: &Ask, reason: &str) -> Made {
    let asked = Asked {
        order_id: ask.order_id,
        to: OrderStatus::Cancelled,
        allowed_from: Some(vec![OrderStatus::Confirmed, OrderStatus::Paid]),
        actor: ask.actor.clone(),
        reason: Some(reason.to_owned()),
        shipment: None,
        reference: None,
    };
    let mut results = crate::transitions::transition_all(ctx, vec![asked]).await?;
    match results.pop() {
        Some(Ok(stepped)) => {
            order::record_made(&ctx.db, ask.request_id, ask.order_id).await?;
            Ok(Ok(stepped))
        }
        Some(Err(Failure::Permanent(why))) => Ok(Err(Refused(why))),
        Some(Err(failure)) => Err(failure),
        None => Err(Failure::transient("no result for the cancellation")),
    }
}

/// The events of a step made before, published again.
async fn again(ctx: &Context, ask: &Ask, step: &Step) -> Result<Stepped, Failure> {
    let event = order::recorded_status_event(&ctx.db, ask.order_id, ask.request_id).await?;
    if let (Step::CancelRemaining(reason), None) = (step, &event) {
        // Made as a whole cancellation: the transitions path publishes it again.
        return match cancel_whole(ctx, ask, reason).await? {
            Ok(stepped) => Ok(stepped),
            Err(Refused(why)) => Err(Failure::permanent(why)),
        };
    }
    let mut tx = ctx.db.begin().await?;
    let (change, refund) = match step {
        Step::Fulfil(_) => (
            read::fulfilment_changed(&mut tx, ask.request_id)
                .await?
                .map(Change::Fulfilment),
            None,
        ),
        Step::Deliver { fulfilment_id, .. } => (
            read::fulfilment_changed(&mut tx, *fulfilment_id)
                .await?
                .map(Change::Fulfilment),
            None,
        ),
        Step::CancelRemaining(_) => (None, Some(order::refund_id(ask.request_id))),
        Step::RequestReturn(..) => (
            read::return_changed(&mut tx, ask.request_id)
                .await?
                .map(Change::Return),
            None,
        ),
        Step::ReceiveReturn(id, _) => (
            read::return_changed(&mut tx, *id)
                .await?
                .map(Change::Return),
            Some(order::refund_id(*id)),
        ),
        Step::RejectReturn(id, _) | Step::CancelReturn(id) => (
            read::return_changed(&mut tx, *id)
                .await?
                .map(Change::Return),
            None,
        ),
    };
    let refunds = match refund {
        Some(id) => crate::refunds::rows(&mut tx, &[id])
            .await?
            .into_values()
            .collect(),
        None => Vec::new(),
    };
    tx.commit().await?;
    Ok(Stepped {
        event,
        refunds,
        changes: change.into_iter().collect(),
        ..Stepped::default()
    })
}

/// The step as asked, staff-only steps refused to anyone else (its lines, texts and shipment
/// were checked as it decoded).
fn checked(step: &AfterSaleStep, staff: bool) -> Result<Step, Failure> {
    let staff_only = |what: &str| -> Result<(), Failure> {
        if staff {
            Ok(())
        } else {
            Err(Failure::permanent(format!("only staff may {what}")))
        }
    };
    Ok(match step {
        AfterSaleStep::Fulfil {
            lines,
            carrier,
            tracking_number,
            tracking_url,
        } => {
            staff_only("ship")?;
            Step::Fulfil(Fulfil {
                lines: Some(lines.clone()),
                shipment: Some(common::shipping::Shipment {
                    carrier: carrier.clone(),
                    tracking_number: tracking_number.clone(),
                    tracking_url: tracking_url.clone(),
                }),
                reference: None,
            })
        }
        AfterSaleStep::Deliver { fulfilment_id } => {
            staff_only("mark a shipment delivered")?;
            Step::Deliver {
                fulfilment_id: *fulfilment_id,
                reference: None,
            }
        }
        AfterSaleStep::CancelRemaining { reason } => {
            staff_only("cancel what is left of an order")?;
            Step::CancelRemaining(reason.to_string())
        }
        AfterSaleStep::RequestReturn { lines, reason } => {
            Step::RequestReturn(lines.clone(), reason.to_string())
        }
        AfterSaleStep::ReceiveReturn { return_id, restock } => {
            staff_only("receive a return")?;
            Step::ReceiveReturn(*return_id, restock.clone())
        }
        AfterSaleStep::RejectReturn { return_id, reason } => {
            staff_only("reject a return")?;
            Step::RejectReturn(*return_id, reason.to_string())
        }
        AfterSaleStep::CancelReturn { return_id } => Step::CancelReturn(*return_id),
    })
}
