//! The after-sale routes: `POST /orders/{id}/fulfilments`, `…/fulfilments/{fid}/delivered`,
//! `…/cancel-remaining`, `…/returns`, `…/returns/{rid}/receive`, `…/reject` and `…/cancel`.

use super::{StepRequest, check_lines, check_reason, check_shipment, checked, run};
use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::orders::command::{Correlation, Wait};
use crate::orders::model::Order;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use common::messages::{AfterSaleStep, LineRequest};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(fulfil))
        .routes(routes!(delivered))
        .routes(routes!(cancel_remaining))
        .routes(routes!(request_return))
        .routes(routes!(receive_return))
        .routes(routes!(reject_return))
        .routes(routes!(cancel_return))
}

/// A shipment of some quantities of an order's lines.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilmentRequest {
    /// Each at most what is left of its line (neither shipped nor cancelled).
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<LineRequest>,
    #[schema(min_length = 1, max_length = 100, example = "UPS")]
    pub carrier: String,
    #[schema(min_length = 1, max_length = 100)]
    pub tracking_number: String,
    /// http or https, at most 2000 characters.
    pub tracking_url: Option<String>,
}

/// Why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Delivered quantities to return.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// Each at most what was delivered of its line and is not returned or asked for.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<LineRequest>,
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// What to do with each line of a return received.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// Per line of the return: back into stock (`restock: true`) or written off. A line not
    /// named is written off.
    #[serde(default)]
    pub lines: Vec<RestockLine>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockLine {
    pub product_id: Uuid,
    pub restock: bool,
}

/// Ship some quantities of a paid order (ADMIN).
///
/// One fulfilment of the lines given, each quantity at most what is left of its line, with
/// carrier and tracking. In one transaction: the fulfilment, its quantities' reservation
/// turned into a sale, and the order `PARTIALLY_SHIPPED` (something left) or `SHIPPED`
/// (nothing left). `201` with the order (the new fulfilment's id is the last of its
/// `fulfilments`); `409` naming the line or status at fault when the order does not allow it,
/// also when another request took the quantity first. Waits for the order worker up to 5 s,
/// or `Prefer: wait=N`; then `202`. With `Idempotency-Key`, a retry is the same request.
#[utoipa::path(post, path = "/orders/{id}/fulfilments", tag = "after the sale",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request (1-255 visible ASCII characters)")),
    request_body = FulfilmentRequest,
    responses(
        (status = 201, description = "Shipped", body = Order),
        (status = 202, description = "Accepted; the order worker has not answered yet", body = Order),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not PAID or PARTIALLY_SHIPPED, a product not in the order, or more than is left of a line", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines or shipment; `errors` names each", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "JetStream unavailable; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn fulfil(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(body): Json<FulfilmentRequest>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let lines = check_lines(&body.lines, &mut errors);
    check_shipment(
        &body.carrier,
        &body.tracking_number,
        body.tracking_url.as_deref(),
        &mut errors,
    );
    let step = AfterSaleStep::Fulfil {
        lines: checked(lines, errors)?,
        carrier: body.carrier,
        tracking_number: body.tracking_number,
        tracking_url: body.tracking_url,
    };
    let r = request(
        &admin,
        id,
        step,
        &headers,
        &correlation,
        wait,
        StatusCode::CREATED,
    );
    run(&state, r).await
}

/// Mark one shipment delivered (ADMIN).
///
/// The order becomes `DELIVERED` once nothing is left to ship and every shipment is
/// delivered. `409` for a shipment delivered already.
#[utoipa::path(post, path = "/orders/{id}/fulfilments/{fid}/delivered", tag = "after the sale",
    params(("id" = Uuid, Path, description = "Order id"), ("fid" = Uuid, Path, description = "Fulfilment id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request")),
    responses(
        (status = 200, description = "Delivered", body = Order),
        (status = 202, description = "Accepted; the order worker has not answered yet", body = Order),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No such shipment on the order, or delivered already", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn delivered(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path((id, fulfilment_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let step = AfterSaleStep::Deliver { fulfilment_id };
    let r = request(
        &admin,
        id,
        step,
        &headers,
        &correlation,
        wait,
        StatusCode::OK,
    );
    run(&state, r).await
}

/// Cancel what is not shipped yet (ADMIN).
///
/// Of a `PARTIALLY_SHIPPED` order: every quantity left is cancelled, its stock comes back and
/// its snapshot value is refunded through the refund path (the order's `refunds`), in one
/// transaction; the order is then `SHIPPED`. Of an order with nothing shipped (`CONFIRMED`,
/// `PAID`): the order is cancelled, as `POST /orders/{id}/cancel` does.
#[utoipa::path(post, path = "/orders/{id}/cancel-remaining", tag = "after the sale",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request")),
    request_body = ReasonRequest,
    responses(
        (status = 200, description = "Cancelled what was left", body = Order),
        (status = 202, description = "Accepted; the order worker has not answered yet", body = Order),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing left to cancel", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn cancel_remaining(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(body): Json<ReasonRequest>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let reason = check_reason(&body.reason, &mut errors);
    let step = AfterSaleStep::CancelRemaining {
        reason: checked(reason, errors)?,
    };
    let r = request(
        &admin,
        id,
        step,
        &headers,
        &correlation,
        wait,
        StatusCode::OK,
    );
    run(&state, r).await
}

/// Ask to return delivered quantities (the order's owner within `RETURN_WINDOW_DAYS` of its
/// latest delivery, or an ADMIN at any time).
///
/// Each quantity at most what was delivered of its line and is not returned or asked for
/// yet. `201` with the order (the return is the last of its `returns`, `REQUESTED`).
#[utoipa::path(post, path = "/orders/{id}/returns", tag = "after the sale",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request")),
    request_body = ReturnRequest,
    responses(
        (status = 201, description = "Return requested", body = Order),
        (status = 202, description = "Accepted; the order worker has not answered yet", body = Order),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yours)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Past the return window, nothing delivered, or more than is returnable of a line", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines or reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn request_return(
    State(state): State<AppState>,
    user: AuthUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(body): Json<ReturnRequest>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let lines = check_lines(&body.lines, &mut errors);
    let reason = check_reason(&body.reason, &mut errors);
    let (lines, reason) = checked(lines.zip(reason), errors)?;
    let step = AfterSaleStep::RequestReturn { lines, reason };
    let r = request(
        &user,
        id,
        step,
        &headers,
        &correlation,
        wait,
        StatusCode::CREATED,
    );
    run(&state, r).await
}

/// Receive a return's goods (ADMIN).
///
/// Each line restocked (`restock: true`: back into available stock, as a stock ledger entry
/// of kind `return`) or written off, and the lines' snapshot value (unit price × quantity)
/// refunded through the refund path, in one transaction. A received return is final: `409`
/// for a second receipt.
#[utoipa::path(post, path = "/orders/{id}/returns/{rid}/receive", tag = "after the sale",
    params(("id" = Uuid, Path, description = "Order id"), ("rid" = Uuid, Path, description = "Return id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request")),
    request_body = ReceiveRequest,
    responses(
        (status = 200, description = "Received", body = Order),
        (status = 202, description = "Accepted; the order worker has not answered yet", body = Order),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No such return, not REQUESTED, or a product not in it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn receive_return(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path((id, return_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<ReceiveRequest>,
) -> ApiResult<Response> {
    let restock = body
        .lines
        .iter()
        .filter(|l| l.restock)
        .map(|l| l.product_id)
        .collect();
    let step = AfterSaleStep::ReceiveReturn { return_id, restock };
    let r = request(
        &admin,
        id,
        step,
        &headers,
        &correlation,
        wait,
        StatusCode::OK,
    );
    run(&state, r).await
}

/// Reject a return (ADMIN), with a reason. `409` unless it is `REQUESTED`.
#[utoipa::path(post, path = "/orders/{id}/returns/{rid}/reject", tag = "after the sale",
    params(("id" = Uuid, Path, description = "Order id"), ("rid" = Uuid, Path, description = "Return id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request")),
    request_body = ReasonRequest,
    responses(
        (status = 200, description = "Rejected", body = Order),
        (status = 202, description = "Accepted; the order worker has not answered yet", body = Order),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No such return, or not REQUESTED", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn reject_return(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path((id, return_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<ReasonRequest>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let reason = check_reason(&body.reason, &mut errors);
    let step = AfterSaleStep::RejectReturn {
        return_id,
        reason: checked(reason, errors)?,
    };
    let r = request(
        &admin,
        id,
        step,
        &headers,
        &correlation,
        wait,
        StatusCode::OK,
    );
    run(&state, r).await
}

/// Withdraw a return not yet received (the order's owner or an ADMIN).
#[utoipa::path(post, path = "/orders/{id}/returns/{rid}/cancel", tag = "after the sale",
    params(("id" = Uuid, Path, description = "Order id"), ("rid" = Uuid, Path, description = "Return id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request")),
    responses(
        (status = 200, description = "Cancelled", body = Order),
        (status = 202, description = "Accepted; the order worker has not answered yet", body = Order),
        (status = 404, description = "No such order (or not yours)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No such return, or not REQUESTED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn cancel_return(
    State(state): State<AppState>,
    user: AuthUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path((id, return_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let step = AfterSaleStep::CancelReturn { return_id };
    let r = request(
        &user,
        id,
        step,
        &headers,
        &correlation,
        wait,
        StatusCode::OK,
    );
    run(&state, r).await
}

fn request<'a>(
    user: &'a AuthUser,
    order_id: Uuid,
    step: AfterSaleStep,
    headers: &'a HeaderMap,
    correlation: &'a common::correlation::CorrelationId,
    wait: Wait,
    made: StatusCode,
) -> StepRequest<'a> {
    StepRequest {
        user,
        order_id,
        step,
        headers,
        correlation,
        wait,
        made,
    }
}
