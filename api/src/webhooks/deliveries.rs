//! The delivery log of an endpoint, and re-sending one delivery now.

use super::extract::{Secrets, not_queued};
use super::model::Delivery;
use super::repo;
use super::routes::{enabled, found};
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::orders::command::Correlation;
use crate::pagination::{Keyset, Page};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::domain::WebhookDeliveryStatus;
use common::webhooks::AttemptDelivery;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only deliveries with this outcome so far.
    status: Option<WebhookDeliveryStatus>,
}

/// An endpoint's deliveries, newest first, each with its attempts (ADMIN).
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(("id" = Uuid, Path, description = "Endpoint id"), ListParams),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<Delivery>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    _secrets: Secrets,
    Path(id): Path<Uuid>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<Delivery>>> {
    let keyset = Keyset::<(DateTime<Utc>, Uuid)>::parse(params.limit, params.cursor.as_deref())?;
    found(repo::find(&state.db, id).await?)?;
    let deliveries =
        repo::deliveries(&state.db, id, params.status, keyset.after, keyset.fetch()).await?;
    Ok(Json(keyset.page(deliveries, |d| (d.created_at, d.id))))
}

/// Re-send one delivery now, with its original `webhook-id` (ADMIN). A failed one gets one
/// more attempt; a pending one is attempted now instead of at its next time.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks", operation_id = "retry_webhook_delivery",
    params(("id" = Uuid, Path, description = "Endpoint id"), ("delivery_id" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued for an attempt now", body = Delivery),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint or delivery", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    _secrets: Secrets,
    Correlation(correlation_id): Correlation,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    enabled(repo::find(&state.db, id).await?)?;
    let ticket = Uuid::new_v4();
    repo::retry(&state.db, id, delivery_id, ticket)
        .await?
        .ok_or(ApiError::NotFound("webhook delivery"))?;
    // The delivery's old ticket, if it still has a message, is dropped when it comes.
    let attempt = AttemptDelivery {
        delivery_id,
        endpoint_id: id,
        ticket,
    };
    state
        .bus
        .publish(attempt, &correlation_id)
        .await
        .map_err(|e| not_queued(common::Error::nats(e)))?;
    tracing::info!(endpoint_id = %id, %delivery_id, admin = %admin.id, "webhook delivery re-sent");
    let delivery = repo::delivery(&state.db, id, delivery_id)
        .await?
        .ok_or(ApiError::NotFound("webhook delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
