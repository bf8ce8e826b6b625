//! What follows a committed step: the stock notice for the api replicas' caches, then for
//! each message its outcome to the reply subject it names (placement's, core NATS, not waited
//! for) and its status event, published in that message's trace and acknowledged by JetStream
//! before the message itself is acknowledged.

use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use crate::refunds::RefundRow;
use common::messages::{FulfilmentChanged, OrderStatusChanged, PlacedOutcome, ReturnChanged};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// How long an outcome reply may wait for room in the client's queue.
const REPLY_TIMEOUT: Duration = Duration::from_millis(100);

/// What one message's step committed: the one result every handler's step gives back.
#[derive(Debug, Default)]
pub struct Stepped {
    /// The status event to publish, if the step moved (or had moved) an order.
    pub event: Option<OrderStatusChanged>,
    /// The outcome for the placer waiting on it, sent before the event to the reply subject
    /// the message names (a placement just recorded; none for one recorded before).
    pub outcome: Option<PlacedOutcome>,
    /// Products whose available stock the step changed.
    pub stock: Vec<Uuid>,
    /// The stock the step left of products it read under their locks, changed or not (a
    /// placement: its lines' products, taken or refused).
    pub left: Vec<(Uuid, i32)>,
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

/// Announces the stock changes of `results`, then answers and publishes their events: one
/// result per message of `incoming`, in order.
pub async fn announce<'m, M: 'm>(
    ctx: &Context,
    incoming: impl IntoIterator<Item = &'m Incoming<M>>,
    results: Vec<Result<Stepped, Failure>>,
) -> Vec<Handled> {
    let stock = results
        .iter()
        .flatten()
        .flat_map(|s| s.stock.iter().copied())
        .collect();
    let left = results
        .iter()
        .flatten()
        .flat_map(|s| s.left.iter().copied())
        .collect();
    // Before the events: whoever learns of a change then reads the stock it left.
    ctx.notices.stock_changed(stock, left).await;
    futures::future::join_all(incoming.into_iter().zip(results).map(|(message, result)| {
        message.within(async move {
            let stepped = result?;
            // The api waiting on it answers at once, and falls back to the event should the
            // reply be lost.
            if let (Some(reply_to), Some(outcome)) = (&message.reply_to, &stepped.outcome) {
                reply(ctx, reply_to, outcome).await;
            }
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

/// Sends `outcome` to `reply_to` (core NATS: queued by the client, not waited for). A reply
/// that cannot be sent is only logged: the event that follows settles the order all the same.
async fn reply(ctx: &Context, reply_to: &str, outcome: &PlacedOutcome) {
    let client = ctx.bus.jetstream().client();
    let sent = match serde_json::to_vec(outcome) {
        // Only a full client queue (a connection being re-established) makes this wait.
        Ok(payload) => match tokio::time::timeout(
            REPLY_TIMEOUT,
            client.publish(reply_to.to_owned(), payload.into()),
        )
        .await
        {
            Ok(sent) => sent.map_err(anyhow::Error::new),
            Err(_) => Err(anyhow::anyhow!("client queue full")),
        },
        Err(e) => Err(anyhow::Error::new(e)),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "outcome reply not sent; the status event follows");
    }
}
