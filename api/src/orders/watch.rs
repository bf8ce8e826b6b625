//! Order changes as they happen, without polling the database: the api subscribes to
//! `orders.evt.status_changed`, `refund_changed`, `fulfilment_changed` and `return_changed`
//! (core NATS, see `orders::hearing`) while anything in this process needs them, and hands
//! each change to whoever listens:
//! requests waiting for an outcome (`Prefer: wait`, [`Waiter`](super::waiter::Waiter): an order's status, or the
//! recording of one of its refunds) and the Server-Sent Events streams of order events
//! ([`Listener`], see `orders::events`).
//!
//! Listeners are indexed by what they follow (one order, one customer's orders, every order),
//! so a change wakes only those concerned. Each has a small queue; a stream whose client reads
//! too slowly to keep up is ended rather than buffered without bound (its client resumes with
//! `Last-Event-ID`, from PostgreSQL). Streams are counted per account and per process, end when
//! the process shuts down, when their account's session ends or its role changes, and when the
//! authorization that opened them runs out (the access token's expiry, or the session's):
//! their clients reconnect, and are authorized again.

use super::hearing::{self, Kind, Subscriptions, status_event_order};
pub use super::hearing::{OrderChange, SharedChange};
use crate::auth::identity::AuthUser;
use chrono::{DateTime, Utc};
use common::messages::PlacedOutcome;
use common::messaging::Namespace;
use futures::StreamExt;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Changes a listener may have waiting before it counts as too slow.
pub(super) const QUEUE: usize = 64;

/// What a listener follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One order.
    Order(Uuid),
    /// Every order of one customer.
    Customer(Uuid),
    /// Every order.
    Everyone,
}

/// How many SSE streams this process serves at once.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub per_account: usize,
    pub total: usize,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The account already has `per_account` streams open here.
    AccountBusy,
    /// The process already serves `total` streams.
    ProcessBusy,
    /// The process is shutting down.
    Closing,
}

pub(super) struct Slot {
    pub(super) id: u64,
    pub(super) tx: mpsc::Sender<SharedChange>,
    /// Ends a stream that falls behind; `None` for waiters, which only drop what they miss.
    pub(super) end: Option<CancellationToken>,
}

/// A stream as held by an account's session.
struct Held {
    id: u64,
    session_id: Uuid,
    end: CancellationToken,
}

#[derive(Default)]
pub(super) struct Registry {
    by_order: HashMap<Uuid, Vec<Slot>>,
    by_customer: HashMap<Uuid, Vec<Slot>>,
    everyone: Vec<Slot>,
    /// Open streams by the account that opened them.
    held: HashMap<Uuid, Vec<Held>>,
    streams: usize,
    /// Subscribed to order changes, since this moment they were last needed.
    hearing: Option<Instant>,
}

impl Registry {
    pub(super) fn slots(&mut self, scope: Scope) -> &mut Vec<Slot> {
        match scope {
            Scope::Order(id) => self.by_order.entry(id).or_default(),
            Scope::Customer(id) => self.by_customer.entry(id).or_default(),
            Scope::Everyone => &mut self.everyone,
        }
    }

    /// Whether this replica hears order changes; if so, they are needed from now on.
    fn needed(&mut self) -> bool {
        self.hearing
            .as_mut()
            .map(|at| *at = Instant::now())
            .is_some()
    }

    fn nobody_listens(&self) -> bool {
        self.by_order.is_empty() && self.by_customer.is_empty() && self.everyone.is_empty()
    }

    pub(super) fn remove(&mut self, scope: Scope, id: u64) {
        match scope {
            Scope::Order(key) => remove_from(&mut self.by_order, key, id),
            Scope::Customer(key) => remove_from(&mut self.by_customer, key, id),
            Scope::Everyone => {
                self.everyone.retain(|s| s.id != id);
                if self.everyone.len() < self.everyone.capacity() / 4 {
                    self.everyone.shrink_to(self.everyone.len() * 2);
                }
            }
        }
    }
}

fn remove_from(map: &mut HashMap<Uuid, Vec<Slot>>, key: Uuid, id: u64) {
    if let Some(list) = map.get_mut(&key) {
        list.retain(|s| s.id != id);
        if list.is_empty() {
            map.remove(&key);
            shrink(map);
        }
    }
}

/// Gives back the room of a map that thousands of streams grew once they have closed, so the
/// registry's memory follows the streams open.
fn shrink<V>(map: &mut HashMap<Uuid, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

fn offer(slots: Option<&Vec<Slot>>, change: &SharedChange) {
    for slot in slots.into_iter().flatten() {
        if let Err(mpsc::error::TrySendError::Full(_)) = slot.tx.try_send(Arc::clone(change))
            && let Some(end) = &slot.end
        {
            end.cancel();
        }
    }
}

pub struct OrderWatch {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    limits: StreamLimits,
    /// Cancelled at shutdown: every stream ends.
    closing: CancellationToken,
    nats: async_nats::Client,
    ns: Namespace,
    /// Subscriptions taken, to the task that reads them.
    handover: mpsc::UnboundedSender<Subscriptions>,
    /// One subscribes at a time.
    subscribing: tokio::sync::Mutex<()>,
    /// How long order changes are heard once nothing needs them.
    idle: Duration,
    accepted: Arc<super::accepted::Accepted>,
}

impl OrderWatch {
    /// Starts handing on order changes; it subscribes to them when first needed (`hear`). A
    /// status event nobody here listens to is not decoded: its order is read from its message
    /// id, enough to tell `accepted` that the order is recorded.
    pub fn start(
        nats: &async_nats::Client,
        ns: &Namespace,
        limits: StreamLimits,
        accepted: Arc<super::accepted::Accepted>,
        mut outcomes: async_nats::Subscriber,
        idle: Duration,
    ) -> Arc<Self> {
        let (handover, mut handed) = mpsc::unbounded_channel();
        let watch = Arc::new(OrderWatch {
            registry: Mutex::default(),
            next_id: AtomicU64::new(0),
            limits,
            closing: CancellationToken::new(),
            nats: nats.clone(),
            ns: ns.clone(),
            handover,
            subscribing: tokio::sync::Mutex::new(()),
            idle,
            accepted: Arc::clone(&accepted),
        });
        let weak = Arc::downgrade(&watch);
        let mut subscriptions = None;
        let mut quiet = tokio::time::interval(idle / 2);
        quiet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(async move {
            loop {
                // Placement outcomes first, then status changes, when several wait: the
                // inventory worker sends an outcome before its status event, and a step
                // publishes its status event before the refund events it led to, each on one
                // connection, so what was sent first is taken first. Other changes of one order
                // heard out of id order are still passed once each by its stream
                // (`orders::follow`).
                let (message, kind) = tokio::select! {
                    biased;
                    Some(reply) = outcomes.next() => {
                        let Some(watch) = weak.upgrade() else { break };
                        if let Some(outcome) = super::outcomes::decode(&reply) {
                            accepted.forget(outcome.event.order_id);
                            watch.placed(outcome);
                        }
                        continue;
                    }
                    taken = handed.recv() => match taken {
                        Some(taken) => { subscriptions = Some(taken); continue; }
                        None => break,
                    },
                    Some(heard) = hearing::next(&mut subscriptions) => heard,
                    _ = quiet.tick() => {
                        let Some(watch) = weak.upgrade() else { break };
                        if watch.unneeded() {
                            // Dropped: unsubscribed.
                            subscriptions = None;
                        }
                        continue;
                    }
                };
                let Some(watch) = weak.upgrade() else { break };
                let order = (kind == Kind::Status)
                    .then(|| status_event_order(&message))
                    .flatten();
                if let Some(order) = order {
                    accepted.forget(order);
                    if !watch.listens_to(order) {
                        continue;
                    }
                }
                match hearing::change(&message, kind) {
                    Ok(change) => watch.notify(&Arc::new(change)),
                    Err(e) => tracing::warn!(error = %e, "undecodable order event ignored"),
                }
            }
        });
        watch
    }

    /// Makes sure this replica hears order changes from now on: on return, a change published
    /// after the call is heard (unless NATS could not be reached: then, as with any outage,
    /// nothing is heard live until it is back). Called before a request waits, a stream opens
    /// or an order is accepted.
    pub async fn hear(&self) {
        if self.registry().needed() {
            return;
        }
        let _one = self.subscribing.lock().await;
        if self.registry().needed() {
            return;
        }
        if let Some(subscriptions) = Subscriptions::take(&self.nats, &self.ns).await {
            self.registry().hearing = Some(Instant::now());
            let _ = self.handover.send(subscriptions);
        }
    }

    /// Whether to stop hearing order changes: nothing needed them for `idle`, nobody listens
    /// and no order accepted here waits to be recorded. If so, this replica no longer hears.
    fn unneeded(&self) -> bool {
        let mut registry = self.registry();
        let quiet = registry.hearing.is_some_and(|at| at.elapsed() >= self.idle)
            && registry.nobody_listens()
            && self.accepted.holds_none();
        if quiet {
            registry.hearing = None;
        }
        quiet
    }

    /// Whether this replica hears order changes now.
    pub fn hearing(&self) -> bool {
        self.registry().hearing.is_some()
    }

    pub(super) fn registry(&self) -> MutexGuard<'_, Registry> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent maps.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn notify(&self, change: &SharedChange) {
        let registry = self.registry();
        offer(registry.by_order.get(&change.order_id()), change);
        offer(registry.by_customer.get(&change.user_id()), change);
        offer(Some(&registry.everyone), change);
    }

    /// Whether a change of `order` would reach anyone here.
    fn listens_to(&self, order: Uuid) -> bool {
        let registry = self.registry();
        registry.by_order.contains_key(&order)
            || !registry.by_customer.is_empty()
            || !registry.everyone.is_empty()
    }

    /// Hands a placement's outcome to the requests waiting on its order (not to streams).
    pub fn placed(&self, outcome: PlacedOutcome) {
        let change: SharedChange = Arc::new(OrderChange::Placed(Box::new(outcome)));
        if let Some(slots) = self.registry().by_order.get(&change.order_id()) {
            for slot in slots.iter().filter(|s| s.end.is_none()) {
                let _ = slot.tx.try_send(Arc::clone(&change));
            }
        }
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens a stream of the changes in `scope` for `user`, within the limits, until the
    /// user's authorization ends.
    pub async fn listen(
        self: &Arc<Self>,
        scope: Scope,
        user: &AuthUser,
    ) -> Result<Listener, Refused> {
        let listener = self.enlist(scope, user)?;
        // Listed first: this replica cannot stop hearing in between.
        self.hear().await;
        Ok(listener)
    }

    fn enlist(self: &Arc<Self>, scope: Scope, user: &AuthUser) -> Result<Listener, Refused> {
        let (account, session_id) = (user.id, user.session_id);
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id();
        let end = self.closing.child_token();
        let mut registry = self.registry();
        if self.closing.is_cancelled() {
            return Err(Refused::Closing);
        }
        if registry.streams >= self.limits.total {
            return Err(Refused::ProcessBusy);
        }
        let held = registry.held.entry(account).or_default();
        if held.len() >= self.limits.per_account {
            return Err(Refused::AccountBusy);
        }
        held.push(Held {
            id,
            session_id,
            end: end.clone(),
        });
        registry.streams += 1;
        registry.slots(scope).push(Slot {
            id,
            tx,
            end: Some(end.clone()),
        });
        drop(registry);
        metrics::gauge!("sse_streams_open").increment(1.0);
        Ok(Listener {
            watch: Arc::clone(self),
            scope,
            account,
            id,
            rx,
            end,
            authorized: Box::pin(tokio::time::sleep_until(instant_of(user.authorized_until))),
        })
    }

    /// Ends every stream opened by `account` (its sessions ended, or its role changed).
    pub fn end_account(&self, account: Uuid) {
        if let Some(held) = self.registry().held.get(&account) {
            held.iter().for_each(|h| h.end.cancel());
        }
    }

    /// Ends the streams opened with one session (it was revoked).
    pub fn end_session(&self, session_id: Uuid) {
        for held in self.registry().held.values().flatten() {
            if held.session_id == session_id {
                held.end.cancel();
            }
        }
    }

    /// Ends every stream and refuses new ones: the process is shutting down.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Streams open in this process.
    pub fn streams(&self) -> usize {
        self.registry().streams
    }
}

/// An open stream's feed of changes; dropping it closes the stream's place in the registry.
pub struct Listener {
    watch: Arc<OrderWatch>,
    scope: Scope,
    account: Uuid,
    id: u64,
    rx: mpsc::Receiver<SharedChange>,
    end: CancellationToken,
    /// Fires when the authorization that opened the stream ends.
    authorized: Pin<Box<Sleep>>,
}

impl Listener {
    /// The next change in scope; `None` once the stream is to end (shutdown, the account's
    /// session ended, its authorization ran out, or the client fell behind).
    pub async fn next(&mut self) -> Option<SharedChange> {
        tokio::select! {
            biased;
            _ = self.end.cancelled() => None,
            _ = &mut self.authorized => None,
            change = self.rx.recv() => change,
        }
    }
}

/// The moment of the runtime's clock at which `at` comes (now, if it is past).
fn instant_of(at: DateTime<Utc>) -> Instant {
    Instant::now() + (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut registry = self.watch.registry();
        registry.remove(self.scope, self.id);
        if let Some(held) = registry.held.get_mut(&self.account) {
            held.retain(|h| h.id != self.id);
            if held.is_empty() {
                registry.held.remove(&self.account);
                shrink(&mut registry.held);
            }
        }
        registry.streams = registry.streams.saturating_sub(1);
        drop(registry);
        metrics::gauge!("sse_streams_open").decrement(1.0);
    }
}
