//! The payments the payment systems reported, for ADMINs: above all the refund queue
//! (`?outcome=refund_required`), the money taken that no order kept (wrong amount, paid twice,
//! paid after cancel) and not given back yet. Each is refunded with `POST
//! /orders/{order_id}/refunds` naming it (`payment_reference`), which takes it off the queue.

use crate::auth::AdminUser;
use crate::error::{ApiResult, Problem};
use crate::extract::Query;
use crate::pagination::{Keyset, Page};
use crate::state::AppState;
use axum::extract::State;
use chrono::{DateTime, Utc};
use common::domain::{PaymentKind, PaymentOutcome};
use common::money::{Currency, Money};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A payment and what became of it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct PaymentRecord {
    pub provider_reference: String,
    pub order_id: Uuid,
    /// `succeeded` or `failed`.
    pub kind: PaymentKind,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// `applied`, `refund_required` or `ignored`.
    pub outcome: PaymentOutcome,
    /// Why it was not applied (`amount mismatch: …`, `order is CANCELLED, not payable`).
    pub note: Option<String>,
    pub received_at: DateTime<Utc>,
    /// For a `refund_required` payment: what refunds of it have given back.
    pub refunded: i64,
    /// For a `refund_required` payment: what is still to give back, neither refunded nor
    /// requested (0 once refunds cover it).
    pub awaiting_refund: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentsQuery {
    /// `refund_required`: the refund queue, only payments with money still to give back.
    /// `applied`, `ignored`: those payments. Absent: every payment.
    #[param(inline)]
    pub outcome: Option<PaymentOutcome>,
    /// 1 to 100, default 20.
    #[param(example = 20, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Payments, oldest first; `?outcome=refund_required` is the refund queue (ADMIN).
#[utoipa::path(get, path = "/admin/payments", tag = "operations", operation_id = "list_payments",
    params(PaymentsQuery),
    responses(
        (status = 200, description = "A page of payments", body = Page<PaymentRecord>),
        (status = 400, description = "Malformed parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<PaymentsQuery>,
) -> ApiResult<axum::Json<Page<PaymentRecord>>> {
    let keyset = Keyset::<(DateTime<Utc>, String)>::parse(q.limit, q.cursor.as_deref())?;
    // The first page starts before any payment: the cursor is then always a bound of the
    // index scan, whatever plan PostgreSQL keeps for the statement.
    let (after_at, after_reference) = keyset
        .after
        .clone()
        .unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    // One statement per shape, each read through its index (`payments_received`,
    // `payments_outcome_received`).
    let rows = match q.outcome {
        None => {
            sqlx::query_as!(
                PaymentRecord,
                r#"SELECT provider_reference AS "provider_reference!", order_id AS "order_id!",
                        kind AS "kind!: PaymentKind",
                        amount AS "amount!: Money", currency AS "currency!: Currency",
                        outcome AS "outcome!: PaymentOutcome", note, received_at AS "received_at!",
                        refunded AS "refunded!", awaiting_refund AS "awaiting_refund!"
                   FROM payment_records
                  WHERE (received_at, provider_reference) > ($1, $2)
                  ORDER BY received_at, provider_reference LIMIT $3"#,
                after_at,
                after_reference,
                keyset.fetch(),
            )
            .fetch_all(&state.db)
            .await?
        }
        // A payment that needs a refund is listed while some of it still waits for one.
        Some(outcome) => {
            sqlx::query_as!(
                PaymentRecord,
                r#"SELECT provider_reference AS "provider_reference!", order_id AS "order_id!",
                        kind AS "kind!: PaymentKind",
                        amount AS "amount!: Money", currency AS "currency!: Currency",
                        outcome AS "outcome!: PaymentOutcome", note, received_at AS "received_at!",
                        refunded AS "refunded!", awaiting_refund AS "awaiting_refund!"
                   FROM payment_records
                  WHERE outcome = $1 AND (outcome <> 'refund_required' OR awaiting_refund > 0)
                    AND (received_at, provider_reference) > ($2, $3)
                  ORDER BY received_at, provider_reference LIMIT $4"#,
                outcome as PaymentOutcome,
                after_at,
                after_reference,
                keyset.fetch(),
            )
            .fetch_all(&state.db)
            .await?
        }
    };
    Ok(axum::Json(keyset.page(rows, |p| {
        (p.received_at, p.provider_reference.clone())
    })))
}
