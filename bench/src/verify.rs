//! The fault drill's checks, straight against PostgreSQL: every accepted order settled exactly
//! once, stock conserved for every product, no stock below zero.

use std::fmt;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct Verdict {
    pub accepted: usize,
    pub confirmed: i64,
    pub rejected: i64,
    pub cancelled_or_later: i64,
    /// Accepted orders with no row or still `PENDING` when the wait ended.
    pub unsettled: i64,
    /// Orders whose outcome was recorded more than once (two decisions, two outcome events, or
    /// held stock that does not match their lines).
    pub settled_twice: i64,
    pub products_checked: i64,
    pub products_in_drift: i64,
    pub negative_stock: i64,
    /// Orders in the database that no client was told were accepted (an answer lost on the
    /// way back): allowed, reported for information.
    pub unannounced_orders: i64,
    pub settle_time: Duration,
    /// Orders staff took through every step after the sale while the faults struck.
    pub after_sale_orders: usize,
    /// Of those, orders missing a step's effect (a shipment, refund, return, restock).
    pub after_sale_lost: i64,
    /// Of those, orders with a step's effect made twice.
    pub after_sale_doubled: i64,
    pub violations: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Returns `count`, recording the violation `what` describes when it is not zero.
    fn tally(&mut self, count: i64, what: impl FnOnce(i64) -> String) -> i64 {
        if count > 0 {
            self.violations.push(what(count));
        }
        count
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accepted orders      {} (confirmed {}, rejected {}, cancelled or later {})",
            self.accepted, self.confirmed, self.rejected, self.cancelled_or_later
        )?;
        writeln!(
            f,
            "unsettled            {} (waited {:.1} s)",
            self.unsettled,
            self.settle_time.as_secs_f64()
        )?;
        writeln!(f, "settled twice        {}", self.settled_twice)?;
        writeln!(
            f,
            "conservation         {} products checked, {} in drift",
            self.products_checked, self.products_in_drift
        )?;
        writeln!(f, "stock below zero     {}", self.negative_stock)?;
        writeln!(
            f,
            "after the sale       {} orders paid, shipped in part, the rest cancelled, delivered, returned and restocked: {} lost, {} doubled",
            self.after_sale_orders, self.after_sale_lost, self.after_sale_doubled
        )?;
        writeln!(f, "unannounced orders   {}", self.unannounced_orders)?;
        if self.violations.is_empty() {
            write!(f, "verdict              OK")
        } else {
            write!(
                f,
                "verdict              FAILED: {}",
                self.violations.join("; ")
            )
        }
    }
}

/// Waits up to `timeout` for every accepted order to leave `PENDING`, then checks everything.
pub async fn check(
    db: &sqlx::PgPool,
    accepted: &[Uuid],
    timeout: Duration,
) -> Result<Verdict, sqlx::Error> {
    let mut ids = accepted.to_vec();
    ids.sort();
    ids.dedup();
    let mut v = Verdict {
        accepted: ids.len(),
        ..Verdict::default()
    };
    if ids.len() != accepted.len() {
        v.violations.push(format!(
            "{} order ids were handed out twice",
            accepted.len() - ids.len()
        ));
    }
    let started = Instant::now();
    loop {
        v.unsettled = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::uuid[]) AS a(id)
              WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = a.id AND o.status <> 'PENDING')",
        )
        .bind(&ids)
        .fetch_one(db)
        .await?;
        if v.unsettled == 0 || started.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    v.settle_time = started.elapsed();
    v.tally(v.unsettled, |n| {
        format!("{n} accepted orders never settled")
    });

    let (confirmed, rejected, later): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'CONFIRMED'),
                count(*) FILTER (WHERE status = 'REJECTED'),
                count(*) FILTER (WHERE status NOT IN ('PENDING', 'CONFIRMED', 'REJECTED'))
           FROM orders WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(db)
    .await?;
    (v.confirmed, v.rejected, v.cancelled_or_later) = (confirmed, rejected, later);

    // Exactly once: one inventory decision and at most one outcome event per order, and the
    // stock an order holds is exactly its lines (none for an order that holds nothing).
    let settled_twice = sqlx::query_scalar(
        r#"
        WITH lines AS (
            SELECT order_id, sum(quantity - cancelled_quantity)::int8 AS q
              FROM order_items GROUP BY order_id
        ), held AS (
            SELECT order_id, sum(quantity)::int8 AS q, count(*) AS n
              FROM reservations WHERE state IN ('reserved', 'committed') GROUP BY order_id
        ), outcomes AS (
            SELECT order_id, count(*) AS n FROM order_events
             WHERE to_status IN ('CONFIRMED', 'REJECTED') GROUP BY order_id
        )
        SELECT count(*) FROM orders o
          LEFT JOIN lines l ON l.order_id = o.id
          LEFT JOIN held h ON h.order_id = o.id
          LEFT JOIN outcomes e ON e.order_id = o.id
         WHERE o.id = ANY($1)
           AND (COALESCE(e.n, 0) > 1
                OR (o.status IN ('CONFIRMED', 'PAID', 'PARTIALLY_SHIPPED', 'SHIPPED', 'DELIVERED')
                    AND COALESCE(h.q, -1) <> COALESCE(l.q, -2))
                OR (o.status IN ('REJECTED', 'CANCELLED') AND COALESCE(h.n, 0) > 0))
        "#,
    )
    .bind(&ids)
    .fetch_one(db)
    .await?;
    v.settled_twice = v.tally(settled_twice, |n| {
        format!("{n} orders settled more than once or hold the wrong stock")
    });

    let found = common::conservation::check(db).await?;
    v.products_checked = found.products_checked;
    let drift = found.drift.len() as i64;
    v.products_in_drift = v.tally(drift, |n| {
        format!("stock conservation broken for {n} products")
    });
    let negative = sqlx::query_scalar("SELECT count(*) FROM products WHERE stock < 0")
        .fetch_one(db)
        .await?;
    v.negative_stock = v.tally(negative, |n| format!("{n} products below zero stock"));
    v.unannounced_orders = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id <> ALL($1)")
        .bind(&ids)
        .fetch_one(db)
        .await?;
    Ok(v)
}

/// Checks the orders staff took through every step after the sale (`taken`): each has exactly
/// one shipment, delivered; one return, received, with one restocking ledger entry; two
/// refunds (what was left, and the return) when it captured money (none when staff marked it
/// paid by hand); and reads `DELIVERED`. Fewer is a lost step, more a doubled one. `failures` are steps that were never answered as expected.
pub async fn check_after_sale(
    db: &sqlx::PgPool,
    v: &mut Verdict,
    taken: &[Uuid],
    failures: &[String],
) -> Result<(), sqlx::Error> {
    v.after_sale_orders = taken.len();
    for failure in failures {
        v.violations
            .push(format!("a step after the sale failed: {failure}"));
    }
    let (lost, doubled): (i64, i64) = sqlx::query_as(
        r#"
        WITH counted AS (
            SELECT o.id, o.status,
                   (SELECT count(*) FROM fulfilments f WHERE f.order_id = o.id
                       AND f.status = 'DELIVERED') AS shipments,
                   (SELECT count(*) FROM returns r WHERE r.order_id = o.id
                       AND r.status = 'RECEIVED') AS returns,
                   (SELECT count(*) FROM stock_adjustments a JOIN returns r ON r.id = a.return_id
                     WHERE r.order_id = o.id) AS restocked,
                   (SELECT count(*) FROM refunds r WHERE r.order_id = o.id)
                       - CASE WHEN o.amount_paid > 0 THEN 2 ELSE 0 END AS extra_refunds
              FROM orders o WHERE o.id = ANY($1)
        )
        SELECT count(*) FILTER (WHERE status <> 'DELIVERED' OR shipments < 1 OR returns < 1
                                   OR restocked < 1 OR extra_refunds < 0),
               count(*) FILTER (WHERE shipments > 1 OR returns > 1 OR restocked > 1
                                   OR extra_refunds > 0)
          FROM counted
        "#,
    )
    .bind(taken)
    .fetch_one(db)
    .await?;
    v.after_sale_lost = v.tally(lost, |n| format!("{n} orders lost a step after the sale"));
    v.after_sale_doubled = v.tally(doubled, |n| {
        format!("{n} orders had a step after the sale made twice")
    });
    Ok(())
}
