//! HTTP handlers of the orders domain.

use super::command::{Correlation, Wait, answer, idempotency_key, request_id};
use super::model::{ListOrdersQuery, Order, PlaceOrderRequest, StatusChangeRequest};
use super::repo::{self, ListFilter};
use super::service;
use super::transitions;
use crate::auth::{AdminUser, AuthUser, ClientUser};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::pagination::{Keyset, Page};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use common::domain::{OrderStatus, Reason};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(change_status))
        .routes(routes!(cancel_order))
}

/// Move an order along its lifecycle (ADMIN).
///
/// `PAID`, `SHIPPED`, `DELIVERED` or `CANCELLED`, if the lifecycle allows it from the current
/// status (else 409 naming it). Published as a command: `202` with the order as it stands, or
/// with `Prefer: wait=N` `200` once the change is applied. Asking for the status the order
/// already has is a `200` that changes nothing.
///
/// A move to `SHIPPED` may carry the shipment: `carrier` and `tracking_number` together, and
/// optionally `tracking_url` (http or https). It is stored with the order (`shipment`) and
/// carried in the `SHIPPED` status event. Shipment fields with another status are a 422; a
/// shipment other than the recorded one for an order already `SHIPPED` is a 409.
///
/// With `Idempotency-Key`, a retry is the same request: it is answered with what the first
/// one led to (the order as it stands; a 409 if the order moved where the change cannot
/// follow), never accepted twice.
#[utoipa::path(patch, path = "/orders/{id}/status", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the change"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request (1-255 visible ASCII characters)")),
    request_body = StatusChangeRequest,
    responses(
        (status = 200, description = "The order has the requested status", body = Order),
        (status = 202, description = "Accepted; the order worker applies it", body = Order),
        (status = 400, description = "Malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal transition, or another shipment for a shipped order; `current_status` names the status", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid status, reason or shipment fields; `errors` names each", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "JetStream unavailable; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn change_status(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(body): Json<StatusChangeRequest>,
) -> ApiResult<Response> {
    let (reason, shipment) = transitions::validate_transition(&body)?;
    let request = request_id(admin.id, idempotency_key(&headers)?, &correlation);
    let commanded = transitions::request(
        &state,
        transitions::TransitionRequest {
            user: admin,
            order_id: id,
            to: body.status,
            reason,
            allowed_from: None,
            shipment,
            wait: wait.0,
            correlation_id: &correlation,
            request,
        },
    )
    .await?;
    Ok(answer(commanded, StatusCode::OK, wait))
}

/// Cancel an order; its reserved stock is released.
///
/// The customer may cancel before payment (`CONFIRMED`), an ADMIN before shipping (`CONFIRMED`
/// or `PAID`). An ADMIN cancelling a `PAID` order also requests a refund of the money it
/// captured, in the same step (the order's `refunds`). Cancelling a cancelled order is a `200`
/// that changes nothing. Each request is its own command: a customer's cancel that a payment
/// overtook never keeps a staff cancel from applying. With `Idempotency-Key`, a retry is the
/// same request, answered with what the first one led to.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the cancellation"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry the same request (1-255 visible ASCII characters)")),
    responses(
        (status = 200, description = "The order is cancelled", body = Order),
        (status = 202, description = "Accepted; the order worker cancels it", body = Order),
        (status = 400, description = "Malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yours)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too late to cancel; `current_status` names the status", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "JetStream unavailable; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let request = request_id(user.id, idempotency_key(&headers)?, &correlation);
    const STAFF: &[OrderStatus] = &[OrderStatus::Confirmed, OrderStatus::Paid];
    const CUSTOMER: &[OrderStatus] = &[OrderStatus::Confirmed];
    let (reason, allowed_from) = if user.is_admin() {
        ("cancelled by staff", STAFF)
    } else {
        ("cancelled by the customer", CUSTOMER)
    };
    let reason = Reason::new(reason).map_err(|e| ApiError::Internal(anyhow::Error::msg(e)))?;
    let commanded = transitions::request(
        &state,
        transitions::TransitionRequest {
            user,
            order_id: id,
            to: OrderStatus::Cancelled,
            reason: Some(reason),
            allowed_from: Some(allowed_from),
            shipment: None,
            wait: wait.0,
            correlation_id: &correlation,
            request,
        },
    )
    .await?;
    Ok(answer(commanded, StatusCode::OK, wait))
}

/// Place an order.
///
/// Answers once JetStream has stored the command: `202 Accepted` with the order `PENDING`.
/// With `Prefer: wait=N` (seconds, at most 10) it waits for the outcome and answers `201` with
/// the order `CONFIRMED` or `REJECTED` if it arrives in time. With `Idempotency-Key`, a retry
/// returns the same order.
///
/// An optional `shipping_address` is kept with the order as a snapshot; each of its fields is
/// checked and a bad one named in the 422 (`shipping_address.country`).
///
/// An account holds at most `MAX_UNPAID_ORDERS_PER_USER` unpaid (`CONFIRMED`) orders: past it
/// the answer is `429` with `Retry-After` (when the oldest reservation expires; paying or
/// cancelling one frees a slot at once) and `unpaid_orders`, before anything is published.
/// Placements racing past that check are recorded `REJECTED` with a reason starting `too many
/// unpaid orders`; with `Prefer: wait` such an order is answered `429` naming it (`order_id`).
#[utoipa::path(post, path = "/orders", tag = "orders",
    request_body = PlaceOrderRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries return the same order (1-255 visible ASCII characters)"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds (max 10) for the outcome"),
    ),
    responses(
        (status = 201, description = "Settled within the requested wait", body = Order),
        (status = 202, description = "Accepted; the outcome follows", body = Order,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 400, description = "Malformed request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Same Idempotency-Key still in flight, or a product has less stock left than a line asks for (type `/problems/out-of-stock`; `out_of_stock`: `product_id`, `requested`, `available` per short line; nothing was created)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines or shipping address, or Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The account holds as many unpaid orders as it may (`unpaid_orders`; `order_id` when the order was recorded REJECTED for it)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the oldest unpaid reservation expires"))),
        (status = 503, description = "JetStream did not acknowledge; nothing was created", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn place_order(
    State(state): State<AppState>,
    ClientUser(user): ClientUser,
    wait: Wait,
    Correlation(correlation): Correlation,
    headers: HeaderMap,
    Json(body): Json<PlaceOrderRequest>,
) -> ApiResult<Response> {
    let commanded = service::place(
        &state,
        user.id,
        body.items,
        body.shipping_address,
        idempotency_key(&headers)?,
        wait.0,
        &correlation,
    )
    .await?;
    Ok(answer(commanded, StatusCode::CREATED, wait))
}

/// An order with its lines, totals, status, rejection reason and timeline.
///
/// Customers see their own orders only; anyone else's is a 404, as if it did not exist. An
/// order accepted (202) and not recorded yet reads `PENDING`, priced from the catalogue.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yours)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Order>> {
    let owner = (!user.is_admin()).then_some(user.id);
    let order = super::lookup::find(&state, id, owner)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    Ok(axum::Json(order))
}

/// Orders, newest first, with keyset pagination and filters.
///
/// Customers see their own orders; ADMINs see everyone's and may filter by `user_id`. Any
/// caller may filter by shipping `country` and by `has_tracking`.
#[utoipa::path(get, path = "/orders", tag = "orders",
    params(ListOrdersQuery),
    responses(
        (status = 200, description = "A page of orders", body = Page<Order>),
        (status = 400, description = "Malformed parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or country", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<ListOrdersQuery>,
) -> ApiResult<axum::Json<Page<Order>>> {
    let keyset = Keyset::<(DateTime<Utc>, Uuid)>::parse(q.limit, q.cursor.as_deref())?;
    let owner = if user.is_admin() {
        q.user_id
    } else {
        Some(user.id)
    };
    if !user.is_admin() && q.user_id.is_some_and(|u| u != user.id) {
        return Err(ApiError::Forbidden);
    }
    let country = q
        .country
        .as_deref()
        .map(|c| {
            common::shipping::country_code(c).ok_or_else(|| {
                ApiError::field("country", "must be an ISO 3166-1 alpha-2 country code")
            })
        })
        .transpose()?;
    let filter = ListFilter {
        owner,
        status: q.status,
        created_from: q.created_from,
        created_to: q.created_to,
        country,
        has_tracking: q.has_tracking,
        after: keyset.after,
        limit: keyset.limit,
    };
    let rows = repo::list(&state.db, &filter).await?;
    Ok(axum::Json(keyset.page(rows, |o| (o.created_at, o.id))))
}
