//! Dead letters, read straight from the `DEAD_LETTERS` stream: every message a worker could
//! not process, with the reason. Once its cause is fixed, an ADMIN re-drives one: it is
//! published again to its original subject and removed from the dead letters.

use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::pagination::{self, Page};
use crate::state::AppState;
use async_nats::HeaderMap;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::messaging::{
    DLQ_DELIVERIES_HEADER, DLQ_REASON_HEADER, DLQ_SEQUENCE_HEADER, DLQ_STREAM_HEADER,
    DLQ_SUBJECT_HEADER,
};
use common::nats::DEAD_LETTERS;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A message a worker gave up on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    /// Position in the dead-letter stream; the id to re-drive it.
    pub sequence: u64,
    /// The subject it was consumed from (relative to the namespace).
    pub subject: String,
    pub reason: String,
    /// How many times it was delivered before it was given up.
    pub deliveries: u32,
    pub dead_lettered_at: DateTime<Utc>,
    /// The original payload: JSON when it was JSON, otherwise the text as received.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub correlation_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100, default 20.
    #[param(example = 20, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.as_str().to_owned())
}

fn to_dead_letter(m: async_nats::jetstream::message::StreamMessage) -> DeadLetter {
    let payload = serde_json::from_slice(&m.payload).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&m.payload).into_owned())
    });
    DeadLetter {
        sequence: m.sequence,
        subject: header(&m.headers, DLQ_SUBJECT_HEADER).unwrap_or_default(),
        reason: header(&m.headers, DLQ_REASON_HEADER).unwrap_or_default(),
        deliveries: header(&m.headers, DLQ_DELIVERIES_HEADER)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        dead_lettered_at: m.time,
        payload,
        correlation_id: header(&m.headers, common::messaging::CORRELATION_HEADER),
    }
}

async fn stream(state: &AppState) -> Result<async_nats::jetstream::stream::Stream, ApiError> {
    let name = state.bus.namespace().name(DEAD_LETTERS);
    state.bus.jetstream().get_stream(&name).await.map_err(|e| {
        tracing::error!(error = %e, "dead-letter stream unavailable");
        ApiError::Unavailable("the message broker is unavailable".into())
    })
}

/// Dead letters, oldest first (ADMIN).
#[utoipa::path(get, path = "/admin/dead-letters", tag = "operations", operation_id = "list_dead_letters",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of dead letters", body = Page<DeadLetter>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "JetStream unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<DeadLetter>>> {
    let limit = pagination::limit(q.limit)?;
    let after: u64 = q
        .cursor
        .as_deref()
        .map(pagination::decode_cursor)
        .transpose()?
        .unwrap_or(0);
    let stream = stream(&state).await?;
    let info = stream
        .get_info()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut items = Vec::new();
    let mut sequence = after.max(info.state.first_sequence.saturating_sub(1)) + 1;
    // One message past the page tells whether there is a next one.
    while sequence <= info.state.last_sequence && items.len() <= limit as usize {
        // Re-driven messages leave gaps in the sequence; skip them.
        if let Ok(m) = stream.get_raw_message(sequence).await {
            items.push(to_dead_letter(m));
        }
        sequence += 1;
    }
    Ok(axum::Json(pagination::page(items, limit, |d| d.sequence)))
}

/// Re-drive a dead letter (ADMIN): publish it again to its original subject, then remove it.
#[utoipa::path(post, path = "/admin/dead-letters/{sequence}/redrive", tag = "operations", operation_id = "redrive_dead_letter",
    params(("sequence" = u64, Path, description = "The dead letter's sequence")),
    responses(
        (status = 202, description = "Published again to its original subject", body = DeadLetter),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "JetStream unavailable; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn redrive(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(sequence): Path<u64>,
) -> ApiResult<(StatusCode, axum::Json<DeadLetter>)> {
    let stream = stream(&state).await?;
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(|_| ApiError::NotFound("dead letter"))?;
    let mut headers = HeaderMap::new();
    for (name, values) in message.headers.iter() {
        let name = name.to_string();
        let is_bookkeeping = name.starts_with("Nats-")
            || [
                DLQ_REASON_HEADER,
                DLQ_SUBJECT_HEADER,
                DLQ_DELIVERIES_HEADER,
                DLQ_STREAM_HEADER,
                DLQ_SEQUENCE_HEADER,
            ]
            .contains(&name.as_str());
        if !is_bookkeeping {
            for v in values {
                headers.append(name.as_str(), v.as_str());
            }
        }
    }
    let letter = to_dead_letter(message.clone());
    let subject = state.bus.namespace().subject(&letter.subject);
    // A fresh id: the original one may still be inside the duplicate window.
    let msg_id = format!("redrive:{}:{}", sequence, uuid::Uuid::new_v4());
    state
        .bus
        .publish_raw(subject, msg_id, headers, message.payload.clone())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "re-drive publish failed");
            ApiError::Unavailable("the message broker is unavailable; nothing changed".into())
        })?;
    if let Err(e) = stream.delete_message(sequence).await {
        // Published but still listed: a second re-drive would deliver it twice, which the
        // idempotent handlers absorb.
        tracing::warn!(error = %e, sequence, "re-driven dead letter not removed");
    }
    tracing::info!(sequence, subject = %letter.subject, admin = %admin.id, "dead letter re-driven");
    Ok((StatusCode::ACCEPTED, axum::Json(letter)))
}
