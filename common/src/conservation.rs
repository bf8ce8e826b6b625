//! The stock and money conservation rules, stated once and checked by one function that the
//! api's report (`GET /api/v1/admin/stock-reconciliation`), the workers' drift gauge and the
//! bench's verdict all call. For every product,
//!
//!   initial stock + Σ adjustments + Σ restocked returns = available stock + Σ quantities held
//!
//! where "held" is the reservations still `reserved` or `committed` (orders whose status
//! [holds stock](OrderStatus::holds_stock), less what was cancelled of them), and restocked
//! returns are the stock ledger's entries of kind `return`; and for every order,
//!
//!   amount_paid - amount_refunded = Σ applied payments - Σ succeeded refunds of that money
//!
//! each side of which is also checked on its own.
//!
//! The check does not read history. Triggers append every change of the ledger and the
//! reservations to `stock_journal`, and list every order whose status, lines, reservations,
//! payments or refunds changed in `orders_to_verify` (migrations/0021): a check folds the
//! journal into the running `stock_balances`, compares them with each product, verifies the
//! listed orders and forgets those that add up. Its cost is the catalogue plus what changed
//! since the previous check, whatever the number of orders.

use crate::domain::OrderStatus;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use uuid::Uuid;

/// A product whose stock does not add up, or that an order holds the wrong quantity of.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = Drift)]
pub struct StockDrift {
    pub product_id: Uuid,
    pub name: String,
    pub initial_stock: i64,
    /// Σ of the stock ledger's adjustments (kind `adjustment`).
    pub adjustments: i64,
    /// Σ of the quantities received returns put back (ledger entries of kind `return`).
    pub returns_restocked: i64,
    pub available: i64,
    /// Reserved or committed by orders.
    pub held: i64,
    /// `initial_stock + adjustments + returns_restocked - available - held`: positive means
    /// stock went missing.
    pub difference: i64,
    /// Held quantities of orders whose status does not hold stock (or the reverse): the first
    /// place to look.
    pub mismatched_orders: i64,
}

/// An order whose money figures disagree with its payments and refunds.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct MoneyDrift {
    pub order_id: Uuid,
    /// The order's `amount_paid`.
    pub amount_paid: i64,
    /// Σ of its applied succeeded payments.
    pub payments_applied: i64,
    /// The order's `amount_refunded`.
    pub amount_refunded: i64,
    /// Σ of its succeeded refunds of captured money (not of `refund_required` payments).
    pub refunds_succeeded: i64,
    /// `(amount_paid - amount_refunded) - (payments_applied - refunds_succeeded)`.
    pub difference: i64,
}

/// What one check found.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub products_checked: i64,
    pub drift: Vec<StockDrift>,
    /// Orders verified by this check: those changed since the previous one (or still in drift).
    pub orders_checked: i64,
    pub money_drift: Vec<MoneyDrift>,
}

impl Findings {
    pub fn consistent(&self) -> bool {
        self.drift.is_empty() && self.money_drift.is_empty()
    }
}

/// Checks (one report at a time, in one snapshot, so concurrent changes cannot fake a drift).
/// Two checks started together are serialised; the later one retries on a fresh snapshot.
pub async fn check(db: &PgPool) -> Result<Findings, sqlx::Error> {
    serialised(|| check_once(db)).await
}

/// Recomputes the running balances from the whole history and lists every order again, then
/// checks: for after rows were changed with the triggers off (a restore or a repair made under
/// `session_replication_role = replica`), which the journal cannot have seen. Reads every
/// order once; later checks are back to what changed.
pub async fn check_from_history(db: &PgPool) -> Result<Findings, sqlx::Error> {
    serialised(|| rebuild(db)).await?;
    check(db).await
}

/// Runs `attempt` until it does not fail for a concurrent check (SQLSTATE 40001), at most six
/// times.
async fn serialised<T, F, Fut>(attempt: F) -> Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempts = 0;
    loop {
        match attempt().await {
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("40001") && attempts < 5 =>
            {
                attempts += 1;
            }
            done => return done,
        }
    }
}

/// A REPEATABLE READ transaction holding the lock that serialises checks.
async fn snapshot(db: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", CHECK_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The balances as the history gives them, in place of the running ones, and every order
/// listed for its next check. What commits after this snapshot stays in the journal.
async fn rebuild(db: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = snapshot(db).await?;
    sqlx::query!("SELECT FROM stock_balances_from_history()")
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The advisory lock that serialises checks.
const CHECK_LOCK: i64 = 0x636f_6e73_6572_7665; // "conserve"

async fn check_once(db: &PgPool) -> Result<Findings, sqlx::Error> {
    let mut tx = snapshot(db).await?;
    // What the snapshot sees of the journal joins the balances; what commits later stays
    // for the next check.
    sqlx::query!(
        "WITH moved AS (
             DELETE FROM stock_journal RETURNING product_id, adjusted, restocked, held
         )
         INSERT INTO stock_balances (product_id, adjusted, restocked, held)
         SELECT m.product_id, sum(m.adjusted), sum(m.restocked), sum(m.held)
           FROM moved m JOIN products p ON p.id = m.product_id
          GROUP BY m.product_id ORDER BY m.product_id
         ON CONFLICT (product_id) DO UPDATE
            SET adjusted = stock_balances.adjusted + excluded.adjusted,
                restocked = stock_balances.restocked + excluded.restocked,
                held = stock_balances.held + excluded.held",
    )
    .execute(&mut *tx)
    .await?;
    let holding: Vec<OrderStatus> = OrderStatus::ALL
        .into_iter()
        .filter(|s| s.holds_stock())
        .collect();
    // Listed orders holding another quantity of a product than their status and lines ask
    // for: what was ordered less what was cancelled while the status holds stock, else none.
    let mismatched = sqlx::query!(
        r#"
        SELECT i.order_id AS "order_id!", i.product_id AS "product_id!"
          FROM (SELECT DISTINCT order_id FROM orders_to_verify) m
          JOIN orders o ON o.id = m.order_id
          JOIN order_items i ON i.order_id = o.id
          LEFT JOIN reservations r ON r.order_id = i.order_id AND r.product_id = i.product_id
                                  AND r.state <> 'released'
         WHERE COALESCE(r.quantity, 0)
               <> CASE WHEN o.status = ANY($1) THEN i.quantity - i.cancelled_quantity ELSE 0 END
        "#,
        &holding as &[OrderStatus],
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut per_product: BTreeMap<Uuid, i64> = BTreeMap::new();
    for m in &mismatched {
        *per_product.entry(m.product_id).or_default() += 1;
    }
    let (products, counts): (Vec<Uuid>, Vec<i64>) = per_product.into_iter().unzip();
    let products_checked = sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM products"#)
        .fetch_one(&mut *tx)
        .await?;
    let drift = sqlx::query_as!(
        StockDrift,
        r#"
        WITH mismatched AS (
            SELECT * FROM unnest($1::uuid[], $2::int8[]) AS m(product_id, total)
        ), figures AS (
            SELECT p.id, p.name, p.initial_stock::int8 AS initial_stock,
                   COALESCE(b.adjusted, 0) AS adjusted, COALESCE(b.restocked, 0) AS restocked,
                   p.stock::int8 AS available, COALESCE(b.held, 0) AS held,
                   COALESCE(m.total, 0) AS mismatched
              FROM products p
              LEFT JOIN stock_balances b ON b.product_id = p.id
              LEFT JOIN mismatched m ON m.product_id = p.id
        )
        SELECT id AS "product_id!", name AS "name!", initial_stock AS "initial_stock!",
               adjusted AS "adjustments!", restocked AS "returns_restocked!",
               available AS "available!", held AS "held!",
               initial_stock + adjusted + restocked - available - held AS "difference!",
               mismatched AS "mismatched_orders!"
          FROM figures
         WHERE initial_stock + adjusted + restocked - available - held <> 0 OR mismatched <> 0
         ORDER BY id
        "#,
        &products,
        &counts,
    )
    .fetch_all(&mut *tx)
    .await?;
    let orders_checked =
        sqlx::query_scalar!(r#"SELECT count(DISTINCT order_id) AS "count!" FROM orders_to_verify"#)
            .fetch_one(&mut *tx)
            .await?;
    let money_drift = sqlx::query_as!(
        MoneyDrift,
        r#"
        WITH listed AS (
            SELECT DISTINCT order_id FROM orders_to_verify
        ), paid AS (
            SELECT p.order_id, sum(p.amount)::int8 AS total
              FROM listed l JOIN payments p ON p.order_id = l.order_id
             WHERE p.kind = 'succeeded' AND p.outcome = 'applied' GROUP BY p.order_id
        ), refunded AS (
            SELECT r.order_id, sum(r.amount)::int8 AS total
              FROM listed l JOIN refunds r ON r.order_id = l.order_id
             WHERE r.status = 'SUCCEEDED' AND r.payment_reference IS NULL GROUP BY r.order_id
        )
        SELECT o.id AS order_id, o.amount_paid, COALESCE(paid.total, 0) AS "payments_applied!",
               o.amount_refunded, COALESCE(refunded.total, 0) AS "refunds_succeeded!",
               (o.amount_paid - o.amount_refunded)
                 - (COALESCE(paid.total, 0) - COALESCE(refunded.total, 0)) AS "difference!"
          FROM listed l
          JOIN orders o ON o.id = l.order_id
          LEFT JOIN paid ON paid.order_id = o.id
          LEFT JOIN refunded ON refunded.order_id = o.id
         WHERE o.amount_paid <> COALESCE(paid.total, 0)
            OR o.amount_refunded <> COALESCE(refunded.total, 0)
         ORDER BY o.id
        "#,
    )
    .fetch_all(&mut *tx)
    .await?;
    // Forget the verified orders; those in drift stay listed, once each, until put right.
    let drifting: Vec<Uuid> = mismatched
        .iter()
        .map(|m| m.order_id)
        .chain(money_drift.iter().map(|d| d.order_id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    sqlx::query!(
        "WITH forgotten AS (DELETE FROM orders_to_verify)
         INSERT INTO orders_to_verify (order_id) SELECT unnest($1::uuid[])",
        &drifting,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Findings {
        products_checked,
        drift,
        orders_checked,
        money_drift,
    })
}
