//! Replaying an endpoint from the event history: every order event the `EVENTS` stream still
//! holds from a point in time on, that the endpoint subscribes to, is delivered again, in the
//! stream's order, each under its original delivery id (`webhook-id`), so a receiver that
//! already has it deduplicates it. The api reads the stream itself, message by message
//! (`$JS.API.STREAM.MSG.GET.EVENTS`), after finding where `since` starts by bisection.

use super::extract::{Secrets, not_queued};
use super::model::{ReplayRequest, Replayed};
use super::repo;
use super::routes::enabled;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::extract::{Json as JsonBody, Path};
use crate::orders::command::Correlation;
use crate::state::AppState;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::messaging::RawEnvelope;
use common::nats::EVENTS;
use common::webhooks::{
    ALL_EVENTS, EVENT_SUBJECTS, NewDelivery, delivery_id, is_known_type, payload_of, queue,
};
use uuid::Uuid;

/// Most events one replay request delivers again; `next_since` says where to go on.
pub const MAX_REPLAY: usize = 10_000;
/// Deliveries recorded and queued together.
const QUEUE_CHUNK: usize = 500;

/// Deliver again every event the endpoint subscribes to that `EVENTS` still holds (7 days by
/// default) from `since` on (the time the stream stored it), in order, with their original
/// `webhook-id`s; each delivery starts a fresh retry schedule (ADMIN). Answers how many were
/// queued.
#[utoipa::path(post, path = "/webhooks/{id}/replay", tag = "webhooks", operation_id = "replay_webhook",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "Queued", body = Replayed),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` is in the future", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    _secrets: Secrets,
    Correlation(correlation_id): Correlation,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<ReplayRequest>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    if body.since > Utc::now() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "since",
            "must not be in the future",
        )]));
    }
    let endpoint = enabled(repo::find(&state.db, id).await?)?;
    let subscribes = |kind: &str| {
        is_known_type(kind) && endpoint.events.iter().any(|e| e == ALL_EVENTS || e == kind)
    };
    let ns = state.bus.namespace();
    let unavailable = |e: &dyn std::fmt::Display| {
        ApiError::unavailable_because(
            "the event history is unavailable; nothing was queued",
            anyhow::anyhow!("reading {EVENTS}: {e}"),
        )
    };
    let stream = state
        .bus
        .jetstream()
        .get_stream(ns.name(EVENTS))
        .await
        .map_err(|e| unavailable(&e))?;
    let filter = ns.subject(EVENT_SUBJECTS);
    let mut sequence = first_since(&stream, &filter, body.since)
        .await
        .map_err(|e| unavailable(&e))?;
    let (mut queued, mut next_since, mut pending) = (0, None, Vec::new());
    let mut seen = 0;
    while let Some(message) = next(&stream, &filter, sequence)
        .await
        .map_err(|e| unavailable(&e))?
    {
        if seen == MAX_REPLAY {
            next_since = Some(message.time);
            break;
        }
        seen += 1;
        sequence = message.sequence + 1;
        let subject = ns.relative(&message.subject).to_owned();
        let Ok(envelope) = RawEnvelope::parse(&message.payload) else {
            continue;
        };
        let Some((kind, payload)) = payload_of(&subject, &envelope).filter(|(k, _)| subscribes(k))
        else {
            continue;
        };
        pending.push(NewDelivery {
            id: delivery_id(endpoint.id, envelope.id),
            endpoint_id: endpoint.id,
            event_id: envelope.id,
            event_type: kind,
            payload,
        });
        if pending.len() == QUEUE_CHUNK {
            queued += flush(&state, &mut pending, &correlation_id).await?;
        }
    }
    queued += flush(&state, &mut pending, &correlation_id).await?;
    tracing::info!(endpoint_id = %id, admin = %admin.id, since = %body.since, queued, "webhook endpoint replayed");
    Ok((StatusCode::ACCEPTED, Json(Replayed { queued, next_since })))
}

async fn flush(
    state: &AppState,
    pending: &mut Vec<NewDelivery>,
    correlation_id: &common::correlation::CorrelationId,
) -> Result<usize, ApiError> {
    let queued = queue(&state.db, &state.bus, pending, true, correlation_id)
        .await
        .map_err(not_queued)?;
    pending.clear();
    Ok(queued.published)
}

/// The first event at or after `sequence`, if any.
async fn next(
    stream: &Stream,
    filter: &str,
    sequence: u64,
) -> Result<Option<StreamMessage>, async_nats::jetstream::stream::RawMessageError> {
    match stream
        .get_first_raw_message_by_subject(filter, sequence)
        .await
    {
        Ok(message) => Ok(Some(message)),
        Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The sequence from which the events are stored at or after `since`: the stream's times grow
/// with its sequence, so a bisection finds it in a few reads.
async fn first_since(
    stream: &Stream,
    filter: &str,
    since: DateTime<Utc>,
) -> Result<u64, async_nats::jetstream::stream::RawMessageError> {
    // The first event at all bounds the search from below.
    let mut low = match next(stream, filter, 1).await? {
        Some(first) if first.time >= since => return Ok(first.sequence),
        Some(first) => first.sequence + 1,
        None => return Ok(1),
    };
    let mut high = u64::MAX;
    let mut step = 1u64;
    // Gallop to a bound past `since` (or past the end), then bisect.
    loop {
        let probe = low.saturating_add(step);
        match next(stream, filter, probe).await? {
            Some(m) if m.time < since => {
                low = m.sequence + 1;
                step = step.saturating_mul(2);
            }
            _ => {
                high = probe;
                break;
            }
        }
        if step == u64::MAX {
            break;
        }
    }
    while low < high {
        let middle = low + (high - low) / 2;
        match next(stream, filter, middle).await? {
            Some(m) if m.time < since => low = m.sequence + 1,
            _ => high = middle,
        }
    }
    Ok(low)
}
