//! Live order tracking over Server-Sent Events: `GET /orders/{id}/events` follows one order,
//! `GET /orders/events` every order of the caller (every order for an ADMIN).
//!
//! Streams are fed by the status and refund changes every replica hears on the bus (see
//! [`super::watch`]); PostgreSQL is read when a stream opens or resumes, and when an order's
//! stream decides to end (see [`super::follow`]). Event ids are timeline entry ids, so
//! `Last-Event-ID` resumes from PostgreSQL on any replica.

use super::entries::{self, StreamEntry};
use super::follow::{Filter, Follow, Replay, entry_event, is_final, order_event};
use super::watch::{Refused, Scope};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::refusals::{self, Limit};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use common::domain::OrderStatus;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// What a client told to retry later waits.
const RETRY_AFTER_SECS: u32 = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(order_events))
        .routes(routes!(all_order_events))
}

/// Filter of `GET /orders/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only status changes into this status (refund changes are left out).
    pub status: Option<OrderStatus>,
}

/// Follow one order live (Server-Sent Events).
///
/// The stream opens with an `order` event: the order as it stands (the same JSON as
/// `GET /orders/{id}`), whose `id` is the order's latest timeline entry. Then one event per
/// change, whose `id` is its timeline entry's id: `status_changed` for a status change (data:
/// the entry, `id`, `order_id`, `from`, `to`, `at`, `actor`, `reason`) and `refund_changed`
/// for a change of one of the order's refunds, requested, given back or failed (data: the
/// entry, `id`, `order_id`, `refund_id`, `refund_status`, `amount`, `currency`,
/// `payment_reference`, `at`, `actor`, `reason`, and on live events the order's
/// `payment_status`, `amount_paid` and `amount_refunded` after the change); after the sale,
/// `fulfilment_changed` (a shipment made or delivered: `id`, `order_id`, `fulfilment_id`,
/// `status`, `at`, `actor`) and `return_changed` (a return requested, received, rejected or
/// cancelled: `id`, `order_id`, `return_id`, `status`, `at`, `actor`, `reason`). The stream ends
/// once the order has reached a final status (`REJECTED`, `CANCELLED`, `DELIVERED`) and no
/// refund of it waits for the payment system's answer. A comment (`: keep-alive`) is sent
/// when nothing else was for `SSE_HEARTBEAT_SECS` (15 s). Every stream also ends when the
/// authorization that opened it does: at the access token's expiry, or when its session
/// expires or is revoked; the client reconnects with a fresh token and `Last-Event-ID`
/// (an expired token is answered 401) and misses nothing.
///
/// With `Last-Event-ID` (sent by browsers when they reconnect) the stream opens instead with
/// the entries of both kinds after that one, in order, read from PostgreSQL, so a reconnect
/// through any replica misses nothing; an order already final, with no refund pending and
/// nothing missed, is answered `204`, which tells a browser to stop reconnecting. A refund of
/// an order asked for after its stream ended is on the streams of many orders. The owner or
/// an ADMIN may follow an order; anyone else gets 404, as for the order itself.
#[utoipa::path(get, path = "/orders/{id}/events", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this timeline entry")),
    responses(
        (status = 200, description = "`text/event-stream`: an `order` event (data: Order), then `status_changed` events (data: StatusEntry), `refund_changed` events (data: RefundEntry), `fulfilment_changed` events (data: FulfilmentEntry) and `return_changed` events (data: ReturnEntry), each with the timeline entry's id",
            content((StreamEntry = "text/event-stream"))),
        (status = 204, description = "Resumed after the order's final change, with no refund pending: nothing more will come"),
        (status = 400, description = "Malformed id or Last-Event-ID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated, or the access token has expired", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yours)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The account has `SSE_STREAMS_PER_USER` streams open on this replica", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds to wait"))),
        (status = 503, description = "This replica serves `SSE_STREAMS_MAX` streams, or is shutting down", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn order_events(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let resume = last_event_id(&headers)?;
    time_left(&user)?;
    // Listening before reading, so a change committed meanwhile is heard.
    let listener = match state.watch.listen(Scope::Order(id), &user).await {
        Ok(listener) => listener,
        Err(refused) => return Ok(refusal(refused)),
    };
    let owner = (!user.is_admin()).then_some(user.id);
    let mut follow = Follow::new(
        state.db.clone(),
        listener,
        Filter::order(id, 0, false),
        owner,
    );
    match resume {
        None => {
            // The latest entry is read before the order: a change committed in between is
            // then both in the order and heard live, never in neither.
            let last = entries::last_entry_id(&state.db, id).await?;
            // An order accepted and not recorded yet opens as PENDING.
            let order = super::lookup::find(&state, id, owner)
                .await?
                .ok_or(ApiError::NotFound("order"))?;
            let finished = is_final(order.status);
            follow.filter = Filter::order(id, last.unwrap_or(0), finished);
            follow.check_end = finished;
            follow.pending.push_back(order_event(&order, last));
        }
        Some(after) => {
            // Read before the entries: a refund settled in between is then in them, or
            // heard live, and its stream does not end before it.
            let standing = entries::standing(&state.db, id, owner)
                .await?
                .ok_or(ApiError::NotFound("order"))?;
            let missed = entries::of_order(&state.db, id, after).await?;
            let finished = is_final(standing.status);
            if missed.is_empty() && finished && !standing.refund_pending {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            let floor = missed
                .iter()
                .filter_map(StreamEntry::id)
                .max()
                .unwrap_or(after);
            follow.filter = Filter::order(id, floor, finished);
            follow.check_end = finished;
            follow
                .pending
                .extend(missed.iter().map(|e| entry_event(e, owner)));
        }
    }
    Ok(respond(&state, follow))
}

/// Follow every order of the caller live, or every order for an ADMIN (Server-Sent Events).
///
/// One event per change, whose id is its timeline entry's id: `status_changed` for a status
/// change, `refund_changed` for a change of a refund, `fulfilment_changed` and
/// `return_changed` for a shipment's or a return's (data as on an order's stream);
/// optionally only the status changes into `status`. Nothing is sent on opening but the
/// reconnection delay; the stream lasts until the client leaves, the replica shuts down, or
/// the authorization that opened it ends (the access token's expiry, the session's end), with
/// a `: keep-alive` comment every `SSE_HEARTBEAT_SECS` of silence. With `Last-Event-ID`
/// it first replays, from PostgreSQL, the entries in scope with a greater id. Entry ids grow
/// as changes are written, but changes of different orders written at the same moment can be
/// announced out of id order: a resume can miss a change of another order written in the same
/// instant as the last one received. Follow an order's own stream where every change counts.
#[utoipa::path(get, path = "/orders/events", tag = "orders",
    params(EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Replay the entries after this one first")),
    responses(
        (status = 200, description = "`text/event-stream` of `status_changed` events (data: StatusEntry), `refund_changed` events (data: RefundEntry), `fulfilment_changed` events (data: FulfilmentEntry) and `return_changed` events (data: ReturnEntry), each with the timeline entry's id",
            content((StreamEntry = "text/event-stream"))),
        (status = 400, description = "Malformed Last-Event-ID or unknown parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated, or the access token has expired", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The account has `SSE_STREAMS_PER_USER` streams open on this replica", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds to wait"))),
        (status = 503, description = "This replica serves `SSE_STREAMS_MAX` streams, or is shutting down", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = []), ("cookie" = [])))]
async fn all_order_events(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Response> {
    let resume = last_event_id(&headers)?;
    time_left(&user)?;
    let (scope, owner) = if user.is_admin() {
        (Scope::Everyone, None)
    } else {
        (Scope::Customer(user.id), Some(user.id))
    };
    let listener = match state.watch.listen(scope, &user).await {
        Ok(listener) => listener,
        Err(refused) => return Ok(refusal(refused)),
    };
    let mut follow = Follow::new(
        state.db.clone(),
        listener,
        // A resume passes only entries after `Last-Event-ID`, even if its replay finds none
        // and an older change is heard live after the stream opens.
        Filter::Many {
            to: q.status,
            replayed: resume.unwrap_or(0),
        },
        owner,
    );
    follow.replay = resume.map(|after| Replay { owner, after });
    Ok(respond(&state, follow))
}

/// A stream ends when the authorization that opened it does (see [`super::watch`]); one
/// whose token expired, still accepted within the clock leeway, would end at once and its
/// client reconnect in a loop: it is refused.
fn time_left(user: &AuthUser) -> ApiResult<()> {
    if user.authorized_until <= chrono::Utc::now() {
        return Err(ApiError::Unauthorized(
            "the access token has expired; refresh it",
        ));
    }
    Ok(())
}

/// `Last-Event-ID`, a timeline entry id.
fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID must be an event id of this stream".into())
                })
        })
        .transpose()
}

fn refusal(refused: Refused) -> Response {
    let (status, limit, detail) = match refused {
        Refused::AccountBusy => (
            StatusCode::TOO_MANY_REQUESTS,
            Limit::StreamsPerAccount,
            "this account has too many order event streams open; close one or retry later",
        ),
        Refused::ProcessBusy => (
            StatusCode::SERVICE_UNAVAILABLE,
            Limit::StreamsPerProcess,
            "this server cannot open another order event stream now; retry later",
        ),
        Refused::Closing => (
            StatusCode::SERVICE_UNAVAILABLE,
            Limit::ShuttingDown,
            "this server is shutting down; retry later",
        ),
    };
    let res = Problem::new(status, "about:blank", detail).retry_after(RETRY_AFTER_SECS);
    refusals::refused(res, limit)
}

fn respond(state: &AppState, follow: Follow) -> Response {
    let stream = futures::stream::unfold(follow, Follow::next);
    let mut res = Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(state.config.sse_heartbeat)
                .text("keep-alive"),
        )
        .into_response();
    // Proxies that buffer responses (nginx) would hold the events back.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}
