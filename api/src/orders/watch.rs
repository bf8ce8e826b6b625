//! Waiting for an order's next status without polling the database: the api subscribes once
//! to `orders.evt.status_changed` and wakes the requests waiting on that order.

use common::domain::OrderStatus;
use common::messages::OrderStatusChanged;
use common::messaging::{Message, Namespace, decode};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

type Waiters = HashMap<Uuid, Vec<(u64, mpsc::UnboundedSender<OrderStatus>)>>;

#[derive(Default)]
pub struct OrderWatch {
    waiters: Mutex<Waiters>,
    next_id: AtomicU64,
}

impl OrderWatch {
    /// Subscribes to status changes (core NATS: every api replica gets every event).
    pub async fn start(nats: &async_nats::Client, ns: &Namespace) -> anyhow::Result<Arc<Self>> {
        let subject = ns.subject(OrderStatusChanged::SUBJECT);
        let mut subscription = nats.subscribe(subject).await?;
        let watch = Arc::new(OrderWatch::default());
        let weak = Arc::downgrade(&watch);
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let Some(watch) = weak.upgrade() else { break };
                match decode::<OrderStatusChanged>(&message.payload) {
                    Ok(event) => watch.notify(event.data.order_id, event.data.to),
                    Err(e) => tracing::warn!(error = %e, "undecodable status event ignored"),
                }
            }
        });
        Ok(watch)
    }

    fn notify(&self, order_id: Uuid, status: OrderStatus) {
        let Ok(waiters) = self.waiters.lock() else {
            return;
        };
        if let Some(list) = waiters.get(&order_id) {
            for (_, tx) in list {
                let _ = tx.send(status);
            }
        }
    }

    /// Starts listening for `order_id`; register before publishing the command, so an
    /// outcome that arrives quickly is not missed.
    pub fn register(self: &Arc<Self>, order_id: Uuid) -> Waiter {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.entry(order_id).or_default().push((id, tx));
        }
        Waiter {
            watch: Arc::clone(self),
            order_id,
            id,
            rx,
        }
    }
}

/// A registration; dropping it unregisters.
pub struct Waiter {
    watch: Arc<OrderWatch>,
    order_id: Uuid,
    id: u64,
    rx: mpsc::UnboundedReceiver<OrderStatus>,
}

impl Waiter {
    /// Waits up to `timeout` for a status accepted by `wanted`; returns it, or `None` on time-out.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(OrderStatus) -> bool,
    ) -> Option<OrderStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(status)) if wanted(status) => return Some(status),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.watch.waiters.lock()
            && let Some(list) = waiters.get_mut(&self.order_id)
        {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                waiters.remove(&self.order_id);
            }
        }
    }
}
