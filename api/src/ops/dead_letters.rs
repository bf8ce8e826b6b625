//! Dead letters, read straight from the `DEAD_LETTERS` stream: every message a worker could
//! not process, with the reason. Once its cause is fixed, an ADMIN re-drives one: the order
//! worker publishes it again to its original subject and removes it from the dead letters
//! (`common::redrive`).

use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::pagination::{Keyset, Page};
use crate::state::AppState;
use async_nats::HeaderMap;
use async_nats::client::RequestErrorKind;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::messaging::{DLQ_DELIVERIES_HEADER, DLQ_REASON_HEADER, DLQ_SUBJECT_HEADER};
use common::nats::DEAD_LETTERS;
use common::redrive::{REDRIVE_SUBJECT, RedriveReply, RedriveRequest};
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
        ApiError::unavailable_because(
            "the message broker is unavailable",
            anyhow::Error::new(e).context("reading the dead-letter stream"),
        )
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
    let keyset = Keyset::<u64>::parse(q.limit, q.cursor.as_deref())?;
    let after = keyset.after.unwrap_or(0);
    let stream = stream(&state).await?;
    let info = stream
        .get_info()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut items = Vec::new();
    let mut sequence = after.max(info.state.first_sequence.saturating_sub(1)) + 1;
    // One message past the page tells whether there is a next one.
    while sequence <= info.state.last_sequence && items.len() <= keyset.limit as usize {
        // Re-driven messages leave gaps in the sequence; skip them.
        if let Ok(m) = stream.get_raw_message(sequence).await {
            items.push(to_dead_letter(m));
        }
        sequence += 1;
    }
    Ok(axum::Json(keyset.page(items, |d| d.sequence)))
}

/// Re-drive a dead letter (ADMIN): publish it again to its original subject, then remove it.
///
/// The api's NATS user may not publish to the subjects dead letters come from (payment events
/// among them), so it asks the order worker to do it (`ops.redrive`, see docs/operations.md,
/// "Re-driving dead letters"); without an order worker running, the answer is 503.
#[utoipa::path(post, path = "/admin/dead-letters/{sequence}/redrive", tag = "operations", operation_id = "redrive_dead_letter",
    params(("sequence" = u64, Path, description = "The dead letter's sequence")),
    responses(
        (status = 202, description = "Published again to its original subject", body = DeadLetter),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "JetStream or the order worker unavailable; nothing changed", body = Problem, content_type = "application/problem+json"),
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
    let letter = to_dead_letter(message);
    let subject = state.bus.namespace().subject(REDRIVE_SUBJECT);
    let request = serde_json::to_vec(&RedriveRequest { sequence })
        .map_err(|e| ApiError::Internal(e.into()))?;
    let unavailable = |why: &str, cause: anyhow::Error| {
        ApiError::unavailable_because(
            format!("the dead letter could not be re-driven: {why}; nothing changed"),
            cause,
        )
    };
    let answer = state
        .nats
        .request(subject, request.into())
        .await
        .map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => {
                unavailable("no order worker is running", anyhow::Error::new(e))
            }
            _ => unavailable(
                "the order worker did not answer",
                anyhow::Error::new(e).context("re-drive request"),
            ),
        })?;
    match serde_json::from_slice::<RedriveReply>(&answer.payload) {
        Ok(RedriveReply::Redriven { .. }) => {
            tracing::info!(sequence, subject = %letter.subject, admin = %admin.id, "dead letter re-driven");
            Ok((StatusCode::ACCEPTED, axum::Json(letter)))
        }
        Ok(RedriveReply::NotFound) => Err(ApiError::NotFound("dead letter")),
        Ok(RedriveReply::Failed { reason }) => Err(unavailable(
            "the message broker did not store it",
            anyhow::anyhow!("re-drive of dead letter {sequence} failed: {reason}"),
        )),
        Err(e) => Err(ApiError::Internal(anyhow::anyhow!("re-drive reply: {e}"))),
    }
}
