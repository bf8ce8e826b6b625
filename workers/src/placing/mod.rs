//! Placing orders (`orders.cmd.place`, inventory worker): each order is recorded once,
//! `CONFIRMED` with every line's stock reserved or `REJECTED` with the reason, in one
//! transaction per batch of commands; then one `orders.evt.status_changed` per order.
//!
//! Idempotent: an order id is recorded once. A redelivered command finds its order and
//! publishes the recorded event again (same message id, dropped by the server inside its
//! duplicate window); copies of a command received together share one outcome.

pub mod decide;
pub mod record;
mod rows;

use crate::Context;
use crate::consumer::{Failure, Handled};
use crate::dispatch::Incoming;
use common::messages::{OrderStatusChanged, PlaceOrder, normalise_lines};
use common::shipping::describe;
use record::NewOrder;

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

    let events = record_all(&ctx, orders.clone()).await;
    // Each order's event is published by the first command that asked for it, in that
    // command's trace; copies share its result.
    let first: Vec<usize> = (0..orders.len())
        .filter_map(|k| owner.iter().position(|o| matches!(o, Ok(j) if *j == k)))
        .collect();
    let published: Vec<Handled> =
        futures::future::join_all(first.iter().zip(events).map(|(&i, event)| {
            let ctx = &ctx;
            let command = &commands[i];
            command.within(async move {
                let event = event?;
                ctx.bus.publish(event, &command.correlation_id).await?;
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
async fn record_all(
    ctx: &Context,
    orders: Vec<NewOrder>,
) -> Vec<Result<OrderStatusChanged, Failure>> {
    let placed = crate::batch::all_or_each(orders, |some| record::record(ctx, some)).await;
    let took = placed
        .iter()
        .flatten()
        .flat_map(|p| p.took.iter().copied())
        .collect();
    // Before the events: whoever learns an order's outcome then reads the stock it left.
    ctx.notices.stock_changed(took).await;
    placed.into_iter().map(|p| p.map(|p| p.event)).collect()
}

/// The command's lines merged and bounded and its address normalised, as the api checks them.
fn checked(command: &Incoming<PlaceOrder>) -> Result<NewOrder, Failure> {
    let place = &command.message;
    let invalid = |errors: Vec<(String, String)>| {
        Failure::permanent(format!("invalid order: {}", describe(&errors)))
    };
    let lines = normalise_lines(&place.items).map_err(invalid)?;
    let shipping_address = place
        .shipping_address
        .as_ref()
        .map(|a| a.normalised("shipping_address"))
        .transpose()
        .map_err(invalid)?;
    Ok(NewOrder {
        order_id: place.order_id,
        user_id: place.user_id,
        lines,
        shipping_address,
        correlation_id: command.correlation_id.clone(),
    })
}

fn reused(order: &NewOrder) -> Failure {
    Failure::permanent(format!(
        "order id {} is already used by a different order",
        order.order_id
    ))
}
