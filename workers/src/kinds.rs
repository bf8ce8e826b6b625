//! The worker kinds and the consumers each one runs.

use crate::Context;
use crate::consumer::{ConsumerLoop, LoopOptions};
use crate::dispatch::Dispatch;
use crate::{inventory, orders};
use common::messages::{
    CommitStock, PaymentFailed, PaymentSucceeded, PlaceOrder, ReleaseStock, ReserveStock,
    StockRejected, StockReserved, TransitionOrder,
};
use common::messaging::Message;
use common::nats::{self, ConsumerSpec};
use std::fmt;
use std::future::Future;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reserves, releases and commits stock.
    Inventory,
    /// Creates orders and applies status transitions.
    Orders,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Inventory, Kind::Orders];

    /// The durable consumers of this kind, each with its message routes.
    fn specs(self, ctx: &Context) -> Vec<(ConsumerSpec, Dispatch)> {
        match self {
            Kind::Inventory => vec![(
                ConsumerSpec::new(nats::INVENTORY_CMD, "inventory-commands", "inventory.cmd.>"),
                Dispatch::new()
                    .on_many(&[ReserveStock::TYPE], with(ctx, inventory::reserve_many))
                    .on(ReleaseStock::TYPE, with(ctx, inventory::release))
                    .on(CommitStock::TYPE, with(ctx, inventory::commit)),
            )],
            Kind::Orders => vec![
                (
                    ConsumerSpec::new(nats::ORDERS_CMD, "orders-commands", "orders.cmd.>"),
                    Dispatch::new()
                        .on_many(&[PlaceOrder::TYPE], with(ctx, orders::place_many))
                        .on(TransitionOrder::TYPE, with(ctx, orders::transition)),
                ),
                (
                    ConsumerSpec::new(nats::EVENTS, "orders-inventory-events", "inventory.evt.>"),
                    Dispatch::new().on_many(
                        &[StockReserved::TYPE, StockRejected::TYPE],
                        with(ctx, orders::on_reserved_many),
                    ),
                ),
                (
                    ConsumerSpec::new(nats::EVENTS, "orders-payment-events", "payments.evt.>"),
                    Dispatch::new()
                        .on(
                            PaymentSucceeded::TYPE,
                            with(ctx, orders::on_payment_succeeded),
                        )
                        .on(PaymentFailed::TYPE, with(ctx, orders::on_payment_failed)),
                ),
            ],
        }
    }

    /// Provisions this kind's durable consumers and returns their loops.
    pub async fn consumers(self, ctx: &Context) -> anyhow::Result<Vec<ConsumerLoop<Dispatch>>> {
        let mut loops = Vec::new();
        for (spec, dispatch) in self.specs(ctx) {
            let consumer =
                nats::provision_consumer(ctx.bus.jetstream(), ctx.bus.namespace(), &spec).await?;
            let options = LoopOptions {
                max_deliver: spec.max_deliver,
                ..LoopOptions::default()
            };
            loops.push(ConsumerLoop::new(
                spec.durable.clone(),
                consumer,
                ctx.bus.clone(),
                dispatch,
                options,
            ));
        }
        Ok(loops)
    }
}

/// Binds a handler function (of one delivery or of many) to the worker context.
fn with<D, F, Fut>(ctx: &Context, handler: F) -> impl Fn(D) -> Fut + Send + Sync + 'static
where
    F: Fn(Context, D) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
{
    let ctx = ctx.clone();
    move |delivery| handler(ctx.clone(), delivery)
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Inventory => "inventory",
            Kind::Orders => "orders",
        })
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inventory" => Ok(Kind::Inventory),
            "orders" => Ok(Kind::Orders),
            other => Err(format!(
                "unknown worker kind {other:?}: expected inventory or orders"
            )),
        }
    }
}
