//! The worker kinds and the consumers each one runs.

use crate::consumer::{ConsumerLoop, LoopOptions};
use crate::context::Context;
use crate::dispatch::Dispatch;
use crate::{adjusting, after_sale, payments, placing, refunds, transitions};
use common::messages::{
    AdjustStock, AfterSale, DeliverOrder, FulfilOrder, PaymentFailed, PaymentSucceeded, PlaceOrder,
    RefundFailed, RefundOrder, RefundSucceeded, TransitionOrder,
};
use common::messaging::Message;
use common::nats::{self, ConsumerSpec};
use std::fmt;
use std::future::Future;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Records placed orders with their stock reserved; applies stock adjustments.
    Inventory,
    /// Applies status transitions, warehouses' shipments, carriers' deliveries and payment
    /// events; expires unpaid reservations.
    Orders,
    /// Delivers order events to the webhook endpoints (its loops are in [`crate::webhooks`]).
    Webhooks,
}

/// Durable consumer names (without namespace).
pub const INVENTORY_PLACE: &str = "inventory-place";
pub const INVENTORY_COMMANDS: &str = "inventory-commands";
pub const ORDERS_TRANSITIONS: &str = "orders-transitions";
pub const ORDERS_FULFILMENTS: &str = "orders-fulfilments";
pub const ORDERS_DELIVERIES: &str = "orders-deliveries";
pub const ORDERS_AFTER_SALE: &str = "orders-after-sale";
pub const ORDERS_PAYMENT_EVENTS: &str = "orders-payment-events";
pub const ORDERS_REFUNDS: &str = "orders-refunds";

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Inventory, Kind::Orders, Kind::Webhooks];

    /// The kinds `workers` runs when none is named: all of them, but webhooks only when
    /// `WEBHOOK_ENCRYPTION_KEY` is set (without it no endpoint can exist: the api refuses them).
    pub fn every(config: &common::Config) -> Vec<Kind> {
        let every: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| *k != Kind::Webhooks || config.webhooks.encryption_key().is_some())
            .collect();
        if every.len() < Kind::ALL.len() {
            tracing::warn!(
                "WEBHOOK_ENCRYPTION_KEY is not set: the webhooks worker kind does not run"
            );
        }
        every
    }

    /// The durable consumers of this kind, each with its message routes.
    fn specs(self, ctx: &Context) -> Vec<(ConsumerSpec, Dispatch)> {
        match self {
            Kind::Inventory => vec![
                (
                    ConsumerSpec::new(nats::ORDERS_CMD, INVENTORY_PLACE, PlaceOrder::SUBJECT),
                    Dispatch::new().on(with(ctx, placing::place)),
                ),
                (
                    // Everything under `inventory.cmd.`: a subject nobody handles is
                    // dead-lettered, visibly, instead of waiting in the stream.
                    ConsumerSpec::new(nats::INVENTORY_CMD, INVENTORY_COMMANDS, "inventory.cmd.>"),
                    Dispatch::new().on::<AdjustStock, _, _>(with(ctx, adjusting::adjust)),
                ),
            ],
            Kind::Orders => vec![
                (
                    ConsumerSpec::new(
                        nats::ORDERS_CMD,
                        ORDERS_TRANSITIONS,
                        TransitionOrder::SUBJECT,
                    ),
                    Dispatch::new().on(with(ctx, transitions::transition)),
                ),
                // One consumer per subject outside systems report on: consumers of a
                // work-queue stream may not overlap, and nats-server 2.9 filters one subject
                // per consumer.
                (
                    ConsumerSpec::new(nats::ORDERS_CMD, ORDERS_FULFILMENTS, FulfilOrder::SUBJECT),
                    Dispatch::new().on(with(ctx, transitions::outside::fulfil)),
                ),
                (
                    ConsumerSpec::new(nats::ORDERS_CMD, ORDERS_DELIVERIES, DeliverOrder::SUBJECT),
                    Dispatch::new().on(with(ctx, transitions::outside::deliver)),
                ),
                (
                    ConsumerSpec::new(nats::ORDERS_CMD, ORDERS_AFTER_SALE, AfterSale::SUBJECT),
                    Dispatch::new().on(with(ctx, after_sale::after_sale)),
                ),
                (
                    ConsumerSpec::new(nats::ORDERS_CMD, ORDERS_REFUNDS, RefundOrder::SUBJECT),
                    Dispatch::new().on(with(ctx, refunds::request::request)),
                ),
                (
                    ConsumerSpec::new(nats::EVENTS, ORDERS_PAYMENT_EVENTS, "payments.evt.>"),
                    Dispatch::new()
                        .on::<PaymentSucceeded, _, _>(with(ctx, payments::succeeded))
                        .on::<PaymentFailed, _, _>(with(ctx, payments::failed))
                        .on::<RefundSucceeded, _, _>(with(ctx, refunds::answer::refunded))
                        .on::<RefundFailed, _, _>(with(ctx, refunds::answer::failed)),
                ),
            ],
            Kind::Webhooks => Vec::new(),
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
                chunks_in_flight: chunks_in_flight(&spec.durable),
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

/// Chunks a consumer handles at once. Placements need no order among themselves (each is
/// recorded once, whichever transaction takes it; the products and accounts are locked in id
/// order; the unpaid bound is counted again as the orders are written), so the next chunk's
/// transaction runs while the last one's outcomes and events are published, as a second
/// worker process would. Every other consumer takes its messages in order, one chunk at a
/// time: the steps of one order must not overtake each other.
fn chunks_in_flight(durable: &str) -> usize {
    match durable {
        INVENTORY_PLACE => 2,
        _ => 1,
    }
}

/// Binds a handler function to the worker context.
fn with<D, F, Fut>(ctx: &Context, handler: F) -> impl Fn(D) -> Fut + Send + Sync + 'static
where
    F: Fn(Context, D) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
{
    let ctx = ctx.clone();
    move |messages| handler(ctx.clone(), messages)
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Inventory => "inventory",
            Kind::Orders => "orders",
            Kind::Webhooks => "webhooks",
        })
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inventory" => Ok(Kind::Inventory),
            "orders" => Ok(Kind::Orders),
            "webhooks" => Ok(Kind::Webhooks),
            other => Err(format!(
                "unknown worker kind {other:?}: expected inventory, orders or webhooks"
            )),
        }
    }
}
