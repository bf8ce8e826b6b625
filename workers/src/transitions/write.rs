//! The writing half of a transitions transaction: every status, timeline entry (with the
//! outside reference it was made under, if any), stock effect, shipment and payment record of a
//! batch in one statement, and the recorded events of transitions made before.

use super::asked::{Asked, NewPayment};
use crate::consumer::Failure;
use chrono::{DateTime, Utc};
use common::domain::{OrderStatus, PaymentKind, PaymentOutcome, ReservationState};
use common::messages::OrderStatusChanged;
use common::shipping::Shipment;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

pub(super) struct EntryRow {
    pub(super) order_id: Uuid,
    pub(super) to_status: OrderStatus,
    from_status: Option<OrderStatus>,
    entry_id: i64,
    at: DateTime<Utc>,
    actor: String,
    reason: Option<String>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    tracking_url: Option<String>,
}

/// The [`EntryRow`] of a statement's record that has its columns.
macro_rules! entry_row {
    ($r:expr) => {{
        let r = $r;
        EntryRow {
            order_id: r.order_id,
            to_status: r.to_status,
            from_status: r.from_status,
            entry_id: r.entry_id,
            at: r.at,
            actor: r.actor,
            reason: r.reason,
            carrier: r.carrier,
            tracking_number: r.tracking_number,
            tracking_url: r.tracking_url,
        }
    }};
}

impl EntryRow {
    pub(super) fn into_event(self, user_id: Uuid) -> OrderStatusChanged {
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
pub(super) struct Effects {
    pub(super) entries: Vec<EntryRow>,
    pub(super) restocked: Vec<Uuid>,
    pub(super) released_lines: u64,
}

/// Writes the moves and payments of a batch in one statement. An applied succeeded payment
/// adds its amount to its order's `amount_paid` in the same update as the order's status (a
/// row is updated once per statement).
pub(super) async fn write(
    tx: &mut Transaction<'static, Postgres>,
    moves: &[(OrderStatus, Asked)],
    payments: &[NewPayment],
    cancelled: &[Uuid],
) -> Result<Effects, Failure> {
    let shipped: Vec<Uuid> = moves
        .iter()
        .filter(|(_, a)| a.to == OrderStatus::Shipped)
        .map(|(_, a)| a.order_id)
        .collect();
    let seq: Vec<i32> = (0..moves.len())
        .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    // Money captured: a succeeded payment that paid its order.
    let captured: Vec<&NewPayment> = payments
        .iter()
        .filter(|p| p.kind == PaymentKind::Succeeded && p.outcome == PaymentOutcome::Applied)
        .collect();
    let ids: Vec<Uuid> = moves.iter().map(|(_, a)| a.order_id).collect();
    let from: Vec<OrderStatus> = moves.iter().map(|(from, _)| *from).collect();
    let to: Vec<OrderStatus> = moves.iter().map(|(_, a)| a.to).collect();
    let actors: Vec<&str> = moves.iter().map(|(_, a)| a.actor.as_str()).collect();
    let reasons: Vec<Option<&str>> = moves.iter().map(|(_, a)| a.reason.as_deref()).collect();
    let references: Vec<Option<&str>> = moves.iter().map(|(_, a)| a.reference.as_deref()).collect();
    let provider_references: Vec<&str> = payments
        .iter()
        .map(|p| p.provider_reference.as_str())
        .collect();
    let payment_orders: Vec<Uuid> = payments.iter().map(|p| p.order_id).collect();
    let kinds: Vec<PaymentKind> = payments.iter().map(|p| p.kind).collect();
    let amounts: Vec<i64> = payments.iter().map(|p| i64::from(p.amount)).collect();
    let currencies: Vec<&str> = payments.iter().map(|p| p.currency.as_str()).collect();
    let outcomes: Vec<PaymentOutcome> = payments.iter().map(|p| p.outcome).collect();
    let notes: Vec<Option<&str>> = payments.iter().map(|p| p.note.as_deref()).collect();
    let carriers = shipments(moves, |s| Some(s.carrier.as_str()));
    let tracking_numbers = shipments(moves, |s| Some(s.tracking_number.as_str()));
    let tracking_urls = shipments(moves, |s| s.tracking_url.as_deref());
    let captured_orders: Vec<Uuid> = captured.iter().map(|p| p.order_id).collect();
    let captured_amounts: Vec<i64> = captured.iter().map(|p| i64::from(p.amount)).collect();
    let rows = sqlx::query!(
        r#"
        WITH v AS (
            SELECT * FROM unnest($1::uuid[], $2::order_status[], $3::order_status[], $4::text[],
                                 $5::text[], $6::int4[], $19::text[], $20::text[], $21::text[],
                                 $24::text[])
                AS v(id, from_status, to_status, actor, reason, seq, carrier, tracking_number,
                     tracking_url, reference)
        ), moved AS (
            -- Data-modifying parts run to completion whether or not the result reads them.
            -- A row is updated once per statement, so the shipment (given with the move to
            -- SHIPPED, wherever it is in the batch) is written with the last status.
            UPDATE orders o
               SET status = last.to_status,
                   carrier = coalesce(s.carrier, o.carrier),
                   tracking_number = coalesce(s.tracking_number, o.tracking_number),
                   tracking_url = CASE WHEN s.id IS NULL THEN o.tracking_url ELSE s.tracking_url END,
                   amount_paid = o.amount_paid + coalesce(
                       (SELECT sum(p.amount) FROM unnest($22::uuid[], $23::int8[]) AS p(id, amount)
                         WHERE p.id = o.id), 0)
              FROM (SELECT DISTINCT ON (id) id, to_status FROM v ORDER BY id, seq DESC) last
              LEFT JOIN (SELECT id, carrier, tracking_number, tracking_url FROM v
                          WHERE carrier IS NOT NULL) s ON s.id = last.id
             WHERE o.id = last.id
            RETURNING o.id
        ), entries AS (
            INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason,
                                      reference)
            SELECT id, from_status, to_status, clock_timestamp(), actor, reason, reference
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
        SELECT e.order_id AS "order_id!", e.from_status AS "from_status?: OrderStatus",
               e.to_status AS "to_status!: OrderStatus", e.id AS "entry_id!", e.at AS "at!",
               e.actor AS "actor!", e.reason AS "reason?",
               v.carrier AS "carrier?", v.tracking_number AS "tracking_number?",
               v.tracking_url AS "tracking_url?",
               ARRAY(SELECT id FROM restocked) AS "restocked!",
               (SELECT count(*) FROM released) AS "released_lines!"
          FROM entries e JOIN v ON v.id = e.order_id AND v.to_status = e.to_status
        "#,
        &ids,
        &from as &[OrderStatus],
        &to as &[OrderStatus],
        &actors as &[&str],
        &reasons as &[Option<&str>],
        &seq,
        cancelled,
        &shipped,
        ReservationState::Reserved as ReservationState,
        ReservationState::Released as ReservationState,
        ReservationState::Committed as ReservationState,
        &provider_references as &[&str],
        &payment_orders,
        &kinds as &[PaymentKind],
        &amounts,
        &currencies as &[&str],
        &outcomes as &[PaymentOutcome],
        &notes as &[Option<&str>],
        &carriers as &[Option<&str>],
        &tracking_numbers as &[Option<&str>],
        &tracking_urls as &[Option<&str>],
        &captured_orders,
        &captured_amounts,
        &references as &[Option<&str>],
    )
    .fetch_all(&mut **tx)
    .await?;
    let restocked = rows
        .first()
        .map(|r| r.restocked.clone())
        .unwrap_or_default();
    let released_lines = rows
        .first()
        .map_or(0, |r| u64::try_from(r.released_lines).unwrap_or(0));
    Ok(Effects {
        entries: rows.into_iter().map(|r| entry_row!(r)).collect(),
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
pub(super) async fn recorded_events(
    tx: &mut Transaction<'static, Postgres>,
    wanted: &[(Uuid, OrderStatus)],
) -> Result<Vec<((Uuid, OrderStatus), OrderStatusChanged)>, Failure> {
    let ids: Vec<Uuid> = wanted.iter().map(|(id, _)| *id).collect();
    let to: Vec<OrderStatus> = wanted.iter().map(|(_, to)| *to).collect();
    let rows = sqlx::query!(
        r#"SELECT o.user_id, e.order_id, e.from_status AS "from_status: OrderStatus",
                  e.to_status AS "to_status: OrderStatus", e.id AS entry_id, e.at,
                  e.actor, e.reason, o.carrier, o.tracking_number, o.tracking_url
             FROM unnest($1::uuid[], $2::order_status[]) AS w(order_id, to_status)
             JOIN order_events e ON e.order_id = w.order_id AND e.to_status = w.to_status
             JOIN orders o ON o.id = e.order_id"#,
        &ids,
        &to as &[OrderStatus],
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let user_id = r.user_id;
            let entry = entry_row!(r);
            ((entry.order_id, entry.to_status), entry.into_event(user_id))
        })
        .collect())
}
