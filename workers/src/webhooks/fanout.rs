//! The fan-out: every order event from `EVENTS` (its own durable consumer) becomes one delivery
//! per enabled endpoint subscribed to its type and registered before it happened, recorded and
//! queued in one statement per chunk of events. Idempotent: a redelivered event finds its
//! deliveries (their ids derived from the endpoint and the event) already recorded.

use super::store;
use crate::consumer::{Delivery, Failure, Handled, Handler};
use common::correlation::CorrelationId;
use common::messaging::Bus;
use common::webhooks::{ALL_EVENTS, NewDelivery, delivery_id, is_known_type, payload_of, queue};
use sqlx::PgPool;

pub struct FanOut {
    pub db: PgPool,
    pub bus: Bus,
}

impl Handler for FanOut {
    fn group(&self, _delivery: &Delivery) -> Result<&'static str, Failure> {
        Ok("fan-out")
    }

    async fn handle(&self, _group: &'static str, events: Vec<Delivery>) -> Vec<Handled> {
        let outcome = self.fan_out(&events).await;
        events
            .iter()
            .map(|_| outcome.as_ref().map(|_| ()).map_err(Failure::shared))
            .collect()
    }
}

impl FanOut {
    async fn fan_out(&self, events: &[Delivery]) -> Result<(), Failure> {
        let subscribers = store::subscribers(&self.db).await?;
        let mut deliveries = Vec::new();
        for event in events {
            // Every order event names its order: the log lines of its handling carry it.
            #[derive(serde::Deserialize)]
            struct AboutOrder {
                order_id: uuid::Uuid,
            }
            if let Ok(about) = serde_json::from_str::<AboutOrder>(event.envelope.data.get()) {
                event
                    .span
                    .record("order_id", tracing::field::display(about.order_id));
            }
            // Another order event than the webhook types (one not offered yet) reaches no one.
            let Some((kind, payload)) =
                payload_of(&event.subject, &event.envelope).filter(|(kind, _)| is_known_type(kind))
            else {
                continue;
            };
            let at = event.envelope.occurred_at;
            for endpoint in subscribers.iter().filter(|e| {
                e.created_at <= at && e.events.iter().any(|t| t == ALL_EVENTS || *t == kind)
            }) {
                deliveries.push(NewDelivery {
                    id: delivery_id(endpoint.id, event.envelope.id),
                    endpoint_id: endpoint.id,
                    event_id: event.envelope.id,
                    event_type: kind.clone(),
                    payload: payload.clone(),
                });
            }
        }
        let fresh = CorrelationId::generate();
        let correlation_id = events.first().map_or(&fresh, |e| &e.correlation_id);
        queue(&self.db, &self.bus, &deliveries, false, correlation_id)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                common::Error::Database(e) => Failure::from(e),
                other => Failure::transient(other),
            })
    }
}
