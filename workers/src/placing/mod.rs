//! Placing orders (`orders.cmd.place`, inventory worker): each order is recorded once,
//! `CONFIRMED` with every line's stock reserved or `REJECTED` with the reason, in one
//! transaction per batch of commands; then, per order, its outcome to the reply subject its
//! command names (if any, core NATS, see [`common::messages::PlacedOutcome`]) and one
//! `orders.evt.status_changed`.
//!
//! Idempotent: an order id is recorded once. A redelivered command finds its order and
//! publishes the recorded event again (same message id, dropped by the server inside its
//! duplicate window); copies of a command received together share one outcome.

pub mod decide;
mod new_order;
pub mod record;
mod rows;

use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use common::messages::{PlaceOrder, PlacedOutcome};
use common::shipping::ShippingAddress;
use new_order::NewOrder;
use record::Placed;

/// How long an outcome reply may wait for room in the client's queue.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// Handles the place commands received together.
pub async fn place(ctx: Context, commands: Vec<Incoming<PlaceOrder>>) -> Vec<Handled> {
    // One entry per order id; `owner[i]` is the entry command `i` is a copy of.
    let mut orders: Vec<NewOrder> = Vec::new();
    let mut owner: Vec<Result<usize, Failure>> = Vec::with_capacity(commands.len());
    for command in &commands {
        owner.push(checked(command).and_then(|order| {
            match orders.iter().position(|o| o.order_id == order.order_id) {
                None => {
                    orders.push(order);
                    Ok(orders.len() - 1)
                }
                Some(k) if orders[k].same_as(&order) => Ok(k),
                Some(_) => Err(reused(&order)),
            }
        }));
    }

    let placed = record_all(&ctx, orders.clone()).await;
    // Each order's event is published by the first command that asked for it, in that
    // command's trace; copies share its result. A command that names a reply subject gets the
    // outcome there first, without waiting for anything: the api waiting on it answers at
    // once, and falls back to the event should the reply be lost.
    let first: Vec<usize> = (0..orders.len())
        .filter_map(|k| owner.iter().position(|o| matches!(o, Ok(j) if *j == k)))
        .collect();
    let published: Vec<Handled> =
        futures::future::join_all(first.iter().zip(placed).map(|(&i, placed)| {
            let ctx = &ctx;
            let command = &commands[i];
            command.within(async move {
                let placed = placed?;
                if let (Some(reply_to), Some(outcome)) = (&command.reply_to, &placed.outcome) {
                    reply(ctx, reply_to, outcome).await;
                }
                ctx.bus
                    .publish(placed.event, &command.correlation_id)
                    .await?;
                Ok(())
            })
        }))
        .await;
    owner
        .into_iter()
        .map(|o| o.and_then(|k| published[k].as_ref().map(|_| ()).map_err(Failure::shared)))
        .collect()
}

/// Records the orders (one transaction, see [`crate::batch::all_or_each`]) and announces the
/// stock they took.
async fn record_all(ctx: &Context, orders: Vec<NewOrder>) -> Vec<Result<Placed, Failure>> {
    let placed = crate::batch::all_or_each(orders, |some| record::record(ctx, some)).await;
    let took = placed
        .iter()
        .flatten()
        .flat_map(|p| p.took.iter().copied())
        .collect();
    // Before the events: whoever learns an order's outcome then reads the stock it left.
    ctx.notices.stock_changed(took).await;
    placed
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

/// The order the command asks for (its lines and address are checked by their types, as it
/// decoded).
fn checked(command: &Incoming<PlaceOrder>) -> Result<NewOrder, Failure> {
    let place = &command.message;
    Ok(NewOrder {
        order_id: place.order_id,
        user_id: place.user_id,
        lines: place.items.to_vec(),
        shipping_address: place.shipping_address.clone().map(ShippingAddress::from),
        correlation_id: command.correlation_id.clone(),
    })
}

fn reused(order: &NewOrder) -> Failure {
    Failure::permanent(format!(
        "order id {} is already used by a different order",
        order.order_id
    ))
}
