//! Placement outcomes sent straight to this replica: a place command published with
//! `Prefer: wait` names, in its `Outcome-Reply-To` header, a subject of this replica's own
//! (`<NATS_INBOX_PREFIX>.placed.<replica>.<order id>`), and the inventory worker sends the
//! recorded order there right after its commit, before publishing the status event. One core
//! subscription per replica hears them all and hands each to the request waiting on its order
//! (see `orders::watch`), which answers from it without reading the order back. A lost reply
//! costs only time: the request still hears the status event and reads the order.

use super::accepted::Accepted;
use super::watch::OrderWatch;
use common::messages::PlacedOutcome;
use futures::StreamExt;
use std::sync::Arc;
use uuid::Uuid;

pub struct Outcomes {
    /// `<inbox prefix>.placed.<replica>`: the reply subjects of this replica's placements.
    prefix: String,
}

impl Outcomes {
    /// Subscribes to this replica's reply subjects for as long as the returned value lives.
    pub async fn start(
        nats: &async_nats::Client,
        inbox_prefix: &str,
        watch: &Arc<OrderWatch>,
        accepted: &Arc<Accepted>,
    ) -> anyhow::Result<Arc<Self>> {
        let prefix = format!("{inbox_prefix}.placed.{}", Uuid::new_v4().simple());
        let mut replies = nats.subscribe(format!("{prefix}.*")).await?;
        let outcomes = Arc::new(Outcomes { prefix });
        let (watch, accepted) = (Arc::downgrade(watch), Arc::downgrade(accepted));
        tokio::spawn(async move {
            while let Some(message) = replies.next().await {
                let (Some(watch), Some(accepted)) = (watch.upgrade(), accepted.upgrade()) else {
                    break;
                };
                let order = message
                    .subject
                    .rsplit('.')
                    .next()
                    .and_then(|id| Uuid::parse_str(id).ok());
                match serde_json::from_slice::<PlacedOutcome>(&message.payload) {
                    Ok(outcome) if Some(outcome.event.order_id) == order => {
                        accepted.forget(outcome.event.order_id);
                        watch.placed(outcome);
                    }
                    _ => {
                        tracing::warn!(subject = %message.subject, "unusable placement outcome ignored")
                    }
                }
            }
        });
        Ok(outcomes)
    }

    /// Where the outcome of `order_id` is to be sent.
    pub fn reply_to(&self, order_id: Uuid) -> String {
        format!("{}.{order_id}", self.prefix)
    }
}
