//! Status transitions (`orders.cmd.transition`, order worker): staff, customers and the expiry
//! sweeper transition orders along their lifecycle; warehouses and carriers report the steps
//! after the sale on subjects of their own ([`outside`]). Each batch of commands is one
//! transaction ([`tx`]): every status, its timeline entry, its stock effect (released on every
//! path into CANCELLED, sold at SHIPPED) commit together; then one status event per
//! transition.
//!
//! Idempotent: each status is reached once (`UNIQUE (order_id, to_status)`), so a redelivered
//! command finds its transition made and publishes its recorded event again. A transition the
//! lifecycle (or the command's `allowed_from`) forbids from the order's current status can
//! never succeed: it is dead-lettered naming that status, and changes nothing.

pub mod asked;
pub mod judge;
pub mod outside;
pub mod tx;
mod write;

use crate::announce::{Stepped, announce};
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use asked::Asked;
use common::messages::TransitionOrder;
use tx::{Plan, TransitionTx};

/// Handles the transition commands received together.
pub async fn transition(ctx: Context, commands: Vec<Incoming<TransitionOrder>>) -> Vec<Handled> {
    let results = crate::batch::checked(
        &commands,
        |c| asked(&c.message),
        |some| transition_all(&ctx, some),
    )
    .await;
    announce(&ctx, &commands, results).await
}

/// Makes the transitions in one transaction, in order.
pub(crate) async fn transition_all(
    ctx: &Context,
    asked: Vec<Asked>,
) -> Result<Vec<Result<Stepped, Failure>>, Failure> {
    let ids: Vec<_> = asked.iter().map(|a| a.order_id).collect();
    let mut tx = TransitionTx::lock(ctx, &ids).await?;
    tx.load_references(&asked).await?;
    let planned: Vec<Result<Plan, Failure>> =
        asked.iter().map(|a| tx.transition(a.clone())).collect();
    let again: Vec<Plan> = planned.iter().flatten().copied().collect();
    let committed = tx.commit(&again).await?;
    Ok(planned
        .into_iter()
        .map(|p| {
            let p = p?;
            Ok(Stepped {
                event: Some(committed.event(p)?),
                stock: committed.restocked.clone(),
                refunds: committed.refund(p).into_iter().collect(),
                ..Stepped::default()
            })
        })
        .collect())
}

/// The command, checked: a status staff or systems may set, and a list of statuses to move
/// from, when given, that is not empty. Its texts and shipment fields (only on the move to
/// SHIPPED, whole) were checked as it decoded.
fn asked(command: &TransitionOrder) -> Result<Asked, Failure> {
    if !command.to.is_staff_target() {
        return Err(Failure::permanent(format!(
            "{} is set by the system, not by a transition command",
            command.to
        )));
    }
    if command.allowed_from.as_ref().is_some_and(Vec::is_empty) {
        return Err(Failure::permanent(
            "allowed_from, when given, must name at least one status",
        ));
    }
    let shipment = command.shipment();
    Ok(Asked {
        order_id: command.order_id,
        to: command.to,
        allowed_from: command.allowed_from.clone(),
        actor: command.actor.to_string(),
        reason: command.reason.as_ref().map(ToString::to_string),
        shipment,
        reference: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::domain::{Actor, OrderStatus};
    use uuid::Uuid;

    fn command(to: OrderStatus) -> TransitionOrder {
        TransitionOrder::new(Uuid::nil(), to, Actor::new("a").expect("valid"))
    }

    fn refused(command: &TransitionOrder) -> String {
        match asked(command) {
            Err(Failure::Permanent(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn statuses_the_system_sets_cannot_be_asked_for() {
        for to in OrderStatus::ALL {
            let asked = asked(&command(to));
            if to.is_staff_target() {
                assert!(asked.is_ok(), "{to}");
            } else {
                assert!(refused(&command(to)).contains("set by the system"), "{to}");
            }
        }
    }

    #[test]
    fn the_shipment_a_move_to_shipped_decoded_with_is_asked_for() {
        let json = serde_json::json!({"order_id": Uuid::nil(), "to": "SHIPPED", "actor": "a",
            "carrier": "UPS", "tracking_number": "1Z"});
        let c: TransitionOrder = serde_json::from_value(json).expect("valid");
        let shipment = asked(&c).expect("valid").shipment.expect("a shipment");
        assert_eq!(shipment.tracking_number, "1Z");
    }

    #[test]
    fn an_empty_list_of_allowed_statuses_is_refused() {
        let mut c = command(OrderStatus::Cancelled);
        c.allowed_from = Some(vec![]);
        assert!(refused(&c).starts_with("allowed_from"));
    }
}
