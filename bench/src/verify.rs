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
            SELECT order_id, sum(quantity)::int8 AS q FROM order_items GROUP BY order_id
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
                OR (o.status IN ('CONFIRMED', 'PAID', 'SHIPPED', 'DELIVERED')
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

    v.products_checked = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(db)
        .await?;
    let drift = sqlx::query_scalar(
        r#"
        WITH adj AS (
            SELECT product_id, sum(delta)::int8 AS total FROM stock_adjustments GROUP BY product_id
        ), held AS (
            SELECT product_id, sum(quantity)::int8 AS total
              FROM reservations WHERE state IN ('reserved', 'committed') GROUP BY product_id
        )
        SELECT count(*) FROM products p
          LEFT JOIN adj ON adj.product_id = p.id
          LEFT JOIN held ON held.product_id = p.id
         WHERE p.initial_stock + COALESCE(adj.total, 0) <> p.stock + COALESCE(held.total, 0)
        "#,
    )
    .fetch_one(db)
    .await?;
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
