//! Refunds over HTTP (ADMIN): `POST /orders/{id}/refunds`. The api checks the request against
//! the money the order (or the `refund_required` payment named) has left to give back, so the
//! common mistakes get an immediate answer, and publishes `orders.cmd.refund`; the order worker
//! checks again under the order's row lock, since another refund may be recorded in between:
//! it records the refund `REQUESTED` and asks the payment system for it, or records it
//! `REFUSED` with the reason. `Prefer: wait` answers that record.

use super::command::{Correlation, Wait, about_order, idempotency_key, preference_applied};
use super::model::{Order, Refund, RefundRequest};
use super::repo;
use super::service::{broker_unavailable, not_acknowledged};
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use common::domain::{Actor, PaymentStatus, Reason, Reference, RefundStatus};
use common::messages::RefundOrder;
use common::money::{MAX_MONEY, Money};
use common::refunds::{Refundable, refundable};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// Fixed namespace of the refund ids derived from `Idempotency-Key` (UUID v5).
const IDEMPOTENT_REFUND_IDS: Uuid = Uuid::from_u128(0x5d1e_77a0_3c2b_4b8e_a1f4_0c6d_92e3_7b15);
/// How long a request that JetStream found a duplicate of waits for the first one's refund
/// to be recorded, and how often it looks.
const RECORDING_WAIT: Duration = Duration::from_secs(5);
const RECORDING_POLL: Duration = Duration::from_millis(50);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(refund_order))
}

/// Refund part or all of an order's money (ADMIN).
///
/// `{"amount", "reason"}` gives back part of what the order's payment captured; with
/// `payment_reference` it gives back a payment recorded `refund_required` instead (wrong
/// amount, paid twice, paid after cancel; see `GET /admin/payments`). Requires an
/// `Idempotency-Key`: a retry with the same key is the same refund, and the same key with other
/// figures is a 422, also while the first request is still being recorded (the retry waits up
/// to 5 s for it, then answers 409 to retry shortly). Answered `202` with the
/// refund `REQUESTED` once JetStream has stored the command; the order worker records it and
/// asks the payment system, whose answer makes it `SUCCEEDED` or `FAILED` (see the order's
/// `refunds`). The refunds of an order never add up to more than was paid: a refund over what
/// is left is a 409 here and, when two race past this check, the order worker records the
/// second `REFUSED` with the reason (on the order, and announced like every refund change).
///
/// `Prefer: wait=N` (seconds, at most 10) waits for the order worker's record: `201` with the
/// refund `REQUESTED`, or `409` naming why it was `REFUSED`; `202` as usual if the wait runs
/// out. A retry of a refund recorded `REFUSED` is that `409` too.
#[utoipa::path(post, path = "/orders/{id}/refunds", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Idempotency-Key" = String, Header, description = "Required: a retry with the same key is the same refund (1-255 visible ASCII characters)"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the order worker to record the refund")),
    request_body = RefundRequest,
    responses(
        (status = 201, description = "Recorded within the requested wait (`REQUESTED`, or already answered by the payment system)", body = Refund,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 202, description = "Requested; the payment system answers later", body = Refund,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 400, description = "Malformed request or missing Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No money captured, or more than is left to refund (`refundable` names what is left), found here or recorded `REFUSED` by the order worker (`refund_id` names it, `detail` says why); or a request with this Idempotency-Key is still being recorded", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid amount, reason or payment_reference, or Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "JetStream unavailable; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn refund_order(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path(order_id): Path<Uuid>,
    Json(body): Json<RefundRequest>,
) -> ApiResult<Response> {
    let body = validate(body)?;
    let key = idempotency_key(&headers)?
        .ok_or_else(|| ApiError::BadRequest("a refund needs an Idempotency-Key".into()))?;
    let refund_id = Uuid::new_v5(
        &IDEMPOTENT_REFUND_IDS,
        format!("{order_id}:{key}").as_bytes(),
    );
    let order = repo::find(&state.db, order_id, None)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    if let Some(known) = order.refunds.iter().find(|r| r.id == refund_id) {
        return retry(&state, &order, known.clone(), &body, wait).await;
    }
    let refundable = refundable(&state.db, order_id, body.payment_reference.as_deref()).await?;
    let Refundable {
        paid,
        left,
        currency,
    } = match refundable {
        Some(refundable) => refundable,
        None => {
            return Err(ApiError::field(
                "payment_reference",
                "not a payment of this order to give back (outcome refund_required)",
            ));
        }
    };
    if paid == 0 {
        return Err(refusal(
            format!("order {order_id} has no money captured"),
            order.payment_status,
            0,
            None,
        ));
    }
    if body.amount.minor_units() > left {
        return Err(refusal(
            format!(
                "{} is more than is left to refund ({left} of {paid} {currency})",
                body.amount
            ),
            order.payment_status,
            left,
            None,
        ));
    }
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(broker_unavailable());
    }
    // Listen before publishing, so a fast record is not missed.
    let mut waiter = match wait.0 {
        Some(_) => Some(state.watch.register(order_id).await),
        None => None,
    };
    let actor = Actor::user(admin.id);
    let command = RefundOrder {
        refund_id,
        order_id,
        amount: body.amount,
        reason: body.reason.clone(),
        actor: actor.clone(),
        payment_reference: body.payment_reference.clone(),
    };
    let published = state
        .bus
        .publish(command, &correlation)
        .await
        .map_err(|e| not_acknowledged("refund", order_id, e))?;
    if published.duplicate {
        // JetStream holds a request under this key already, not recorded yet when the order
        // was read, perhaps for other figures: answered as a retry once it is recorded.
        let (order, known) = recorded(&state.db, order_id, refund_id)
            .await?
            .ok_or_else(|| {
                ApiError::conflict(
                    "a refund with this Idempotency-Key is still being recorded; retry shortly",
                )
            })?;
        return retry(&state, &order, known, &body, wait).await;
    }
    if let (Some(waiter), Some(timeout)) = (waiter.as_mut(), wait.0)
        && waiter.wait_for_refund(timeout, refund_id).await.is_some()
        && let Some((order, known)) = refund_of(&state.db, order_id, refund_id).await?
    {
        return outcome(&state, &order, known, wait).await;
    }
    let requested = Refund {
        id: refund_id,
        order_id,
        amount: body.amount,
        currency,
        reason: body.reason.into(),
        status: RefundStatus::Requested,
        payment_reference: body.payment_reference.map(String::from),
        actor: actor.into(),
        requested_at: chrono::Utc::now(),
        settled_at: None,
        provider_reference: None,
        failure_reason: None,
    };
    Ok(preference_applied(
        about_order(StatusCode::ACCEPTED, order_id, &requested),
        wait,
    ))
}

/// A retry: the refund as recorded, if it is the one asked for; else a 422.
async fn retry(
    state: &AppState,
    order: &Order,
    known: Refund,
    asked: &Asked,
    wait: Wait,
) -> ApiResult<Response> {
    if known.amount != asked.amount
        || known.reason != asked.reason.as_str()
        || known.payment_reference.as_deref() != asked.payment_reference.as_deref()
    {
        return Err(ApiError::Unprocessable(
            "Idempotency-Key was used for another refund of this order".into(),
        ));
    }
    outcome(state, order, known, wait).await
}

/// The answer naming a refund the order worker recorded: a 409 saying why, if it refused it;
/// else the refund, `201` when the caller waited for it and `202` otherwise.
async fn outcome(
    state: &AppState,
    order: &Order,
    refund: Refund,
    wait: Wait,
) -> ApiResult<Response> {
    if refund.status == RefundStatus::Refused {
        let left = refundable(&state.db, order.id, refund.payment_reference.as_deref())
            .await?
            .map_or(0, |r| r.left);
        let why = refund.failure_reason.as_deref().unwrap_or("refused");
        return Err(refusal(
            format!("refund {} was refused: {why}", refund.id),
            order.payment_status,
            left,
            Some(refund.id),
        ));
    }
    let status = match wait.0 {
        Some(_) => StatusCode::CREATED,
        None => StatusCode::ACCEPTED,
    };
    Ok(preference_applied(
        about_order(status, refund.order_id, &refund),
        wait,
    ))
}

/// Order `order_id` with its refund `refund_id`, if the order worker recorded it.
async fn refund_of(
    db: &PgPool,
    order_id: Uuid,
    refund_id: Uuid,
) -> ApiResult<Option<(Order, Refund)>> {
    Ok(repo::find(db, order_id, None).await?.and_then(|order| {
        let refund = order.refunds.iter().find(|r| r.id == refund_id).cloned();
        refund.map(|refund| (order, refund))
    }))
}

/// [`refund_of`], until [`RECORDING_WAIT`] has passed; `None` if it is not recorded by then.
async fn recorded(
    db: &PgPool,
    order_id: Uuid,
    refund_id: Uuid,
) -> ApiResult<Option<(Order, Refund)>> {
    let deadline = tokio::time::Instant::now() + RECORDING_WAIT;
    loop {
        let found = refund_of(db, order_id, refund_id).await?;
        if found.is_some() || tokio::time::Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(RECORDING_POLL).await;
    }
}

/// A 409 naming the order's payment status, what is left to refund and, when the order worker
/// recorded it `REFUSED`, the refund.
fn refusal(
    detail: String,
    payment_status: PaymentStatus,
    refundable: i64,
    refused: Option<Uuid>,
) -> ApiError {
    let mut extensions = serde_json::Map::new();
    extensions.insert("payment_status".into(), json!(payment_status));
    extensions.insert("refundable".into(), json!(refundable));
    if let Some(refund_id) = refused {
        extensions.insert("refund_id".into(), json!(refund_id));
        extensions.insert("refund_status".into(), json!(RefundStatus::Refused));
    }
    ApiError::Conflict { detail, extensions }
}

/// A refund request, validated.
struct Asked {
    /// At least 1.
    amount: Money,
    reason: Reason,
    payment_reference: Option<Reference>,
}

/// The request with its texts trimmed, or a 422 naming every bad field.
fn validate(body: RefundRequest) -> Result<Asked, ApiError> {
    let mut errors = Vec::new();
    let amount = Money::new(body.amount).ok().filter(|a| !a.is_zero());
    if amount.is_none() {
        errors.push(FieldError::new(
            "amount",
            format!("must be 1 to {MAX_MONEY} minor units"),
        ));
    }
    let reason = Reason::new(&body.reason)
        .map_err(|message| errors.push(FieldError::new("reason", message)))
        .ok();
    let payment_reference = body
        .payment_reference
        .as_deref()
        .map(Reference::new)
        .transpose()
        .map_err(|message| errors.push(FieldError::new("payment_reference", message)))
        .ok();
    match (amount, reason, payment_reference) {
        (Some(amount), Some(reason), Some(payment_reference)) if errors.is_empty() => Ok(Asked {
            amount,
            reason,
            payment_reference,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}
