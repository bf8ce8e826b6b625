//! The periodic stock reconciliation: every `STOCK_RECONCILIATION_INTERVAL_MS` the workers
//! check the conservation rules (`common::conservation`, at the cost of the catalogue and of
//! what changed since the previous check) and export how many products break them as the
//! gauge `stock_drift_products` (0 when all is well), which an alert watches. `GET /api/v1/admin/stock-reconciliation` shows the details.
//! The same round counts the payments recorded `refund_required` whose money no refund has
//! given back or been asked for yet, as the gauge `payments_awaiting_refund` (the refund queue,
//! `GET /api/v1/admin/payments?outcome=refund_required`), for alerting.

use crate::context::Context;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The gauge of the last check's result.
pub const DRIFT_GAUGE: &str = "stock_drift_products";
/// The gauge of the refund queue's length.
pub const AWAITING_REFUND_GAUGE: &str = "payments_awaiting_refund";

/// Checks at start and then every interval until `shutdown`. A failed check (the database
/// unreachable) is logged and leaves the gauge at its last value; readiness reports the outage.
pub async fn run(ctx: Context, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(ctx.config.stock_reconciliation_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match drifting_products(&ctx.db).await {
            Ok(drifting) => {
                if drifting > 0 {
                    tracing::error!(
                        products = drifting,
                        "stock conservation drift found: see GET /api/v1/admin/stock-reconciliation"
                    );
                }
                metrics::gauge!(DRIFT_GAUGE).set(drifting as f64);
            }
            Err(e) => tracing::warn!(error = %e, "stock reconciliation check failed"),
        }
        match awaiting_refund(&ctx.db).await {
            Ok(waiting) => metrics::gauge!(AWAITING_REFUND_GAUGE).set(waiting as f64),
            Err(e) => tracing::warn!(error = %e, "refund queue count failed"),
        }
    }
}

/// How many payments recorded `refund_required` still have money that no refund has given
/// back or been asked for (`payment_records.awaiting_refund`, migrations/0023).
pub async fn awaiting_refund(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"
        SELECT count(*) AS "count!"
          FROM payment_records
         WHERE outcome = 'refund_required' AND awaiting_refund > 0
        "#,
    )
    .fetch_one(db)
    .await
}

/// How many products break the conservation rules (orders in money drift are logged; the
/// report shows them).
pub async fn drifting_products(db: &PgPool) -> Result<i64, sqlx::Error> {
    let found = common::conservation::check(db).await?;
    if !found.money_drift.is_empty() {
        tracing::error!(
            orders = found.money_drift.len(),
            "money conservation drift found: see GET /api/v1/admin/stock-reconciliation"
        );
    }
    Ok(found.drift.len() as i64)
}
