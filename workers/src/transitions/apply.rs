//! One transaction of transitions: the orders locked in id order, each transition judged
//! against the order as it stands (including the transitions before it in the batch), then
//! every status, timeline entry, stock effect, shipment and payment record written in one
//! statement.

use super::judge::{Verdict, judge};
use crate::Context;
use crate::consumer::Failure;
use chrono::{DateTime, Utc};
use common::domain::{OrderStatus, PaymentKind, PaymentOutcome, ReservationState};
use common::messages::OrderStatusChanged;
use common::shipping::Shipment;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// A transition asked for.
#[derive(Debug, Clone)]
pub struct Asked {
    pub order_id: Uuid,
    pub to: OrderStatus,
    /// Narrower than the lifecycle: the statuses the order may be in (`None`: any).
    pub allowed_from: Option<Vec<OrderStatus>>,
    pub actor: String,
    pub reason: Option<String>,
    /// Carrier and tracking, with a move to SHIPPED.
    pub shipment: Option<Shipment>,
}

/// An order as locked, updated as the batch's transitions are judged.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LockedOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub total: i64,
    pub currency: String,
    /// Every status the order has reached (its timeline's targets).
    pub reached: Vec<OrderStatus>,
}

/// A payment to record with the batch.
#[derive(Debug, Clone)]
pub struct PaymentRecord {
    pub provider_reference: String,
    pub order_id: Uuid,
    pub kind: PaymentKind,
    pub amount: i64,
    pub currency: String,
    pub outcome: PaymentOutcome,
    pub note: Option<String>,
}

/// What a judged transition leads to once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// The order moves: its event comes from the commit.
    Move { order_id: Uuid, to: OrderStatus },
    /// The order reached this status before (a redelivery): its recorded event is published
    /// again.
    Again { order_id: Uuid, to: OrderStatus },
}

/// The transaction, between locking and committing.
pub struct TransitionTx {
    tx: Transaction<'static, Postgres>,
    orders: HashMap<Uuid, LockedOrder>,
    moves: Vec<(OrderStatus, Asked)>,
    payments: Vec<PaymentRecord>,
}

/// What the commit wrote: each planned transition's event, and the products whose available
/// stock came back.
pub struct Committed {
    events: HashMap<(Uuid, OrderStatus), OrderStatusChanged>,
    pub restocked: Vec<Uuid>,
}

impl Committed {
    /// The event of a planned transition.
    pub fn event(&self, planned: Planned) -> Result<OrderStatusChanged, Failure> {
        let (Planned::Move { order_id, to } | Planned::Again { order_id, to }) = planned;
        self.events
            .get(&(order_id, to))
            .cloned()
            .ok_or_else(|| Failure::transient(format!("no event for order {order_id} to {to}")))
    }
}

impl TransitionTx {
    /// Begins the transaction and locks the orders, in id order.
    pub async fn lock(ctx: &Context, order_ids: &[Uuid]) -> Result<Self, Failure> {
        let mut ids = order_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = ctx.db.begin().await?;
        let orders = sqlx::query_as::<_, LockedOrder>(
            "SELECT o.id, o.user_id, o.status, o.total, o.currency,
                    ARRAY(SELECT e.to_status FROM order_events e WHERE e.order_id = o.id) AS reached
               FROM orders o WHERE o.id = ANY($1) ORDER BY o.id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
        Ok(TransitionTx {
            tx,
            orders,
            moves: Vec::new(),
            payments: Vec::new(),
        })
    }

    /// The order as it stands in this transaction.
    pub fn order(&self, id: Uuid) -> Option<&LockedOrder> {
        self.orders.get(&id)
    }

    /// Judges `asked` against the order as it stands, and plans the move if it is allowed.
    pub fn transition(&mut self, asked: Asked) -> Result<Planned, Failure> {
        let order = self.orders.get_mut(&asked.order_id);
        let verdict = judge(
            order.as_deref().map(|o| (o.status, o.reached.as_slice())),
            asked.to,
            asked.allowed_from.as_deref(),
        );
        match (verdict, order) {
            (Verdict::Move { from }, Some(order)) => {
                order.status = asked.to;
                order.reached.push(asked.to);
                let planned = Planned::Move {
                    order_id: asked.order_id,
                    to: asked.to,
                };
                self.moves.push((from, asked));
                Ok(planned)
            }
            (Verdict::Again, _) => Ok(Planned::Again {
                order_id: asked.order_id,
                to: asked.to,
            }),
            (Verdict::Refused { current }, _) => Err(Failure::permanent(format!(
                "illegal transition: order {} is {current}, cannot move to {}",
                asked.order_id, asked.to
            ))),
            (Verdict::Missing, _) | (Verdict::Move { .. }, None) => Err(Failure::permanent(
                format!("unknown order {}", asked.order_id),
            )),
        }
    }

    /// Records a payment with the batch.
    pub fn record_payment(&mut self, payment: PaymentRecord) {
        self.payments.push(payment);
    }

    /// The payments already recorded, by provider reference: their order and outcome.
    pub async fn recorded_payments(
        &mut self,
        references: &[String],
    ) -> Result<HashMap<String, (Uuid, PaymentKind, PaymentOutcome)>, Failure> {
        let rows: Vec<(String, Uuid, PaymentKind, PaymentOutcome)> = sqlx::query_as(
            "SELECT provider_reference, order_id, kind, outcome FROM payments
              WHERE provider_reference = ANY($1)",
        )
        .bind(references)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(reference, order, kind, outcome)| (reference, (order, kind, outcome)))
            .collect())
    }

    /// Writes every planned move with its timeline entry, stock effect (released on the way
    /// into CANCELLED, sold at SHIPPED) and shipment, and every payment record, in one
    /// statement, and commits. `again` names the transitions made before whose events are
    /// published again.
    pub async fn commit(mut self, again: &[Planned]) -> Result<Committed, Failure> {
        let cancelled: Vec<Uuid> = self
            .moves
            .iter()
            .filter(|(_, a)| a.to == OrderStatus::Cancelled)
            .map(|(_, a)| a.order_id)
            .collect();
        if !cancelled.is_empty() {
            // The products whose stock comes back, locked in id order as every writer of stock
            // does, so this cannot deadlock with a placement or an adjustment.
            sqlx::query(
                "SELECT id FROM products WHERE id IN (
                     SELECT product_id FROM reservations WHERE order_id = ANY($1) AND state = $2)
                  ORDER BY id FOR UPDATE",
            )
            .bind(&cancelled)
            .bind(ReservationState::Reserved)
            .execute(&mut *self.tx)
            .await?;
        }
        let written = if self.moves.is_empty() && self.payments.is_empty() {
            Written::default()
        } else {
            write(&mut self.tx, &self.moves, &self.payments, &cancelled).await?
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
        if events.len() != self.moves.len() {
            // Cannot happen while the orders are locked; refuse to commit a partial batch.
            return Err(Failure::transient(format!(
                "{} of {} transitions written; retrying",
                events.len(),
                self.moves.len()
            )));
        }
        let again: Vec<(Uuid, OrderStatus)> = again
            .iter()
            .filter_map(|p| match p {
                Planned::Again { order_id, to } => Some((*order_id, *to)),
                Planned::Move { .. } => None,
            })
            .collect();
        if !again.is_empty() {
            for (key, event) in recorded_events(&mut self.tx, &again).await? {
                events.insert(key, event);
            }
        }
        self.tx.commit().await?;
        if written.released_lines > 0 {
            metrics::counter!("stock_released_lines_total").increment(written.released_lines);
        }
        Ok(Committed {
            events,
            restocked: written.restocked,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    order_id: Uuid,
    from_status: Option<OrderStatus>,
    to_status: OrderStatus,
    entry_id: i64,
    at: DateTime<Utc>,
    actor: String,
    reason: Option<String>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    tracking_url: Option<String>,
}

impl EntryRow {
    fn into_event(self, user_id: Uuid) -> OrderStatusChanged {
        let shipment = match (self.to_status, self.carrier, self.tracking_number) {
            (OrderStatus::Shipped, Some(carrier), Some(tracking_number)) => Some(Shipment {
                carrier,
                tracking_number,
                tracking_url: self.tracking_url,
            }),
            _ => None,
        };
        OrderStatusChanged {
            order_id: self.order_id,
            user_id,
            from: self.from_status,
            to: self.to_status,
            at: self.at,
            actor: self.actor,
            reason: self.reason,
            entry_id: Some(self.entry_id),
            shipment,
        }
    }
}

#[derive(Default)]
struct Written {
    entries: Vec<EntryRow>,
    restocked: Vec<Uuid>,
    released_lines: u64,
}

#[derive(sqlx::FromRow)]
struct WrittenRow {
    #[sqlx(flatten)]
    entry: EntryRow,
    restocked: Vec<Uuid>,
    released_lines: i64,
}

async fn write(
    tx: &mut Transaction<'static, Postgres>,
    moves: &[(OrderStatus, Asked)],
    payments: &[PaymentRecord],
    cancelled: &[Uuid],
) -> Result<Written, Failure> {
    let shipped: Vec<Uuid> = moves
        .iter()
        .filter(|(_, a)| a.to == OrderStatus::Shipped)
        .map(|(_, a)| a.order_id)
        .collect();
    let seq: Vec<i32> = (0..moves.len())
        .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    let rows: Vec<WrittenRow> = sqlx::query_as(
        r#"
        WITH v AS (
            SELECT * FROM unnest($1::uuid[], $2::order_status[], $3::order_status[], $4::text[],
                                 $5::text[], $6::int4[], $19::text[], $20::text[], $21::text[])
                AS v(id, from_status, to_status, actor, reason, seq, carrier, tracking_number,
                     tracking_url)
        ), moved AS (
            -- Data-modifying parts run to completion whether or not the result reads them.
            -- A row is updated once per statement, so the shipment (given with the move to
            -- SHIPPED, wherever it is in the batch) is written with the last status.
            UPDATE orders o
               SET status = last.to_status,
                   carrier = coalesce(s.carrier, o.carrier),
                   tracking_number = coalesce(s.tracking_number, o.tracking_number),
                   tracking_url = CASE WHEN s.id IS NULL THEN o.tracking_url ELSE s.tracking_url END
              FROM (SELECT DISTINCT ON (id) id, to_status FROM v ORDER BY id, seq DESC) last
              LEFT JOIN (SELECT id, carrier, tracking_number, tracking_url FROM v
                          WHERE carrier IS NOT NULL) s ON s.id = last.id
             WHERE o.id = last.id
            RETURNING o.id
        ), entries AS (
            INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason)
            SELECT id, from_status, to_status, clock_timestamp(), actor, reason
              FROM v ORDER BY seq
            RETURNING order_id, from_status, to_status, id, at, actor, reason
        ), released AS (
            UPDATE reservations SET state = $10
             WHERE order_id = ANY($7) AND state = $9
            RETURNING product_id, quantity
        ), restocked AS (
            UPDATE products p SET stock = p.stock + t.quantity
              FROM (SELECT product_id, sum(quantity)::int4 AS quantity
                      FROM released GROUP BY product_id) t
             WHERE p.id = t.product_id
            RETURNING p.id
        ), sold AS (
            UPDATE reservations SET state = $11
             WHERE order_id = ANY($8) AND state = $9
            RETURNING 1
        ), paid AS (
            INSERT INTO payments (provider_reference, order_id, kind, amount, currency, outcome, note)
            SELECT * FROM unnest($12::text[], $13::uuid[], $14::payment_kind[], $15::int8[],
                                 $16::text[], $17::payment_outcome[], $18::text[])
            RETURNING 1
        )
        SELECT e.order_id, e.from_status, e.to_status, e.id AS entry_id, e.at, e.actor, e.reason,
               v.carrier, v.tracking_number, v.tracking_url,
               ARRAY(SELECT id FROM restocked) AS restocked,
               (SELECT count(*) FROM released) AS released_lines
          FROM entries e JOIN v ON v.id = e.order_id AND v.to_status = e.to_status
        "#,
    )
    .bind(moves.iter().map(|(_, a)| a.order_id).collect::<Vec<_>>())
    .bind(moves.iter().map(|(from, _)| *from).collect::<Vec<_>>())
    .bind(moves.iter().map(|(_, a)| a.to).collect::<Vec<_>>())
    .bind(moves.iter().map(|(_, a)| a.actor.as_str()).collect::<Vec<_>>())
    .bind(moves.iter().map(|(_, a)| a.reason.as_deref()).collect::<Vec<_>>())
    .bind(&seq)
    .bind(cancelled)
    .bind(&shipped)
    .bind(ReservationState::Reserved)
    .bind(ReservationState::Released)
    .bind(ReservationState::Committed)
    .bind(payments.iter().map(|p| p.provider_reference.as_str()).collect::<Vec<_>>())
    .bind(payments.iter().map(|p| p.order_id).collect::<Vec<_>>())
    .bind(payments.iter().map(|p| p.kind).collect::<Vec<_>>())
    .bind(payments.iter().map(|p| p.amount).collect::<Vec<_>>())
    .bind(payments.iter().map(|p| p.currency.as_str()).collect::<Vec<_>>())
    .bind(payments.iter().map(|p| p.outcome).collect::<Vec<_>>())
    .bind(payments.iter().map(|p| p.note.as_deref()).collect::<Vec<_>>())
    .bind(shipments(moves, |s| Some(s.carrier.as_str())))
    .bind(shipments(moves, |s| Some(s.tracking_number.as_str())))
    .bind(shipments(moves, |s| s.tracking_url.as_deref()))
    .fetch_all(&mut **tx)
    .await?;
    let restocked = rows
        .first()
        .map(|r| r.restocked.clone())
        .unwrap_or_default();
    let released_lines = rows
        .first()
        .map_or(0, |r| u64::try_from(r.released_lines).unwrap_or(0));
    Ok(Written {
        entries: rows.into_iter().map(|r| r.entry).collect(),
        restocked,
        released_lines,
    })
}

/// One field of each move's shipment, null for a move without one.
fn shipments<'m>(
    moves: &'m [(OrderStatus, Asked)],
    field: impl Fn(&'m Shipment) -> Option<&'m str>,
) -> Vec<Option<&'m str>> {
    moves
        .iter()
        .map(|(_, a)| a.shipment.as_ref().and_then(&field))
        .collect()
}

/// The timeline entries of transitions made before, as events.
async fn recorded_events(
    tx: &mut Transaction<'static, Postgres>,
    wanted: &[(Uuid, OrderStatus)],
) -> Result<Vec<((Uuid, OrderStatus), OrderStatusChanged)>, Failure> {
    #[derive(sqlx::FromRow)]
    struct Recorded {
        user_id: Uuid,
        #[sqlx(flatten)]
        entry: EntryRow,
    }
    let rows: Vec<Recorded> = sqlx::query_as(
        "SELECT o.user_id, e.order_id, e.from_status, e.to_status, e.id AS entry_id, e.at,
                e.actor, e.reason, o.carrier, o.tracking_number, o.tracking_url
           FROM unnest($1::uuid[], $2::order_status[]) AS w(order_id, to_status)
           JOIN order_events e ON e.order_id = w.order_id AND e.to_status = w.to_status
           JOIN orders o ON o.id = e.order_id",
    )
    .bind(wanted.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(wanted.iter().map(|(_, to)| *to).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let key = (r.entry.order_id, r.entry.to_status);
            (key, r.entry.into_event(r.user_id))
        })
        .collect())
}
