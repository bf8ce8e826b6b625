//! A request waiting for changes of one order (`Prefer: wait`): registered in the order watch
//! before its command is published, it hears the order's status events and, for a placement,
//! the outcome sent straight to this replica, whichever comes first.

use super::watch::{OrderChange, OrderWatch, QUEUE, Scope, SharedChange, Slot};
use common::domain::{OrderStatus, RefundStatus};
use common::messages::PlacedOutcome;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How a placement's outcome was heard: as sent straight after the commit, or as its
/// status event (the outcome's reply was lost, or the command named none).
#[derive(Debug)]
pub enum Heard {
    Outcome(Box<PlacedOutcome>),
    Event,
}

/// A request waiting for an order's next statuses; dropping it unregisters.
pub struct Waiter {
    watch: Arc<OrderWatch>,
    order_id: Uuid,
    id: u64,
    rx: mpsc::Receiver<SharedChange>,
}

impl Waiter {
    pub(super) fn new(
        watch: Arc<OrderWatch>,
        order_id: Uuid,
        id: u64,
        rx: mpsc::Receiver<SharedChange>,
    ) -> Self {
        Waiter {
            watch,
            order_id,
            id,
            rx,
        }
    }

    /// Waits up to `timeout` for a status accepted by `wanted`; returns it, or `None` on time-out.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(OrderStatus) -> bool,
    ) -> Option<OrderStatus> {
        self.next(timeout, |change| match change {
            OrderChange::Status(c) if wanted(c.to) => Some(c.to),
            _ => None,
        })
        .await
    }

    /// Waits up to `timeout` for the placement's outcome: sent straight
    /// to this replica, or its status event, whichever comes first; `None` on time-out.
    pub async fn wait_for_placement(&mut self, timeout: Duration) -> Option<Heard> {
        self.next(timeout, |change| match change {
            OrderChange::Placed(o) => Some(Heard::Outcome(o.clone())),
            OrderChange::Status(c) if c.to.is_recorded() => Some(Heard::Event),
            _ => None,
        })
        .await
    }

    /// Waits up to `timeout` for a change of the order's refund `refund_id` (its recording,
    /// `REQUESTED` or `REFUSED`, or a later answer); returns its status, or `None` on time-out.
    pub async fn wait_for_refund(
        &mut self,
        timeout: Duration,
        refund_id: Uuid,
    ) -> Option<RefundStatus> {
        self.next(timeout, |change| match change {
            OrderChange::Refund(c) if c.refund_id == refund_id => Some(c.status),
            _ => None,
        })
        .await
    }

    /// The first change `pick` takes within `timeout`.
    async fn next<T>(
        &mut self,
        timeout: Duration,
        pick: impl Fn(&OrderChange) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(change)) => match pick(change.as_ref()) {
                    Some(picked) => return Some(picked),
                    None => continue,
                },
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.watch
            .registry()
            .remove(Scope::Order(self.order_id), self.id);
    }
}

impl OrderWatch {
    /// Starts listening for `order_id`; register before publishing the command, so an
    /// outcome that arrives quickly is not missed.
    pub async fn register(self: &Arc<Self>, order_id: Uuid) -> Waiter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id();
        self.registry()
            .slots(Scope::Order(order_id))
            .push(Slot { id, tx, end: None });
        let waiter = Waiter::new(Arc::clone(self), order_id, id, rx);
        // Listed first: this replica cannot stop hearing in between.
        self.hear().await;
        waiter
    }
}
