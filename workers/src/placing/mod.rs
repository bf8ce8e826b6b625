//! Placing orders (`orders.cmd.place`, inventory worker): each order is recorded once,
//! `CONFIRMED` with every line's stock reserved or `REJECTED` with the reason, in one
//! transaction per batch of commands; then each order is announced ([`crate::announce`]): its
//! outcome to the reply subject its command names (if any, core NATS, see
//! [`common::messages::PlacedOutcome`]) and one `orders.evt.status_changed`.
//!
//! Idempotent: an order id is recorded once. A redelivered command finds its order and
//! publishes the recorded event again (same message id, dropped by the server inside its
//! duplicate window); copies of a command received together share one outcome.

pub mod decide;
pub mod new_order;
pub mod record;
mod rows;

use crate::announce::announce;
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use common::messages::PlaceOrder;
use common::shipping::ShippingAddress;
use new_order::NewOrder;

/// Handles the place commands received together.
pub async fn place(ctx: Context, commands: Vec<Incoming<PlaceOrder>>) -> Vec<Handled> {
    // One entry per order id, announced by the first command that asked for it (`first`), in
    // that command's trace; `owner[i]` is the entry command `i` is a copy of: copies share
    // its result.
    let mut orders: Vec<NewOrder> = Vec::new();
    let mut first: Vec<&Incoming<PlaceOrder>> = Vec::new();
    let mut owner: Vec<Result<usize, Failure>> = Vec::with_capacity(commands.len());
    for command in &commands {
        owner.push(checked(command).and_then(|order| {
            match orders.iter().position(|o| o.order_id == order.order_id) {
                None => {
                    orders.push(order);
                    first.push(command);
                    Ok(orders.len() - 1)
                }
                Some(k) if orders[k].same_as(&order) => Ok(k),
                Some(_) => Err(reused(&order)),
            }
        }));
    }

    let recorded =
        crate::batch::all_or_each(orders, |some| record::record(record::Store::of(&ctx), some))
            .await;
    let announced = announce(&ctx, first, recorded).await;
    owner
        .into_iter()
        .map(|o| o.and_then(|k| announced[k].as_ref().map(|_| ()).map_err(Failure::shared)))
        .collect()
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
