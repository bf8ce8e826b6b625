//! The stock and money reconciliation report: the conservation rules of
//! `common::conservation` (and docs/architecture.md), checked on demand. It should never find
//! a drift; if it does, the report says where to look.

use crate::auth::AdminUser;
use crate::error::{ApiResult, Problem};
use crate::extract::Query;
use crate::state::AppState;
use axum::extract::State;
use common::conservation::{MoneyDrift, StockDrift};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReconciliationQuery {
    /// `true`: recompute the running balances from the whole history and verify every order,
    /// for after rows were changed with the triggers off (a restore); reads every order once.
    /// Absent or `false`: the catalogue and what changed since the previous check.
    pub full: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reconciliation {
    pub products_checked: i64,
    /// True when neither stock nor money drifts.
    pub consistent: bool,
    pub drift: Vec<StockDrift>,
    /// Orders verified by this report: those whose status, lines, reservations, payments or
    /// refunds changed since the previous check, and those still in drift. Every other order
    /// was verified before and has not changed since.
    pub orders_checked: i64,
    /// Orders whose money does not add up.
    pub money_drift: Vec<MoneyDrift>,
    /// Where to look when `drift` is not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Check stock conservation for every product and money conservation for every order (ADMIN).
/// Exact when no order is in flight. Reads the catalogue and what changed since the previous
/// check, not the order history.
#[utoipa::path(get, path = "/admin/stock-reconciliation", tag = "operations", operation_id = "reconcile_stock",
    params(ReconciliationQuery),
    responses(
        (status = 200, description = "The result, per product in drift", body = Reconciliation),
        (status = 400, description = "Malformed parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn reconcile(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<ReconciliationQuery>,
) -> ApiResult<axum::Json<Reconciliation>> {
    let found = if q.full == Some(true) {
        common::conservation::check_from_history(&state.db).await?
    } else {
        common::conservation::check(&state.db).await?
    };
    let consistent = found.consistent();
    let (drift, money_drift) = (found.drift, found.money_drift);
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
        products_checked: found.products_checked,
        consistent,
        drift,
        orders_checked: found.orders_checked,
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
