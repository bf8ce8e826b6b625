//! An order event stream in progress: the events it opens with (the order, or what a resuming
//! client missed), then the changes heard live that it passes on, until it ends.
//!
//! A stream of one order ends once the order has reached a final status and no refund of it
//! waits for the payment system's answer; streams of many orders last until the client leaves.

use super::actors::Viewer;
use super::entries::{self, StreamEntry};
use super::model::Order;
use super::watch::{Listener, OrderChange};
use axum::response::sse::Event;
use common::domain::OrderStatus;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;
use uuid::Uuid;

/// How long a client waits before reconnecting (the SSE `retry` field).
const RECONNECT_AFTER: Duration = Duration::from_secs(2);
/// Entries read from PostgreSQL at a time when a stream of many orders resumes.
const REPLAY_PAGE: i64 = 200;
/// Entry ids a stream of one order remembers having sent, to pass each change once.
const REMEMBERED: usize = 64;

/// Statuses after which an order's status never changes again.
pub fn is_final(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Delivered
    )
}

/// Which changes a stream passes on.
pub enum Filter {
    /// One order: entries after `floor` not sent yet. Changes of one order can be heard out
    /// of id order (published by different workers, on two subjects), so each one is passed
    /// once rather than only those above the last sent.
    Order {
        order_id: Uuid,
        floor: i64,
        sent: BTreeSet<i64>,
        /// The order reached a final status.
        finished: bool,
    },
    /// Many orders (the listener's scope): status changes into `to` if given, else every
    /// change; entries up to `replayed` were sent by the replay.
    Many {
        to: Option<OrderStatus>,
        replayed: i64,
    },
}

impl Filter {
    /// One order's changes after entry `floor`.
    pub fn order(order_id: Uuid, floor: i64, finished: bool) -> Self {
        Filter::Order {
            order_id,
            floor,
            sent: BTreeSet::new(),
            finished,
        }
    }
}

/// A resume of a stream of many orders, read from PostgreSQL a page at a time.
pub struct Replay {
    pub owner: entries::Owner,
    pub after: i64,
}

/// A stream in progress: events to send first, then live changes.
pub struct Follow {
    db: PgPool,
    listener: Listener,
    pub pending: VecDeque<Event>,
    pub filter: Filter,
    pub replay: Option<Replay>,
    /// Once `pending` is sent: end the stream if no refund of the order is pending.
    pub check_end: bool,
    /// The order is done (final, nothing pending): the stream ends once `pending` is sent.
    ending: bool,
    /// Who follows: the actors of the entries are as they see them.
    viewer: Viewer,
}

impl Follow {
    pub fn new(db: PgPool, listener: Listener, filter: Filter, viewer: Viewer) -> Self {
        let mut pending = VecDeque::new();
        // Sent at once, so the client knows the stream is open, and how soon to come back.
        pending.push_back(Event::default().retry(RECONNECT_AFTER));
        Follow {
            db,
            listener,
            pending,
            filter,
            replay: None,
            check_end: false,
            ending: false,
            viewer,
        }
    }

    pub async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.ending {
                return None;
            }
            if self.check_end {
                self.check_end = false;
                // Boxed, as below: the database reads a stream rarely makes would otherwise
                // size every idle stream's future.
                self.ending = Box::pin(self.is_done()).await;
                continue;
            }
            if self.replay.is_some() {
                Box::pin(self.replay_page()).await?;
                continue;
            }
            let change = self.listener.next().await?;
            if let Some(event) = self.pass(&change) {
                return Some((Ok(event), self));
            }
        }
    }

    /// Whether the stream's order is final with no refund pending (or cannot be read: the
    /// stream ends and its client resumes). A done order's entries not sent yet are queued
    /// first: the change that finished it can be committed before it is heard live.
    async fn is_done(&mut self) -> bool {
        let Filter::Order {
            order_id,
            floor,
            ref sent,
            ..
        } = self.filter
        else {
            return false;
        };
        let viewer = self.viewer;
        let standing = match entries::standing(&self.db, order_id, None).await {
            Ok(Some(standing)) => standing,
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "reading an order's standing failed; its stream ends");
                return true;
            }
        };
        if standing.refund_pending {
            return false;
        }
        // Read after the standing, so every change that settled the order is among them.
        match entries::of_order(&self.db, order_id, floor).await {
            Ok(missed) => self.pending.extend(
                missed
                    .iter()
                    .filter(|e| e.id().is_none_or(|id| !sent.contains(&id)))
                    .map(|e| entry_event(e, viewer)),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reading an order's last entries failed; its stream ends")
            }
        }
        true
    }

    /// Queues the next page of a resume; `None` ends the stream (the client resumes later).
    async fn replay_page(&mut self) -> Option<()> {
        let replay = self.replay.as_mut()?;
        let to = match self.filter {
            Filter::Many { to, .. } => to,
            Filter::Order { .. } => None,
        };
        let page = match entries::after(&self.db, replay.owner, to, replay.after, REPLAY_PAGE).await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "replaying order events failed; the stream ends");
                return None;
            }
        };
        let last = page.iter().filter_map(StreamEntry::id).max();
        if let (Some(last), Filter::Many { replayed, .. }) = (last, &mut self.filter) {
            *replayed = last;
            replay.after = last;
        }
        if page.len() < REPLAY_PAGE as usize {
            self.replay = None;
        }
        let viewer = self.viewer;
        self.pending
            .extend(page.iter().map(|e| entry_event(e, viewer)));
        Some(())
    }

    /// The event for a change heard live, if this stream passes it on.
    fn pass(&mut self, change: &OrderChange) -> Option<Event> {
        let entry = match change {
            OrderChange::Status(c) => StreamEntry::Status(c.into()),
            OrderChange::Refund(c) => StreamEntry::Refund(c.into()),
            OrderChange::Fulfilment(c) => StreamEntry::Fulfilment(c.into()),
            OrderChange::Return(c) => StreamEntry::Return(c.into()),
            // Only ever handed to waiting requests; streams pass the status event.
            OrderChange::Placed(_) => return None,
        };
        match &mut self.filter {
            Filter::Order {
                floor,
                sent,
                finished,
                ..
            } => {
                if let Some(id) = entry.id() {
                    if id <= *floor || !sent.insert(id) {
                        return None;
                    }
                    if sent.len() > REMEMBERED {
                        *floor = sent.pop_first().unwrap_or(*floor);
                    }
                }
                if let StreamEntry::Status(e) = &entry {
                    *finished |= is_final(e.to);
                }
                // Past a final status, only refunds can still change: the stream ends once
                // none is pending.
                self.check_end = *finished;
            }
            Filter::Many { to, replayed } => {
                let into_to = match &entry {
                    StreamEntry::Status(e) => to.is_none_or(|to| to == e.to),
                    StreamEntry::Refund(_)
                    | StreamEntry::Fulfilment(_)
                    | StreamEntry::Return(_) => to.is_none(),
                };
                if !into_to || entry.id().is_some_and(|id| id <= *replayed) {
                    return None;
                }
            }
        }
        Some(entry_event(&entry, self.viewer))
    }
}

/// The `order` event a stream of one order opens with; its id is the order's latest entry.
pub fn order_event(order: &Order, last_entry: Option<i64>) -> Event {
    event("order", last_entry, order)
}

/// The event of one timeline entry: `status_changed` or `refund_changed`, with the entry's id,
/// its actor as `viewer` sees it.
pub fn entry_event(entry: &StreamEntry, viewer: Viewer) -> Event {
    event(entry.event_name(), entry.id(), &entry.seen_by(viewer))
}

fn event(name: &str, id: Option<i64>, data: &impl Serialize) -> Event {
    let event = Event::default().event(name);
    let event = match id {
        Some(id) => event.id(id.to_string()),
        None => event,
    };
    event
        .json_data(data)
        .unwrap_or_else(|_| Event::default().comment("unencodable event"))
}
