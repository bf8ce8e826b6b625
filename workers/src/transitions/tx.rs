//! One transaction of transitions: the orders locked in id order, each transition judged
//! against the order as it stands (including the transitions before it in the batch), then
//! every status, timeline entry, stock effect, shipment and payment record written in one
//! statement.

use super::asked::{Asked, NewPayment};
use super::judge::{Verdict, judge};
use super::write::{Effects, recorded_events, write};
use crate::consumer::Failure;
use crate::context::Context;
use crate::refunds::cancel::{self, Requested};
use common::domain::{OrderStatus, PaymentKind, PaymentOutcome, ReservationState};
use common::messages::OrderStatusChanged;
use common::money::{Currency, Money};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// An order as locked, updated as the batch's transitions are judged.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LockedOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub total: Money,
    pub currency: Currency,
    /// Every status the order has reached (its timeline's targets).
    pub reached: Vec<OrderStatus>,
}

/// What a judged transition leads to once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The order transitions: its event comes from the commit.
    Transition { order_id: Uuid, to: OrderStatus },
    /// The order reached this status before (a redelivery): its recorded event is published
    /// again.
    Again { order_id: Uuid, to: OrderStatus },
}

/// The transaction, between locking and committing.
pub struct TransitionTx {
    tx: Transaction<'static, Postgres>,
    orders: HashMap<Uuid, LockedOrder>,
    transitions: Vec<(OrderStatus, Asked)>,
    payments: Vec<NewPayment>,
    /// The order each outside reference asked for was used on, by target status (see
    /// [`TransitionTx::load_references`]).
    references: HashMap<(OrderStatus, String), Uuid>,
}

/// What the commit wrote: each planned transition's event, the products whose available
/// stock came back, and the refunds requested by cancelling paid orders.
pub struct Commit {
    events: HashMap<(Uuid, OrderStatus), OrderStatusChanged>,
    pub restocked: Vec<Uuid>,
    refunds: HashMap<Uuid, Requested>,
}

impl Commit {
    /// The event of a planned transition.
    pub fn event(&self, planned: Plan) -> Result<OrderStatusChanged, Failure> {
        let (Plan::Transition { order_id, to } | Plan::Again { order_id, to }) = planned;
        self.events
            .get(&(order_id, to))
            .cloned()
            .ok_or_else(|| Failure::transient(format!("no event for order {order_id} to {to}")))
    }

    /// The refund a planned cancellation of a paid order requested (and that is still
    /// waiting for the payment system), to ask the payment system for after the commit.
    pub fn refund(&self, planned: Plan) -> Option<Requested> {
        let (Plan::Transition { order_id, to } | Plan::Again { order_id, to }) = planned;
        (to == OrderStatus::Cancelled)
            .then(|| self.refunds.get(&order_id).cloned())
            .flatten()
    }
}

impl TransitionTx {
    /// Begins the transaction and locks the orders, in id order.
    pub async fn lock(ctx: &Context, order_ids: &[Uuid]) -> Result<Self, Failure> {
        let mut ids = order_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = ctx.db.begin().await?;
        let orders = sqlx::query_as!(
            LockedOrder,
            r#"SELECT o.id, o.user_id, o.status AS "status: OrderStatus", o.total AS "total: Money",
                      o.currency AS "currency: Currency",
                      ARRAY(SELECT e.to_status FROM order_events e WHERE e.order_id = o.id)
                          AS "reached!: Vec<OrderStatus>"
                 FROM orders o WHERE o.id = ANY($1) ORDER BY o.id FOR UPDATE"#,
            &ids,
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
        Ok(TransitionTx {
            tx,
            orders,
            transitions: Vec::new(),
            payments: Vec::new(),
            references: HashMap::new(),
        })
    }

    /// Reads which orders the outside references of `asked` were used on. The orders are
    /// locked, so their entries cannot change meanwhile; a reference another transaction
    /// writes on another order at the same instant is kept apart by the unique index on
    /// `(to_status, reference)`, and its retry finds it here.
    pub async fn load_references(&mut self, asked: &[Asked]) -> Result<(), Failure> {
        let (to, references): (Vec<OrderStatus>, Vec<&str>) = asked
            .iter()
            .filter_map(|a| a.reference.as_deref().map(|r| (a.to, r)))
            .unzip();
        if references.is_empty() {
            return Ok(());
        }
        let used = sqlx::query!(
            r#"SELECT e.order_id, e.to_status AS "to_status: OrderStatus",
                      e.reference AS "reference!"
                 FROM unnest($1::order_status[], $2::text[]) AS w(to_status, reference)
                 JOIN order_events e ON e.to_status = w.to_status AND e.reference = w.reference"#,
            &to as &[OrderStatus],
            &references as &[&str],
        )
        .fetch_all(&mut *self.tx)
        .await?;
        self.references.extend(
            used.into_iter()
                .map(|u| ((u.to_status, u.reference), u.order_id)),
        );
        Ok(())
    }

    /// The order as it stands in this transaction.
    pub fn order(&self, id: Uuid) -> Option<&LockedOrder> {
        self.orders.get(&id)
    }

    /// Judges `asked` against the order as it stands, and plans the transition if it is allowed.
    pub fn transition(&mut self, asked: Asked) -> Result<Plan, Failure> {
        if let Some(reference) = &asked.reference {
            self.judge_reference(&asked, reference)?;
            if let Some(again) = self.made_under(&asked, reference) {
                return Ok(again);
            }
        }
        let order = self.orders.get_mut(&asked.order_id);
        let verdict = judge(
            order.as_deref().map(|o| (o.status, o.reached.as_slice())),
            asked.to,
            asked.allowed_from.as_deref(),
        );
        match (verdict, order) {
            (Verdict::Transition { from }, Some(order)) => {
                order.status = asked.to;
                order.reached.push(asked.to);
                let planned = Plan::Transition {
                    order_id: asked.order_id,
                    to: asked.to,
                };
                if let Some(reference) = &asked.reference {
                    self.references
                        .insert((asked.to, reference.clone()), asked.order_id);
                }
                self.transitions.push((from, asked));
                Ok(planned)
            }
            (Verdict::Again, _) => Ok(Plan::Again {
                order_id: asked.order_id,
                to: asked.to,
            }),
            (Verdict::Refused { current }, _) => Err(Failure::permanent(format!(
                "illegal transition: order {} is {current}, cannot move to {}",
                asked.order_id, asked.to
            ))),
            (Verdict::Missing, _) | (Verdict::Transition { .. }, None) => Err(Failure::permanent(
                format!("unknown order {}", asked.order_id),
            )),
        }
    }

    /// A step under an outside reference is made once: refused when the reference names
    /// another order's step, or when the order made the step otherwise (by hand, or under
    /// another reference: another shipment of a shipped order).
    fn judge_reference(&self, asked: &Asked, reference: &str) -> Result<(), Failure> {
        let to = asked.to;
        match self.references.get(&(to, reference.to_owned())) {
            Some(&used) if used != asked.order_id => Err(Failure::permanent(format!(
                "reference {reference:?} is order {used}'s move to {to}, not order {}'s",
                asked.order_id
            ))),
            Some(_) => Ok(()),
            None => match self.orders.get(&asked.order_id) {
                Some(order) if order.reached.contains(&to) => Err(Failure::permanent(format!(
                    "order {} is already {to}, not under reference {reference:?}",
                    asked.order_id
                ))),
                _ => Ok(()),
            },
        }
    }

    /// The step made before under this reference (a redelivery, a republish): its recorded
    /// event is published again.
    fn made_under(&self, asked: &Asked, reference: &str) -> Option<Plan> {
        (self.references.get(&(asked.to, reference.to_owned())) == Some(&asked.order_id)).then_some(
            Plan::Again {
                order_id: asked.order_id,
                to: asked.to,
            },
        )
    }

    /// Records a payment with the batch.
    pub fn record_payment(&mut self, payment: NewPayment) {
        self.payments.push(payment);
    }

    /// The payments already recorded, by provider reference: their order and outcome.
    pub async fn recorded_payments(
        &mut self,
        references: &[String],
    ) -> Result<HashMap<String, (Uuid, PaymentKind, PaymentOutcome)>, Failure> {
        let rows = sqlx::query!(
            r#"SELECT provider_reference, order_id, kind AS "kind: PaymentKind",
                      outcome AS "outcome: PaymentOutcome"
                 FROM payments
                WHERE provider_reference = ANY($1)"#,
            references,
        )
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.provider_reference, (r.order_id, r.kind, r.outcome)))
            .collect())
    }

    /// Writes every planned transition with its timeline entry, stock effect (released on the way
    /// into CANCELLED, sold at SHIPPED) and shipment, and every payment record, in one
    /// statement, and commits. `again` names the transitions made before whose events are
    /// published again.
    pub async fn commit(mut self, again: &[Plan]) -> Result<Commit, Failure> {
        let cancelled: Vec<Uuid> = self
            .transitions
            .iter()
            .filter(|(_, a)| a.to == OrderStatus::Cancelled)
            .map(|(_, a)| a.order_id)
            .collect();
        if !cancelled.is_empty() {
            // The products whose stock comes back, locked in id order as every writer of stock
            // does, so this cannot deadlock with a placement or an adjustment.
            sqlx::query!(
                "SELECT id FROM products WHERE id IN (
                     SELECT product_id FROM reservations WHERE order_id = ANY($1) AND state = $2)
                  ORDER BY id FOR UPDATE",
                &cancelled,
                ReservationState::Reserved as ReservationState,
            )
            .fetch_all(&mut *self.tx)
            .await?;
        }
        let written = if self.transitions.is_empty() && self.payments.is_empty() {
            Effects::default()
        } else {
            write(&mut self.tx, &self.transitions, &self.payments, &cancelled).await?
        };
        let mut events = HashMap::new();
        for entry in written.entries {
            let Some(order) = self.orders.get(&entry.order_id) else {
                continue;
            };
            crate::counters::record_transition(entry.to_status);
            events.insert(
                (entry.order_id, entry.to_status),
                entry.into_event(order.user_id),
            );
        }
        if events.len() != self.transitions.len() {
            // Cannot happen while the orders are locked; refuse to commit a partial batch.
            return Err(Failure::transient(format!(
                "{} of {} transitions written; retrying",
                events.len(),
                self.transitions.len()
            )));
        }
        let again: Vec<(Uuid, OrderStatus)> = again
            .iter()
            .filter_map(|p| match p {
                Plan::Again { order_id, to } => Some((*order_id, *to)),
                Plan::Transition { .. } => None,
            })
            .collect();
        if !again.is_empty() {
            for (key, event) in recorded_events(&mut self.tx, &again).await? {
                events.insert(key, event);
            }
        }
        // A cancelled order gives back the money it captured, in the same commit: the transitions
        // into CANCELLED request it, and a redelivered cancellation finds it requested.
        let cancels: Vec<cancel::Cancel> = self
            .transitions
            .iter()
            .filter(|(_, a)| a.to == OrderStatus::Cancelled)
            .map(|(_, a)| cancel::Cancel {
                order_id: a.order_id,
                actor: Some(a.actor.clone()),
                reason: a.reason.clone(),
            })
            .chain(
                again
                    .iter()
                    .filter(|(_, to)| *to == OrderStatus::Cancelled)
                    .map(|(order_id, _)| cancel::Cancel {
                        order_id: *order_id,
                        actor: None,
                        reason: None,
                    }),
            )
            .collect();
        let refunds = if cancels.is_empty() {
            HashMap::new()
        } else {
            cancel::refund_on_cancel(&mut self.tx, &cancels).await?
        };
        self.tx.commit().await?;
        if written.released_lines > 0 {
            metrics::counter!("stock_released_lines_total").increment(written.released_lines);
        }
        Ok(Commit {
            events,
            restocked: written.restocked,
            refunds,
        })
    }
}
