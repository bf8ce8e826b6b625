//! Steps outside systems report over the bus, each on a subject of its own so that NATS
//! permissions decide who may report what (deploy/nats/auth.conf): a warehouse ships a paid
//! order (`orders.cmd.fulfil`), a carrier delivers a shipped one (`orders.cmd.deliver`).
//!
//! Each becomes a transition made by the one transitions path ([`super::transition_all`]),
//! recorded with the role the subject stands for as its actor, never a name the publisher
//! chose, and the publisher's reference on its timeline entry: a step is made once per
//! reference (a redelivered or republished report publishes its recorded event again), and a
//! reference names one order's step.

use super::asked::{Asked, CARRIER, WAREHOUSE};
use super::transition_all;
use crate::announce::{Stepped, announce};
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use common::domain::OrderStatus;
use common::messages::{DeliverOrder, FulfilOrder};

/// `orders.cmd.fulfil`, received together: shipments of everything left are transitions to
/// SHIPPED, made together; shipments of some lines are after-sale steps, each on its own.
pub async fn fulfil(ctx: Context, commands: Vec<Incoming<FulfilOrder>>) -> Vec<Handled> {
    let ctx = &ctx;
    let results = split(
        &commands,
        |c| c.message.lines.is_some(),
        |c| crate::after_sale::reported_fulfilment(ctx, &c.message),
        |whole| async move {
            crate::batch::checked(
                &whole,
                |c| fulfilment(&c.message),
                |some| transition_all(ctx, some),
            )
            .await
        },
    )
    .await;
    announce(ctx, &commands, results).await
}

/// `orders.cmd.deliver`, received together: deliveries of a whole order are transitions to
/// DELIVERED, made together; deliveries of one shipment are after-sale steps.
pub async fn deliver(ctx: Context, commands: Vec<Incoming<DeliverOrder>>) -> Vec<Handled> {
    let ctx = &ctx;
    let results = split(
        &commands,
        |c| c.message.fulfilment_id.is_some(),
        |c| async move {
            let Some(id) = c.message.fulfilment_id else {
                return Err(Failure::transient("no shipment named"));
            };
            crate::after_sale::reported_delivery(ctx, &c.message, id).await
        },
        |whole| async move {
            crate::batch::checked(
                &whole,
                |c| delivery(&c.message),
                |some| transition_all(ctx, some),
            )
            .await
        },
    )
    .await;
    announce(ctx, &commands, results).await
}

/// One result per command, in order: those `apart` picks handled one by one by `each`, the
/// others together by `together`.
async fn split<'c, M, E, EF, T, TF>(
    commands: &'c [Incoming<M>],
    apart: impl Fn(&Incoming<M>) -> bool,
    each: E,
    together: T,
) -> Vec<Result<Stepped, Failure>>
where
    E: Fn(&'c Incoming<M>) -> EF,
    EF: std::future::Future<Output = Result<Stepped, Failure>>,
    T: FnOnce(Vec<&'c Incoming<M>>) -> TF,
    TF: std::future::Future<Output = Vec<Result<Stepped, Failure>>>,
{
    let (separate, whole): (Vec<_>, Vec<_>) =
        commands.iter().enumerate().partition(|(_, c)| apart(c));
    let mut results: Vec<Option<Result<Stepped, Failure>>> =
        (0..commands.len()).map(|_| None).collect();
    let positions: Vec<usize> = whole.iter().map(|(i, _)| *i).collect();
    let together = together(whole.into_iter().map(|(_, c)| c).collect()).await;
    for (i, result) in positions.into_iter().zip(together) {
        results[i] = Some(result);
    }
    for (i, c) in separate {
        results[i] = Some(c.within(each(c)).await);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::transient("no result"))))
        .collect()
}

/// A shipment of everything left of a PAID order, with its carrier and tracking (checked as
/// the api checks them, as the report decoded).
fn fulfilment(command: &FulfilOrder) -> Result<Asked, Failure> {
    let shipment = Some(command.shipment());
    Ok(step(
        command.order_id,
        OrderStatus::Shipped,
        WAREHOUSE,
        &command.reference,
        shipment,
    ))
}

/// A delivery of a SHIPPED order.
fn delivery(command: &DeliverOrder) -> Result<Asked, Failure> {
    Ok(step(
        command.order_id,
        OrderStatus::Delivered,
        CARRIER,
        &command.reference,
        None,
    ))
}

/// The transition a report asks for, made by `actor` under `reference` wherever the lifecycle
/// allows it (to SHIPPED from PAID only, to DELIVERED from SHIPPED only).
fn step(
    order_id: uuid::Uuid,
    to: OrderStatus,
    actor: &str,
    reference: &str,
    shipment: Option<common::shipping::Shipment>,
) -> Asked {
    Asked {
        order_id,
        to,
        allowed_from: None,
        actor: actor.to_owned(),
        reason: Some(format!("reference {reference}")),
        shipment,
        reference: Some(reference.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::domain::Reference;
    use uuid::Uuid;

    fn fulfil(reference: &str, tracking_url: Option<&str>) -> FulfilOrder {
        FulfilOrder {
            order_id: Uuid::nil(),
            reference: Reference::new(reference).expect("valid"),
            carrier: "UPS".into(),
            tracking_number: "1Z".into(),
            tracking_url: tracking_url.map(str::to_owned),
            lines: None,
        }
    }

    #[test]
    fn a_shipment_is_a_move_to_shipped_by_the_warehouse_under_its_reference() {
        let asked = fulfilment(&fulfil(" wms-7 ", None)).expect("valid");
        assert_eq!(asked.to, OrderStatus::Shipped);
        assert_eq!(asked.actor, WAREHOUSE);
        assert_eq!(asked.reference.as_deref(), Some("wms-7"));
        assert_eq!(asked.shipment.expect("a shipment").carrier, "UPS");
    }

    #[test]
    fn a_delivery_is_a_move_to_delivered_by_the_carrier() {
        let asked = delivery(&DeliverOrder {
            order_id: Uuid::nil(),
            reference: Reference::new("pod-1").expect("valid"),
            fulfilment_id: None,
        })
        .expect("valid");
        assert_eq!(asked.to, OrderStatus::Delivered);
        assert_eq!(asked.actor, CARRIER);
    }

    #[test]
    fn bad_references_and_shipments_are_refused() {
        for bad in [" ".to_owned(), "r".repeat(201)] {
            let report = serde_json::json!({"order_id": Uuid::nil(), "reference": bad,
                "carrier": "UPS", "tracking_number": "1Z"});
            let refused = serde_json::from_value::<FulfilOrder>(report).expect_err("refused");
            assert!(
                refused.to_string().starts_with("must be 1 to 200"),
                "{refused}"
            );
        }
        let bad_url = serde_json::json!({"order_id": Uuid::nil(), "reference": "wms-8",
            "carrier": "UPS", "tracking_number": "1Z", "tracking_url": "ftp://carrier.example/1Z"});
        let refused = serde_json::from_value::<FulfilOrder>(bad_url).expect_err("refused");
        assert!(refused.to_string().starts_with("tracking_url"), "{refused}");
    }
}
