//! The api's subscriptions to order changes: `orders.evt.status_changed`, `refund_changed`,
//! `fulfilment_changed` and `return_changed` (core NATS: a replica that subscribes hears every
//! change). A replica holds them only while something on it needs them (see
//! [`OrderWatch::hear`](super::watch::OrderWatch::hear)), so one serving no stream, no waiting
//! request and no order it accepted spends nothing on the orders placed through the others.

use async_nats::RequestErrorKind;
use bytes::Bytes;
use common::messages::{
    FulfilmentChanged, OrderStatusChanged, PlacedOutcome, RefundChanged, ReturnChanged,
};
use common::messaging::{DecodeError, Message, Namespace, decode};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A change of an order as heard on the bus.
#[derive(Debug)]
pub enum OrderChange {
    Status(OrderStatusChanged),
    Refund(RefundChanged),
    Fulfilment(FulfilmentChanged),
    Return(ReturnChanged),
    /// A placement's outcome sent straight to this replica (see `orders::outcomes`): for the
    /// request waiting on it only, never for streams (its status event follows for them).
    Placed(Box<PlacedOutcome>),
}

impl OrderChange {
    pub(super) fn order_id(&self) -> Uuid {
        match self {
            OrderChange::Status(c) => c.order_id,
            OrderChange::Refund(c) => c.order_id,
            OrderChange::Fulfilment(c) => c.order_id,
            OrderChange::Return(c) => c.order_id,
            OrderChange::Placed(o) => o.event.order_id,
        }
    }

    pub(super) fn user_id(&self) -> Uuid {
        match self {
            OrderChange::Status(c) => c.user_id,
            OrderChange::Refund(c) => c.user_id,
            OrderChange::Fulfilment(c) => c.user_id,
            OrderChange::Return(c) => c.user_id,
            OrderChange::Placed(o) => o.event.user_id,
        }
    }
}

/// A change, shared by every listener it wakes.
pub type SharedChange = Arc<OrderChange>;

/// Longest a replica waits for the server to confirm new subscriptions.
const PROBE: Duration = Duration::from_secs(2);

/// Which subscription a change was heard on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Status,
    Refund,
    Fulfilment,
    Return,
}

/// The four subscriptions, taken together.
pub(super) struct Subscriptions {
    statuses: async_nats::Subscriber,
    refunds: async_nats::Subscriber,
    fulfilments: async_nats::Subscriber,
    returns: async_nats::Subscriber,
}

impl Subscriptions {
    /// Subscribes, and returns once the server holds the subscriptions (or after 2 s without
    /// its answer: then, as in any outage, changes are heard once NATS is back); `None` when
    /// the client cannot subscribe at all.
    pub(super) async fn take(nats: &async_nats::Client, ns: &Namespace) -> Option<Self> {
        let taken = async {
            Ok::<_, async_nats::SubscribeError>(Subscriptions {
                statuses: nats
                    .subscribe(ns.subject(OrderStatusChanged::SUBJECT))
                    .await?,
                refunds: nats.subscribe(ns.subject(RefundChanged::SUBJECT)).await?,
                fulfilments: nats
                    .subscribe(ns.subject(FulfilmentChanged::SUBJECT))
                    .await?,
                returns: nats.subscribe(ns.subject(ReturnChanged::SUBJECT)).await?,
            })
        };
        let subscriptions = match taken.await {
            Ok(subscriptions) => subscriptions,
            Err(e) => {
                tracing::warn!(error = %e, "subscribing to order changes failed");
                return None;
            }
        };
        // A question nobody answers (no order has the nil id), sent on this connection after
        // the subscriptions: the server's "no responders" comes once it holds them. A flush
        // would only say they were written.
        let probe = super::accepted::pending_subject(ns, Uuid::nil());
        match tokio::time::timeout(PROBE, nats.request(probe, Bytes::new())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "no answer after subscribing"),
            Err(_) => tracing::warn!("no answer within {PROBE:?} after subscribing"),
        }
        Some(subscriptions)
    }
}

/// The next change heard, status changes first when several wait (a step publishes its status
/// event before the refund events it led to, on one connection); never, while unsubscribed.
pub(super) async fn next(
    subscriptions: &mut Option<Subscriptions>,
) -> Option<(async_nats::Message, Kind)> {
    let Some(s) = subscriptions else {
        return std::future::pending().await;
    };
    tokio::select! {
        biased;
        Some(message) = s.statuses.next() => Some((message, Kind::Status)),
        Some(message) = s.refunds.next() => Some((message, Kind::Refund)),
        Some(message) = s.fulfilments.next() => Some((message, Kind::Fulfilment)),
        Some(message) = s.returns.next() => Some((message, Kind::Return)),
        else => None,
    }
}

/// The change a message heard on `kind`'s subscription carries.
pub(super) fn change(
    message: &async_nats::Message,
    kind: Kind,
) -> Result<OrderChange, DecodeError> {
    let payload = &message.payload;
    match kind {
        Kind::Status => decode::<OrderStatusChanged>(payload).map(|e| OrderChange::Status(e.data)),
        Kind::Refund => decode::<RefundChanged>(payload).map(|e| OrderChange::Refund(e.data)),
        Kind::Fulfilment => {
            decode::<FulfilmentChanged>(payload).map(|e| OrderChange::Fulfilment(e.data))
        }
        Kind::Return => decode::<ReturnChanged>(payload).map(|e| OrderChange::Return(e.data)),
    }
}

/// The order of a status event, from its message id (`order:<id>:status:<to>`), without
/// decoding its payload.
pub(super) fn status_event_order(message: &async_nats::Message) -> Option<Uuid> {
    let id = message
        .headers
        .as_ref()?
        .get(async_nats::header::NATS_MESSAGE_ID)?;
    Uuid::parse_str(id.as_str().strip_prefix("order:")?.split(':').next()?).ok()
}
