//! Queueing deliveries: each is recorded (or, on a replay, started anew) in PostgreSQL, then its
//! ticket is published to the `WEBHOOKS` stream, where the webhooks worker takes it. The
//! webhooks worker's fan-out and the api's replay and test events queue through here.

use crate::correlation::CorrelationId;
use crate::message;
use crate::messaging::Bus;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A delivery to record: the event's payload for one endpoint.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: String,
}

/// What [`queue`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// Deliveries whose ticket was published.
    pub published: usize,
}

/// Records `deliveries` and publishes their tickets, in their order.
///
/// A delivery recorded before (a redelivered event) keeps its state: its ticket is published
/// again only while it is still pending, and JetStream drops it as a duplicate inside its
/// window (past it, the worker attempts a delivery only when it is due, so a second message
/// changes nothing). With `restart` (a replay), a delivery recorded before is started anew:
/// pending, due now, a fresh schedule and a new ticket, the old ticket's message dropped.
pub async fn queue(
    db: &sqlx::PgPool,
    bus: &Bus,
    deliveries: &[NewDelivery],
    restart: bool,
    correlation_id: &CorrelationId,
) -> crate::Result<Queued> {
    if deliveries.is_empty() {
        return Ok(Queued::default());
    }
    let column = |f: fn(&NewDelivery) -> Uuid| deliveries.iter().map(f).collect::<Vec<_>>();
    let (ids, endpoints, events) = (
        column(|d| d.id),
        column(|d| d.endpoint_id),
        column(|d| d.event_id),
    );
    let tickets: Vec<Uuid> = deliveries.iter().map(|_| Uuid::new_v4()).collect();
    let types: Vec<String> = deliveries.iter().map(|d| d.event_type.clone()).collect();
    let payloads: Vec<String> = deliveries.iter().map(|d| d.payload.clone()).collect();
    // The statement's snapshot predates its insert: the second part sees only rows recorded
    // before, so each id comes back once, with the ticket it now has.
    let rows = sqlx::query!(
        r#"WITH input AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::uuid[])
                        AS t (id, endpoint_id, event_id, event_type, payload, ticket)),
           written AS (
               INSERT INTO webhook_deliveries
                      (id, endpoint_id, event_id, event_type, payload, ticket, next_attempt_at)
               SELECT id, endpoint_id, event_id, event_type, payload, ticket, now() FROM input
               ON CONFLICT (id) DO UPDATE
                  SET status = 'PENDING', scheduled_attempts = 0, ticket = EXCLUDED.ticket,
                      next_attempt_at = now(), leased_until = NULL, updated_at = now()
                WHERE $7
               RETURNING id, endpoint_id, ticket)
           SELECT id AS "id!", endpoint_id AS "endpoint_id!", ticket AS "ticket!" FROM written
           UNION ALL
           SELECT d.id, d.endpoint_id, d.ticket FROM webhook_deliveries d JOIN input USING (id)
            WHERE d.status = 'PENDING' AND NOT $7"#,
        &ids,
        &endpoints,
        &events,
        &types,
        &payloads,
        &tickets,
        restart,
    )
    .fetch_all(db)
    .await?;
    let mut pending: Vec<AttemptDelivery> = rows
        .into_iter()
        .map(|r| AttemptDelivery {
            delivery_id: r.id,
            endpoint_id: r.endpoint_id,
            ticket: r.ticket,
        })
        .collect();
    let order = |id: &Uuid| ids.iter().position(|i| i == id);
    pending.sort_by_key(|a| order(&a.delivery_id));
    pending.dedup_by_key(|a| a.delivery_id);
    // Sent in order, acknowledged together.
    let published = futures::future::join_all(
        pending
            .iter()
            .map(|ticket| bus.publish(ticket.clone(), correlation_id)),
    )
    .await;
    for result in &published {
        if let Err(e) = result {
            return Err(crate::Error::Nats(e.to_string()));
        }
    }
    Ok(Queued {
        published: pending.len(),
    })
}

/// `webhooks.deliver`: the webhooks worker makes the next attempt of a delivery when it is due
/// (work-queue stream `WEBHOOKS`). `ticket` is the delivery's current one: a message whose
/// ticket a later retry or replay replaced is dropped, so one delivery is never scheduled twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptDelivery {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub ticket: Uuid,
}

message!(AttemptDelivery {
    subject: "webhooks.deliver",
    kind: "webhooks.deliver",
    version: 1,
    id: |m| format!("webhook:{}:{}", m.delivery_id, m.ticket),
});
