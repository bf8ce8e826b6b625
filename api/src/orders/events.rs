//! Live order tracking over Server-Sent Events: `GET /orders/{id}/events` follows one order,
//! `GET /orders/events` every order of the caller (every order for an ADMIN).
//!
//! Streams are fed by the status changes every replica hears on the bus (see
//! [`super::watch`]); PostgreSQL is read only when a stream opens or resumes. Event ids are
//! timeline entry ids, so `Last-Event-ID` resumes from PostgreSQL on any replica.

use super::entries::{self, StatusEntry};
use super::model::Order;
use super::repo;
use super::watch::{Listener, Refused, Scope, StatusChange};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use common::domain::OrderStatus;
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// How long a client waits before reconnecting (the SSE `retry` field).
const RECONNECT_AFTER: Duration = Duration::from_secs(2);
/// What a client told to retry later waits.
const RETRY_AFTER_SECS: u32 = 5;
/// Entries read from PostgreSQL at a time when a stream of many orders resumes.
const REPLAY_PAGE: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(order_events))
        .routes(routes!(all_order_events))
}

/// Statuses after which an order never changes again: its stream ends.
pub fn is_final(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Delivered
    )
}

/// Filter of `GET /orders/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only changes into this status.
    pub status: Option<OrderStatus>,
}

/// Follow one order live (Server-Sent Events).
///
/// The stream opens with an `order` event: the order as it stands (the same JSON as
/// `GET /orders/{id}`), whose `id` is the order's latest timeline entry. Then one
/// `status_changed` event per change, whose data is the timeline entry (`id`, `order_id`,
/// `from`, `to`, `at`, `actor`, `reason`) and whose `id` is the entry's id. The stream ends
/// after a final status (`REJECTED`, `CANCELLED`, `DELIVERED`). A comment (`: keep-alive`) is
/// sent when nothing else was for `SSE_HEARTBEAT_SECS` (15 s).
///
/// With `Last-Event-ID` (sent by browsers when they reconnect) the stream opens instead with
/// the entries after that one, read from PostgreSQL, so a reconnect through any replica misses
/// nothing; an order already final with nothing missed is answered `204`, which tells a
/// browser to stop reconnecting. The owner or an ADMIN may follow an order; anyone else gets
/// 404, as for the order itself.
#[utoipa::path(get, path = "/orders/{id}/events", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this timeline entry")),
    responses(
        (status = 200, description = "`text/event-stream`: an `order` event (data: Order), then `status_changed` events (data: StatusEntry, id: the entry id)",
            content((StatusEntry = "text/event-stream"))),
        (status = 204, description = "Resumed after the order's final change: nothing more will come"),
        (status = 400, description = "Malformed id or Last-Event-ID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
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
    // Listening before reading, so a change committed meanwhile is heard.
    let listener = match state
        .watch
        .listen(Scope::Order(id), user.id, user.session_id)
    {
        Ok(listener) => listener,
        Err(refused) => return Ok(refusal(refused)),
    };
    let owner = (!user.is_admin()).then_some(user.id);
    let mut follow = Follow::new(listener, Filter::Order { after: 0 });
    match resume {
        None => {
            // The latest entry is read before the order: a change committed in between is
            // then both in the order and heard live, never in neither.
            let last = entries::last_entry_id(&state.db, id).await?;
            // An order accepted and not recorded yet opens as PENDING; looked up before the
            // database is read, so an order recorded in between is found there.
            let accepted = state
                .accepted
                .get(id)
                .filter(|p| owner.is_none_or(|owner| owner == p.user_id));
            let order = match (repo::find(&state.db, id, owner).await?, accepted) {
                (Some(order), _) => order,
                (None, Some(pending)) => {
                    repo::pending_view(&state.db, id, &pending, &state.config.store_currency)
                        .await?
                }
                (None, None) => return Err(ApiError::NotFound("order")),
            };
            follow.filter = Filter::Order {
                after: last.unwrap_or(0),
            };
            follow.done = is_final(order.status);
            follow.pending.push_back(order_event(&order, last));
        }
        Some(after) => {
            let status = entries::status_of(&state.db, id, owner)
                .await?
                .ok_or(ApiError::NotFound("order"))?;
            let missed = entries::of_order(&state.db, id, after).await?;
            if missed.is_empty() && is_final(status) {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            follow.filter = Filter::Order {
                after: missed.iter().filter_map(|e| e.id).max().unwrap_or(after),
            };
            follow.done = missed.iter().any(|e| is_final(e.to));
            follow.pending.extend(missed.iter().map(status_event));
        }
    }
    Ok(respond(&state, follow))
}

/// Follow every order of the caller live, or every order for an ADMIN (Server-Sent Events).
///
/// One `status_changed` event per change (data: the timeline entry with its `order_id`; id:
/// the entry's id), optionally only changes into `status`. Nothing is sent on opening but the
/// reconnection delay; the stream lasts until the client leaves (or the replica shuts down),
/// with a `: keep-alive` comment every `SSE_HEARTBEAT_SECS` of silence. With `Last-Event-ID`
/// it first replays, from PostgreSQL, the entries in scope with a greater id. Entry ids grow
/// as changes are written, but changes of different orders written at the same moment can be
/// announced out of id order: a resume can miss a change of another order written in the same
/// instant as the last one received. Follow an order's own stream where every change counts.
#[utoipa::path(get, path = "/orders/events", tag = "orders",
    params(EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Replay the entries after this one first")),
    responses(
        (status = 200, description = "`text/event-stream` of `status_changed` events (data: StatusEntry, id: the entry id)",
            content((StatusEntry = "text/event-stream"))),
        (status = 400, description = "Malformed Last-Event-ID or unknown parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
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
    let (scope, owner) = if user.is_admin() {
        (Scope::Everyone, None)
    } else {
        (Scope::Customer(user.id), Some(user.id))
    };
    let listener = match state.watch.listen(scope, user.id, user.session_id) {
        Ok(listener) => listener,
        Err(refused) => return Ok(refusal(refused)),
    };
    let mut follow = Follow::new(
        listener,
        Filter::Many {
            to: q.status,
            replayed: 0,
        },
    );
    follow.replay = resume.map(|after| Replay {
        db: state.db.clone(),
        owner,
        after,
    });
    Ok(respond(&state, follow))
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
    let (status, detail) = match refused {
        Refused::AccountBusy => (
            StatusCode::TOO_MANY_REQUESTS,
            "this account has too many order event streams open; close one or retry later",
        ),
        Refused::ProcessBusy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "this server cannot open another order event stream now; retry later",
        ),
    };
    let mut res = Problem::new(status, "about:blank", detail).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    res
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

fn order_event(order: &Order, last_entry: Option<i64>) -> Event {
    let event = Event::default().event("order");
    let event = match last_entry {
        Some(id) => event.id(id.to_string()),
        None => event,
    };
    event
        .json_data(order)
        .unwrap_or_else(|_| Event::default().comment("unencodable order"))
}

fn status_event(entry: &StatusEntry) -> Event {
    let event = Event::default().event("status_changed");
    let event = match entry.id {
        Some(id) => event.id(id.to_string()),
        None => event,
    };
    event
        .json_data(entry)
        .unwrap_or_else(|_| Event::default().comment("unencodable change"))
}

/// Which changes a stream passes on.
enum Filter {
    /// One order: changes after entry `after` (an order's entry ids grow with its changes).
    Order { after: i64 },
    /// Many orders (the listener's scope), into status `to` if given; entries up to
    /// `replayed` were sent by the replay.
    Many {
        to: Option<OrderStatus>,
        replayed: i64,
    },
}

/// A resume of a stream of many orders, read from PostgreSQL a page at a time.
struct Replay {
    db: PgPool,
    owner: entries::Owner,
    after: i64,
}

/// A stream in progress: events to send first, then live changes.
struct Follow {
    listener: Listener,
    pending: VecDeque<Event>,
    filter: Filter,
    replay: Option<Replay>,
    /// Ends the stream once `pending` is sent.
    done: bool,
}

impl Follow {
    fn new(listener: Listener, filter: Filter) -> Self {
        let mut pending = VecDeque::new();
        // Sent at once, so the client knows the stream is open, and how soon to come back.
        pending.push_back(Event::default().retry(RECONNECT_AFTER));
        Follow {
            listener,
            pending,
            filter,
            replay: None,
            done: false,
        }
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            if self.replay.is_some() {
                self.replay_page().await?;
                continue;
            }
            let change = self.listener.next().await?;
            if let Some(event) = self.pass(&change) {
                return Some((Ok(event), self));
            }
        }
    }

    /// Queues the next page of a resume; `None` ends the stream (the client resumes later).
    async fn replay_page(&mut self) -> Option<()> {
        let replay = self.replay.as_mut()?;
        let to = match self.filter {
            Filter::Many { to, .. } => to,
            Filter::Order { .. } => None,
        };
        let page =
            match entries::after(&replay.db, replay.owner, to, replay.after, REPLAY_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "replaying order events failed; the stream ends");
                    return None;
                }
            };
        let last = page.iter().filter_map(|e| e.id).max();
        if let (Some(last), Filter::Many { replayed, .. }) = (last, &mut self.filter) {
            *replayed = last;
            replay.after = last;
        }
        if page.len() < REPLAY_PAGE as usize {
            self.replay = None;
        }
        self.pending.extend(page.iter().map(status_event));
        Some(())
    }

    /// The event for a change heard live, if this stream passes it on.
    fn pass(&mut self, change: &StatusChange) -> Option<Event> {
        let entry = StatusEntry::from(change.as_ref());
        match &mut self.filter {
            Filter::Order { after } => {
                if let Some(id) = entry.id {
                    if id <= *after {
                        return None;
                    }
                    *after = id;
                }
                self.done = is_final(entry.to);
            }
            Filter::Many { to, replayed } => {
                if to.is_some_and(|to| to != entry.to) || entry.id.is_some_and(|id| id <= *replayed)
                {
                    return None;
                }
            }
        }
        Some(status_event(&entry))
    }
}
