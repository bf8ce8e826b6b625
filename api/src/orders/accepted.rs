//! Orders accepted but not recorded yet. Between the `202` and the inventory worker's commit
//! (milliseconds; longer while the workers are behind or down) a `GET` on the order answers
//! it `PENDING` instead of 404, without a database write per order: every api replica listens
//! (core NATS) to the place commands as they are published, by this api or any other
//! publisher, and forgets one when its order's status event or dead letter goes by.
//!
//! Bounded: entries are weighed by their lines, at most [`MAX_BYTES`] are held and none longer
//! than [`TTL`]. A replica started after an order was accepted does not know it, and answers
//! 404 for it until it is recorded.

use chrono::{DateTime, Utc};
use common::messages::{Line, OrderStatusChanged, PlaceOrder, normalise_lines};
use common::messaging::{Message, Namespace, RawEnvelope};
use common::shipping::ShippingAddress;
use futures::StreamExt;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Most bytes of accepted orders held: some 100 000 orders of a few lines.
pub const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// How long an order may wait to be recorded and still read as accepted.
pub const TTL: Duration = Duration::from_secs(3600);

/// An order accepted and not recorded yet.
#[derive(Debug, Clone)]
pub struct Pending {
    pub user_id: Uuid,
    pub lines: Vec<Line>,
    pub accepted_at: DateTime<Utc>,
    pub shipping_address: Option<ShippingAddress>,
}

impl Pending {
    /// Roughly the bytes this entry holds.
    fn weight(&self) -> usize {
        let address = self.shipping_address.as_ref().map_or(0, |a| {
            [&a.name, &a.line1, &a.city, &a.postal_code, &a.country]
                .into_iter()
                .chain([&a.line2, &a.region, &a.phone].into_iter().flatten())
                .map(String::len)
                .sum()
        });
        std::mem::size_of::<(Uuid, Pending)>()
            + self.lines.len() * std::mem::size_of::<Line>()
            + address
    }
}

pub struct Accepted {
    entries: Cache<Uuid, Arc<Pending>>,
}

impl Accepted {
    /// Subscribes to the place commands, the status events and the place commands' dead
    /// letters, for as long as the returned value lives.
    pub async fn start(nats: &async_nats::Client, ns: &Namespace) -> anyhow::Result<Arc<Self>> {
        let place = ns.subject(PlaceOrder::SUBJECT);
        let dead = ns.subject(&format!("dlq.{}", PlaceOrder::SUBJECT));
        let mut messages = futures::stream::select_all([
            nats.subscribe(place.clone()).await?,
            nats.subscribe(ns.subject(OrderStatusChanged::SUBJECT))
                .await?,
            nats.subscribe(dead.clone()).await?,
        ]);
        let accepted = Arc::new(Accepted::new());
        let weak = Arc::downgrade(&accepted);
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let Some(accepted) = weak.upgrade() else {
                    break;
                };
                let subject = message.subject.as_str();
                let Ok(envelope) = RawEnvelope::parse(&message.payload) else {
                    continue;
                };
                if subject == place {
                    if let Ok(command) = envelope.data_as::<PlaceOrder>() {
                        accepted.place(command, envelope.occurred_at);
                    }
                } else if subject == dead {
                    if let Ok(command) = envelope.data_as::<PlaceOrder>() {
                        accepted.entries.invalidate(&command.order_id);
                    }
                } else if let Ok(event) = envelope.data_as::<OrderStatusChanged>() {
                    accepted.entries.invalidate(&event.order_id);
                }
            }
        });
        Ok(accepted)
    }

    fn new() -> Self {
        Accepted {
            entries: Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|_, pending: &Arc<Pending>| {
                    u32::try_from(pending.weight()).unwrap_or(u32::MAX)
                })
                .time_to_live(TTL)
                .build(),
        }
    }

    /// An order this replica just had acknowledged by JetStream (its own copy of the command
    /// may arrive a moment later).
    pub fn accepted(&self, order_id: Uuid, pending: Pending) {
        self.entries.insert(order_id, Arc::new(pending));
    }

    fn place(&self, command: PlaceOrder, at: DateTime<Utc>) {
        // A command the workers will refuse is not shown as accepted.
        let Ok(lines) = normalise_lines(&command.items) else {
            return;
        };
        let Ok(shipping_address) = command
            .shipping_address
            .as_ref()
            .map(|a| a.normalised("shipping_address"))
            .transpose()
        else {
            return;
        };
        if self.entries.contains_key(&command.order_id) {
            return;
        }
        self.accepted(
            command.order_id,
            Pending {
                user_id: command.user_id,
                lines,
                accepted_at: at,
                shipping_address,
            },
        );
    }

    /// The order, if it is accepted and not recorded yet.
    pub fn get(&self, order_id: Uuid) -> Option<Arc<Pending>> {
        self.entries.get(&order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::messages::LineRequest;

    #[test]
    fn an_invalid_command_is_not_shown_as_accepted() {
        let accepted = Accepted::new();
        let id = Uuid::from_u128(1);
        let command = PlaceOrder {
            order_id: id,
            user_id: id,
            items: vec![LineRequest {
                product_id: id,
                quantity: 0,
            }],
            shipping_address: None,
        };
        accepted.place(command, Utc::now());
        assert!(accepted.get(id).is_none());
    }

    #[test]
    fn a_command_with_an_invalid_address_is_not_shown_as_accepted() {
        let accepted = Accepted::new();
        let id = Uuid::from_u128(2);
        let command = PlaceOrder {
            order_id: id,
            user_id: id,
            items: vec![LineRequest {
                product_id: id,
                quantity: 1,
            }],
            shipping_address: Some(ShippingAddress {
                name: "A".into(),
                line1: "1 Road".into(),
                line2: None,
                city: "Town".into(),
                region: None,
                postal_code: "1000".into(),
                country: "XX".into(),
                phone: None,
            }),
        };
        accepted.place(command.clone(), Utc::now());
        assert!(accepted.get(id).is_none());
        let mut valid = command;
        if let Some(address) = valid.shipping_address.as_mut() {
            address.country = "be".into();
        }
        accepted.place(valid, Utc::now());
        let pending = accepted.get(id).expect("shown as accepted");
        assert_eq!(
            pending
                .shipping_address
                .as_ref()
                .map(|a| a.country.as_str()),
            Some("BE")
        );
    }
}
