//! What follows a committed step: the stock notice for the api replicas' caches, then each
//! message's status event, published in that message's trace and acknowledged by JetStream
//! before the message itself is acknowledged.

use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use crate::refunds::RefundRow;
use common::messages::{FulfilmentChanged, OrderStatusChanged, ReturnChanged};
use std::collections::HashMap;
use uuid::Uuid;

/// What one message's step committed.
#[derive(Debug, Default)]
pub struct Stepped {
    /// The status event to publish, if the step moved (or had moved) an order.
    pub event: Option<OrderStatusChanged>,
    /// Products whose available stock the step changed.
    pub stock: Vec<Uuid>,
    /// Refunds the step requested or settled (or had): the payment system is asked for those
    /// still requested, and each one's order event is published.
    pub refunds: Vec<RefundRow>,
    /// Shipments and returns the step made or changed, each announced after the status event.
    pub changes: Vec<Change>,
}

/// A change of a shipment or a return, to announce.
#[derive(Debug, Clone)]
pub enum Change {
    Fulfilment(FulfilmentChanged),
    Return(ReturnChanged),
}

/// Each decision's step: the refund it recorded or found, as read back with `rows` before
/// the commit.
pub fn refund_steps(
    decided: Vec<Result<Uuid, Failure>>,
    rows: &HashMap<Uuid, RefundRow>,
) -> Vec<Result<Stepped, Failure>> {
    decided
        .into_iter()
        .map(|d| {
            let id = d?;
            let refund = rows
                .get(&id)
                .cloned()
                .ok_or_else(|| Failure::transient(format!("refund {id} not read back")))?;
            Ok(Stepped {
                refunds: vec![refund],
                ..Stepped::default()
            })
        })
        .collect()
}

/// Announces the stock changes of `results`, then publishes their events: one result per
/// message of `incoming`, in order.
pub async fn announce<M>(
    ctx: &Context,
    incoming: &[Incoming<M>],
    results: Vec<Result<Stepped, Failure>>,
) -> Vec<Handled> {
    let stock = results
        .iter()
        .flatten()
        .flat_map(|s| s.stock.iter().copied())
        .collect();
    // Before the events: whoever learns of a change then reads the stock it left.
    ctx.notices.stock_changed(stock).await;
    futures::future::join_all(incoming.iter().zip(results).map(|(message, result)| {
        message.within(async move {
            let stepped = result?;
            if let Some(event) = stepped.event {
                ctx.bus.publish(event, &message.correlation_id).await?;
            }
            for change in stepped.changes {
                match change {
                    Change::Fulfilment(e) => {
                        ctx.bus.publish(e, &message.correlation_id).await?;
                    }
                    Change::Return(e) => {
                        ctx.bus.publish(e, &message.correlation_id).await?;
                    }
                }
            }
            crate::refunds::publish(ctx, &stepped.refunds, &message.correlation_id).await
        })
    }))
    .await
}
