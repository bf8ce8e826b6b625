//! Orders accepted but not recorded yet. Between the `202` and the inventory worker's commit
//! (milliseconds; longer while the workers are behind or down) a `GET` on the order answers
//! it `PENDING` instead of 404, without a database write per order.
//!
//! The replica that accepted an order holds it and answers for it on the order's subject
//! (core NATS). The ids a replica gives out (v7) carry its tag, 32 random bits chosen at start,
//! in their last 32 bits, and their subject names it: `orders.pending.<tag>.<id>`, all answered
//! through the one subscription `orders.pending.<tag>.*` the replica takes at start. An id
//! derived from an `Idempotency-Key` (v5) is the same on every replica and carries no tag: its
//! subject is `orders.pending.<id>`, subscribed for that order alone before its command is
//! published. A replica asked for an order that neither PostgreSQL nor it knows sends a request
//! there ([`Accepted::ask`]): the holder answers with the order as accepted; when no replica
//! holds it the server answers at once that nobody listens, and the order is not found. So a
//! replica spends nothing on the orders the others accept, and a 404 waits for no time-out.
//!
//! An entry is forgotten when its order's outcome or status event reaches this replica, when
//! its command is dead-lettered, or after [`TTL`]; a forgotten order is answered `null` (its own
//! subscription, for an order with one, ends a second later, so a question sent just before is
//! not left to time out); entries are weighed by their lines and at most [`MAX_BYTES`] are
//! held. An order whose replica stopped before it was recorded reads 404 until it is recorded,
//! as does one placed by another publisher than the api.

use chrono::{DateTime, Utc};
use common::messages::{Line, PlaceOrder};
use common::messaging::{Message, Namespace, RawEnvelope};
use common::shipping::ShippingAddress;
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most bytes of accepted orders held: some 100 000 orders of a few lines.
pub const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// How long an order may wait to be recorded and still read as accepted.
pub const TTL: Duration = Duration::from_secs(3600);
/// How long a replica still answers (`null`) for an order it forgot.
const FORGOTTEN_GRACE: Duration = Duration::from_secs(1);
/// How long a replica waits for the holder of an order to answer for it.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// An order accepted and not recorded yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// An order held, and, for an order with a subscription of its own, the end of it.
#[derive(Clone)]
struct Entry {
    pending: Arc<Pending>,
    own_subscription: Option<CancellationToken>,
}

/// How this replica answers for an order it is about to accept.
pub enum Answering {
    /// Through the subscription for the ids it gives out, taken at start.
    Tagged,
    /// Through the order's own subscription, taken before its command is published.
    Own(async_nats::Subscriber),
}

pub struct Accepted {
    entries: Cache<Uuid, Entry>,
    nats: async_nats::Client,
    ns: Namespace,
    /// Carried by the ids this replica gives out, and named by their subjects.
    tag: u32,
    /// To the task answering for the orders held.
    answer: mpsc::UnboundedSender<BoxStream<'static, async_nats::Message>>,
}

impl Accepted {
    /// Starts answering for the orders this replica will hold, and listens to the place
    /// commands' dead letters, for as long as the returned value lives.
    pub async fn start(nats: &async_nats::Client, ns: &Namespace) -> anyhow::Result<Arc<Self>> {
        let mut dead = nats
            .subscribe(ns.subject(&format!("dlq.{}", PlaceOrder::SUBJECT)))
            .await?;
        let (answer, mut questions) = mpsc::unbounded_channel();
        let accepted = Arc::new(Accepted::new(nats.clone(), ns.clone(), answer));
        let tagged = nats
            .subscribe(ns.subject(&format!("orders.pending.{:08x}.*", accepted.tag)))
            .await?;
        let weak = Arc::downgrade(&accepted);
        tokio::spawn(async move {
            // The questions for the ids this replica gives out, for as long as it runs, and one
            // stream per order of its own subject held, each ending when its entry goes.
            let mut asked = SelectAll::new();
            asked.push(tagged.boxed());
            loop {
                tokio::select! {
                    held = questions.recv() => match held {
                        Some(held) => asked.push(held),
                        None => break,
                    },
                    Some(question) = asked.next(), if !asked.is_empty() => {
                        let Some(accepted) = weak.upgrade() else { break };
                        accepted.answer(question).await;
                    }
                    Some(letter) = dead.next() => {
                        let Some(accepted) = weak.upgrade() else { break };
                        if let Ok(command) = RawEnvelope::parse(&letter.payload)
                            .and_then(|envelope| envelope.data_as::<PlaceOrder>())
                        {
                            accepted.forget(command.order_id);
                        }
                    }
                }
            }
        });
        Ok(accepted)
    }

    fn new(
        nats: async_nats::Client,
        ns: Namespace,
        answer: mpsc::UnboundedSender<BoxStream<'static, async_nats::Message>>,
    ) -> Self {
        Accepted {
            entries: Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|_, entry: &Entry| {
                    u32::try_from(entry.pending.weight()).unwrap_or(u32::MAX)
                })
                .time_to_live(TTL)
                .eviction_listener(|_, entry: Entry, _| {
                    if let Some(subscription) = entry.own_subscription {
                        subscription.cancel();
                    }
                })
                .build(),
            nats,
            ns,
            tag: random_tag(),
            answer,
        }
    }

    /// A new order id (v7, in time order on this replica) carrying this replica's tag.
    pub fn order_id(&self) -> Uuid {
        with_tag(Uuid::now_v7(), self.tag)
    }

    /// Whether `order_id` is one this replica gave out.
    fn gave_out(&self, order_id: Uuid) -> bool {
        tag_of(order_id) == Some(u128::from(self.tag))
    }

    fn subject(&self, order_id: Uuid) -> String {
        pending_subject(&self.ns, order_id)
    }

    /// How to answer for `order_id` once accepted: an id this replica gave out is answered
    /// already; any other has its subject subscribed. `None` if the client cannot (other
    /// replicas then read the order 404 until it is recorded).
    pub async fn answering(&self, order_id: Uuid) -> Option<Answering> {
        if self.gave_out(order_id) {
            return Some(Answering::Tagged);
        }
        match self.nats.subscribe(self.subject(order_id)).await {
            Ok(subscriber) => Some(Answering::Own(subscriber)),
            Err(e) => {
                tracing::warn!(error = %e, %order_id, "cannot answer for an accepted order");
                None
            }
        }
    }

    /// An order this replica just had acknowledged by JetStream, answered for through
    /// `answering` until it is forgotten.
    pub fn accepted(&self, order_id: Uuid, pending: Pending, answering: Option<Answering>) {
        let own_subscription = match answering {
            Some(Answering::Own(subscriber)) => {
                let token = CancellationToken::new();
                let _ = self.answer.send(questions(subscriber, token.clone()));
                Some(token)
            }
            Some(Answering::Tagged) | None => None,
        };
        self.entries.insert(
            order_id,
            Entry {
                pending: Arc::new(pending),
                own_subscription,
            },
        );
    }

    /// Forgets `order_id` (recorded or dead-lettered), and stops answering for it.
    pub fn forget(&self, order_id: Uuid) {
        self.entries.invalidate(&order_id);
    }

    /// Whether no order accepted here waits to be recorded.
    pub fn holds_none(&self) -> bool {
        self.entries.run_pending_tasks();
        self.entries.entry_count() == 0
    }

    /// The order, if this replica accepted it and it is not recorded yet.
    pub fn get(&self, order_id: Uuid) -> Option<Arc<Pending>> {
        self.entries.get(&order_id).map(|e| e.pending)
    }

    /// Answers a question for one of the orders held: the order, or `null` once forgotten.
    async fn answer(&self, question: async_nats::Message) {
        let Some(reply) = question.reply else { return };
        let held = super::outcomes::order_in_subject(&question.subject).and_then(|id| self.get(id));
        if let Ok(payload) = serde_json::to_vec(&held.as_deref()) {
            let _ = self.nats.publish(reply, payload.into()).await;
        }
    }

    /// The order, if another replica holds it as accepted: asked on its subject; `None` when
    /// no replica holds it (answered at once by the server), when this replica gave its id out
    /// (it would be the holder), or when its holder does not answer in time.
    pub async fn ask(&self, order_id: Uuid) -> Option<Pending> {
        if self.gave_out(order_id) {
            return None;
        }
        let asked = self
            .nats
            .request(self.subject(order_id), bytes::Bytes::new());
        match tokio::time::timeout(ASK_TIMEOUT, asked).await {
            Ok(Ok(answer)) => serde_json::from_slice::<Option<Pending>>(&answer.payload)
                .ok()
                .flatten(),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, %order_id, "asking for an accepted order failed");
                None
            }
            Err(_) => {
                tracing::warn!(%order_id, "no answer in time for an accepted order");
                None
            }
        }
    }
}

/// The subject `order_id` is answered on, by whichever replica holds it.
pub(super) fn pending_subject(ns: &Namespace, order_id: Uuid) -> String {
    ns.subject(&match tag_of(order_id) {
        Some(tag) => format!("orders.pending.{tag:08x}.{order_id}"),
        None => format!("orders.pending.{order_id}"),
    })
}

/// The bits of a v7 order id that carry the tag of the replica that gave it out.
const TAG_BITS: u128 = 0xffff_ffff;

/// The tag `order_id` carries, if it is a v7 id (any other, v5 from an `Idempotency-Key`,
/// carries none).
fn tag_of(order_id: Uuid) -> Option<u128> {
    (order_id.get_version() == Some(uuid::Version::SortRand)).then(|| order_id.as_u128() & TAG_BITS)
}

/// `id` with its last 32 bits (random in a v7 id, below the counter that orders one
/// replica's ids within a millisecond) replaced by `tag`.
fn with_tag(id: Uuid, tag: u32) -> Uuid {
    Uuid::from_u128(id.as_u128() & !TAG_BITS | u128::from(tag))
}

/// A replica's tag: 32 random bits (two replicas of one deployment share one with odds of
/// about one in four billion).
fn random_tag() -> u32 {
    let [.., a, b, c, d] = *Uuid::new_v4().as_bytes();
    u32::from_be_bytes([a, b, c, d])
}

/// The questions for one order on a subject of its own: while it is held, and for
/// [`FORGOTTEN_GRACE`] after it is forgotten (`until` cancelled), when they are answered `null`
/// and the asker reads PostgreSQL again. A reader that missed the order in PostgreSQL just before it was recorded asks right
/// after; ending the subscription with the order would leave such a question to time out.
fn questions(
    subscriber: async_nats::Subscriber,
    until: CancellationToken,
) -> BoxStream<'static, async_nats::Message> {
    let ended = async move {
        until.cancelled().await;
        tokio::time::sleep(FORGOTTEN_GRACE).await;
    };
    subscriber.take_until(ended).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_id_is_a_v7_id_in_time_order_carrying_its_tag() {
        let tag = random_tag();
        let ids: Vec<Uuid> = (0..1000).map(|_| with_tag(Uuid::now_v7(), tag)).collect();
        for id in &ids {
            assert_eq!(id.get_version(), Some(uuid::Version::SortRand));
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(tag_of(*id), Some(u128::from(tag)));
        }
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "in the order given out"
        );
        // An id derived from an idempotency key carries none.
        assert_eq!(tag_of(Uuid::new_v5(&Uuid::NAMESPACE_OID, b"key")), None);
    }

    #[test]
    fn a_pending_order_weighs_its_lines_and_address() {
        let id = Uuid::from_u128(1);
        let line = Line {
            product_id: id,
            quantity: common::money::Quantity::new(1).expect("quantity"),
        };
        let one = Pending {
            user_id: id,
            lines: vec![line],
            accepted_at: Utc::now(),
            shipping_address: None,
        };
        let two = Pending {
            lines: vec![line, line],
            ..one.clone()
        };
        assert!(two.weight() > one.weight());
        let back: Pending = serde_json::from_slice(&serde_json::to_vec(&two).unwrap()).unwrap();
        assert_eq!(back.lines, two.lines);
    }
}
