//! The reservation-expiry sweeper: unpaid CONFIRMED orders older than `RESERVATION_TTL_SECS`
//! are cancelled with reason `reservation_expired`, and their stock released.
//!
//! The sweeper changes nothing itself: it publishes a transition command per expired order,
//! allowed only from CONFIRMED, with the same message id whoever publishes it
//! (`order:<id>:to:CANCELLED:system:expiry`, named by its actor). With many worker instances
//! sweeping at once, the server drops the duplicate commands, and the transition (with its
//! stock release, in one transaction) is applied once; an order paid meanwhile is left alone.

use crate::context::Context;
use common::correlation::CorrelationId;
use common::domain::{Actor, OrderStatus, Reason};
use common::messages::TransitionOrder;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Orders handled per sweep; the next sweep continues where this one stopped.
const SWEEP_BATCH: i64 = 500;

pub const EXPIRED_REASON: &str = "reservation_expired";

/// Sweeps every `interval` until shutdown.
pub async fn run(ctx: Context, interval: Duration, shutdown: CancellationToken) {
    tracing::info!(?interval, ttl = ?ctx.config.reservation_ttl, "expiry sweeper started");
    loop {
        match sweep(&ctx).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired reservations sent for cancellation"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying next round"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tracing::info!("expiry sweeper stopped");
}

/// One sweep: finds expired reservations and publishes their cancellation commands.
pub async fn sweep(ctx: &Context) -> anyhow::Result<usize> {
    let ttl_secs = ctx.config.reservation_ttl.as_secs_f64();
    // The status is written out, not bound: the partial index `orders_confirmed_reserved_at`
    // serves only a statement whose predicate names it, in every plan PostgreSQL caches.
    let expired: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM orders
          WHERE status = 'CONFIRMED' AND reserved_at < now() - make_interval(secs => $1)
          ORDER BY reserved_at
          LIMIT $2",
        ttl_secs,
        SWEEP_BATCH,
    )
    .fetch_all(&ctx.db)
    .await?;
    let count = expired.len();
    let correlation = CorrelationId::bounded("expiry-sweeper");
    let actor = Actor::new("system:expiry").map_err(anyhow::Error::msg)?;
    let reason = Reason::new(EXPIRED_REASON).map_err(anyhow::Error::msg)?;
    let publishes = expired.into_iter().map(|order_id| {
        ctx.bus.publish(
            TransitionOrder {
                reason: Some(reason.clone()),
                allowed_from: Some(vec![OrderStatus::Confirmed]),
                ..TransitionOrder::new(order_id, OrderStatus::Cancelled, actor.clone())
            },
            &correlation,
        )
    });
    for result in futures::future::join_all(publishes).await {
        result?;
    }
    if count > 0 {
        metrics::counter!("orders_expired_total").increment(count as u64);
    }
    Ok(count)
}
