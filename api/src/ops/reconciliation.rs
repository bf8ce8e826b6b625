//! The stock and money reconciliation: checks the conservation invariants
//! (docs/architecture.md), for every product,
//!
//!   initial stock + Σ adjustments + Σ restocked returns = available stock + Σ quantities held
//!
//! where "held" is the reservations still `reserved` or `committed` (orders CONFIRMED, PAID,
//! PARTIALLY_SHIPPED, SHIPPED or DELIVERED, less what was cancelled of them), and restocked
//! returns are the stock ledger's entries of kind `return`; and for every order,
//!
//!   amount_paid - amount_refunded = Σ applied payments - Σ succeeded refunds of that money
//!
//! each side of which is also checked on its own. It should never find a drift; if it does,
//! the report says where to look.

use crate::auth::AdminUser;
use crate::error::{ApiResult, Problem};
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Drift {
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
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Reconciliation {
    pub products_checked: i64,
    /// True when neither stock nor money drifts.
    pub consistent: bool,
    pub drift: Vec<Drift>,
    pub orders_checked: i64,
    /// Orders whose money does not add up.
    pub money_drift: Vec<MoneyDrift>,
    /// Where to look when `drift` is not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Check stock conservation for every product and money conservation for every order (ADMIN).
/// Exact when no order is in flight.
#[utoipa::path(get, path = "/admin/stock-reconciliation", tag = "operations", operation_id = "reconcile_stock",
    responses(
        (status = 200, description = "The result, per product in drift", body = Reconciliation),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn reconcile(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<axum::Json<Reconciliation>> {
    // One snapshot for every figure, so concurrent changes cannot fake a drift.
    let mut tx = state.db.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let products_checked = sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM products"#)
        .fetch_one(&mut *tx)
        .await?;
    let drift = sqlx::query_as!(
        Drift,
        r#"
        WITH adj AS (
            SELECT product_id, (sum(delta) FILTER (WHERE kind = 'adjustment'))::int8 AS total,
                   (sum(delta) FILTER (WHERE kind = 'return'))::int8 AS returned
              FROM stock_adjustments GROUP BY product_id
        ), held AS (
            SELECT product_id, sum(quantity)::int8 AS total
              FROM reservations WHERE state IN ('reserved', 'committed') GROUP BY product_id
        ), mismatched AS (
            SELECT r.product_id, count(*)::int8 AS total
              FROM reservations r JOIN orders o ON o.id = r.order_id
              JOIN order_items i ON i.order_id = r.order_id AND i.product_id = r.product_id
             WHERE (r.state IN ('reserved', 'committed'))
                <> (o.status IN ('CONFIRMED', 'PAID', 'PARTIALLY_SHIPPED', 'SHIPPED', 'DELIVERED')
                    AND i.cancelled_quantity < i.quantity)
                OR (r.state IN ('reserved', 'committed')
                    AND r.quantity <> i.quantity - i.cancelled_quantity)
             GROUP BY r.product_id
        )
        SELECT p.id AS product_id, p.name,
               p.initial_stock::int8 AS "initial_stock!",
               COALESCE(adj.total, 0) AS "adjustments!",
               COALESCE(adj.returned, 0) AS "returns_restocked!",
               p.stock::int8 AS "available!",
               COALESCE(held.total, 0) AS "held!",
               p.initial_stock + COALESCE(adj.total, 0) + COALESCE(adj.returned, 0) - p.stock
                   - COALESCE(held.total, 0) AS "difference!",
               COALESCE(mismatched.total, 0) AS "mismatched_orders!"
          FROM products p
          LEFT JOIN adj ON adj.product_id = p.id
          LEFT JOIN held ON held.product_id = p.id
          LEFT JOIN mismatched ON mismatched.product_id = p.id
         WHERE p.initial_stock + COALESCE(adj.total, 0) + COALESCE(adj.returned, 0) - p.stock
                 - COALESCE(held.total, 0) <> 0
            OR COALESCE(mismatched.total, 0) <> 0
         ORDER BY p.id
        "#,
    )
    .fetch_all(&mut *tx)
    .await?;
    let orders_checked = sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM orders"#)
        .fetch_one(&mut *tx)
        .await?;
    let money_drift = sqlx::query_as!(
        MoneyDrift,
        r#"
        WITH paid AS (
            SELECT order_id, sum(amount)::int8 AS total FROM payments
             WHERE kind = 'succeeded' AND outcome = 'applied' GROUP BY order_id
        ), refunded AS (
            SELECT order_id, sum(amount)::int8 AS total FROM refunds
             WHERE status = 'SUCCEEDED' AND payment_reference IS NULL GROUP BY order_id
        )
        SELECT o.id AS order_id, o.amount_paid, COALESCE(paid.total, 0) AS "payments_applied!",
               o.amount_refunded, COALESCE(refunded.total, 0) AS "refunds_succeeded!",
               (o.amount_paid - o.amount_refunded)
                 - (COALESCE(paid.total, 0) - COALESCE(refunded.total, 0)) AS "difference!"
          FROM orders o
          LEFT JOIN paid ON paid.order_id = o.id
          LEFT JOIN refunded ON refunded.order_id = o.id
         WHERE o.amount_paid <> COALESCE(paid.total, 0)
            OR o.amount_refunded <> COALESCE(refunded.total, 0)
         ORDER BY o.id
        "#,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let consistent = drift.is_empty() && money_drift.is_empty();
    if !drift.is_empty() {
        tracing::error!(products = drift.len(), "stock conservation drift found");
    }
    if !money_drift.is_empty() {
        tracing::error!(orders = money_drift.len(), "money conservation drift found");
    }
    let hint = match (drift.is_empty(), money_drift.is_empty()) {
        (true, true) => None,
        (false, _) => Some(STOCK_HINT.to_owned()),
        (true, false) => Some(MONEY_HINT.to_owned()),
    };
    Ok(axum::Json(Reconciliation {
        products_checked,
        consistent,
        drift,
        orders_checked,
        money_drift,
        hint,
    }))
}

const MONEY_HINT: &str = "compare the order's amount_paid and amount_refunded with its payments \
     and refunds (GET /api/v1/orders/{id}); they are written in the same transaction by the \
     order worker, so a difference means a change made outside it";

const STOCK_HINT: &str = "compare the product's stock_adjustments ledger and its reservations with the orders' \
             timelines; a mismatched order (held stock on a cancelled or rejected order, or none on \
             a confirmed one) points at a release or reservation message still in flight or \
             dead-lettered (GET /api/v1/admin/dead-letters)";
