//! Placement outcomes sent straight to this replica: a place command published with
//! `Prefer: wait` names, in its `Outcome-Reply-To` header, a subject of this replica's own
//! (`<NATS_INBOX_PREFIX>.placed.<replica>.<order id>`), and the inventory worker sends the
//! recorded order there right after its commit, before publishing the status event. One core
//! subscription per replica hears them all; the order watch (`orders::watch`) takes each reply
//! before any status event heard after it and hands it to the request waiting on its order,
//! which answers from it without reading the order back. A lost reply costs only time: the
//! request still hears the status event and reads the order.

use common::messages::PlacedOutcome;
use std::sync::Arc;
use uuid::Uuid;

pub struct Outcomes {
    /// `<inbox prefix>.placed.<replica>`: the reply subjects of this replica's placements.
    prefix: String,
}

impl Outcomes {
    /// Subscribes to this replica's reply subjects; the order watch hears the replies (see
    /// [`OrderWatch::start`](super::watch::OrderWatch::start)), before the status events that
    /// follow them, so a waiting request is answered from the outcome and reads nothing.
    pub async fn subscribe(
        nats: &async_nats::Client,
        inbox_prefix: &str,
    ) -> anyhow::Result<(Arc<Self>, async_nats::Subscriber)> {
        let prefix = format!("{inbox_prefix}.placed.{}", Uuid::new_v4().simple());
        let replies = nats.subscribe(format!("{prefix}.*")).await?;
        Ok((Arc::new(Outcomes { prefix }), replies))
    }

    /// Where the outcome of `order_id` is to be sent.
    pub fn reply_to(&self, order_id: Uuid) -> String {
        format!("{}.{order_id}", self.prefix)
    }
}

/// The outcome a reply carries, if it is one for the order its subject names.
pub fn decode(message: &async_nats::Message) -> Option<PlacedOutcome> {
    let order = order_in_subject(&message.subject);
    match serde_json::from_slice::<PlacedOutcome>(&message.payload) {
        Ok(outcome) if Some(outcome.event.order_id) == order => Some(outcome),
        _ => {
            tracing::warn!(subject = %message.subject, "unusable placement outcome ignored");
            None
        }
    }
}

/// The order a subject names in its last token (`….<order id>`), as the subjects of the
/// outcome replies and those of the accepted orders (`orders::accepted`) do.
pub(super) fn order_in_subject(subject: &str) -> Option<Uuid> {
    subject
        .rsplit('.')
        .next()
        .and_then(|id| Uuid::parse_str(id).ok())
}
