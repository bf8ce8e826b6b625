//! Webhook endpoints over HTTP: create (the secret answered once), list, read, change, delete,
//! rotate the secret, and send a test event.

use super::extract::{Secrets, not_queued};
use super::model::{
    Delivery, Endpoint, EndpointChange, EndpointWithSecret, NewEndpoint, check_description,
    check_endpoint_url, check_events,
};
use super::repo;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::extract::{Json as JsonBody, Path, Query};
use crate::orders::command::Correlation;
use crate::pagination::{Keyset, Page};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use common::webhooks::{NewDelivery, SigningSecret, TEST_EVENT, delivery_id, queue, test_payload};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// Register an endpoint (ADMIN). The answer carries its signing secret, shown only here.
///
/// The URL must be https on a public address: one that is (or whose name resolves to) a
/// private, loopback, link-local, multicast, unspecified or cloud metadata address is a 422
/// naming `url`, as is an unknown event type naming `events`.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = NewEndpoint,
    responses(
        (status = 201, description = "Registered; `Location` names it", body = EndpointWithSecret),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A refused `url`, unknown `events`, a long `description`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Webhooks are not configured (no WEBHOOK_ENCRYPTION_KEY), or the database is down", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Secrets(secrets): Secrets,
    JsonBody(body): JsonBody<NewEndpoint>,
) -> ApiResult<Response> {
    let allow_private = state.config.webhooks.allow_private_networks;
    let url = check_endpoint_url(&body.url, allow_private).await;
    let events = check_events(&body.events);
    let description = check_description(body.description.as_deref().unwrap_or_default());
    let (url, events, description) = match (url, events, description) {
        (Ok(url), Ok(events), Ok(description)) => (url, events, description),
        (url, events, description) => {
            return Err(invalid([url.err(), events.err(), description.err()]));
        }
    };
    let id = Uuid::new_v4();
    let secret = SigningSecret::generate();
    let endpoint = repo::insert(
        &state.db,
        id,
        &url,
        &events,
        &description,
        &secrets.seal(id, &secret),
    )
    .await?;
    tracing::info!(endpoint_id = %id, admin = %admin.id, "webhook endpoint registered");
    let location = format!("/api/v1/webhooks/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(EndpointWithSecret {
            endpoint,
            secret: secret.expose().to_owned(),
        }),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Every endpoint, oldest first, a page at a time (ADMIN).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    params(ListParams),
    responses(
        (status = 200, description = "A page of endpoints", body = Page<Endpoint>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    _secrets: Secrets,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<Endpoint>>> {
    let keyset = Keyset::<(DateTime<Utc>, Uuid)>::parse(params.limit, params.cursor.as_deref())?;
    let endpoints = repo::list(&state.db, keyset.after, keyset.fetch()).await?;
    Ok(Json(keyset.page(endpoints, |e| (e.created_at, e.id))))
}

/// One endpoint (ADMIN).
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    _admin: AdminUser,
    _secrets: Secrets,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Endpoint>> {
    found(repo::find(&state.db, id).await?).map(Json)
}

/// Change an endpoint's `url`, `events`, `description` or `enabled` (ADMIN). Enabling an
/// endpoint (one disabled after failing, too) clears its `disabled_reason`.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", operation_id = "change_webhook",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = EndpointChange,
    responses(
        (status = 200, description = "The endpoint as changed", body = Endpoint),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A refused `url`, unknown `events`, a long `description`, or nothing to change", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn change(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    _secrets: Secrets,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<EndpointChange>,
) -> ApiResult<Json<Endpoint>> {
    if body.url.is_none()
        && body.events.is_none()
        && body.description.is_none()
        && body.enabled.is_none()
    {
        return Err(ApiError::field(
            "",
            "nothing to change: give url, events, description or enabled",
        ));
    }
    let allow_private = state.config.webhooks.allow_private_networks;
    let url = match &body.url {
        Some(url) => Some(check_endpoint_url(url, allow_private).await),
        None => None,
    };
    let events = body.events.as_deref().map(check_events);
    let description = body.description.as_deref().map(check_description);
    let (url, events, description) =
        match (url.transpose(), events.transpose(), description.transpose()) {
            (Ok(url), Ok(events), Ok(description)) => (url, events, description),
            (url, events, description) => {
                return Err(invalid([url.err(), events.err(), description.err()]));
            }
        };
    let change = repo::Change {
        url: url.as_deref(),
        events: events.as_deref(),
        description: description.as_deref(),
        enabled: body.enabled,
    };
    let endpoint = found(repo::update(&state.db, id, &change).await?)?;
    tracing::info!(endpoint_id = %id, admin = %admin.id, enabled = endpoint.enabled, "webhook endpoint changed");
    Ok(Json(endpoint))
}

/// Delete an endpoint and its delivery log (ADMIN); its pending deliveries are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    _secrets: Secrets,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    if !repo::delete(&state.db, id).await? {
        return Err(ApiError::NotFound("webhook endpoint"));
    }
    tracing::info!(endpoint_id = %id, admin = %admin.id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Give an endpoint a new signing secret, shown only in this answer (ADMIN). The secret it
/// replaces keeps signing beside it (two signatures in `webhook-signature`) until
/// `previous_secret_expires_at`, `WEBHOOK_SECRET_OVERLAP_SECS` from now, so receivers can
/// switch without losing a delivery.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "rotate_webhook_secret",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = EndpointWithSecret),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Secrets(secrets): Secrets,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<EndpointWithSecret>> {
    let secret = SigningSecret::generate();
    let overlap = state.config.webhooks.secret_overlap;
    let endpoint = found(repo::rotate(&state.db, id, &secrets.seal(id, &secret), overlap).await?)?;
    tracing::info!(endpoint_id = %id, admin = %admin.id, "webhook signing secret rotated");
    Ok(Json(EndpointWithSecret {
        endpoint,
        secret: secret.expose().to_owned(),
    }))
}

/// Send a `webhook.test` event to an endpoint now, whatever it subscribes to (ADMIN). The
/// answer is its delivery, which the delivery log then follows.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks", operation_id = "test_webhook",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 202, description = "Queued", body = Delivery),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn test(
    State(state): State<AppState>,
    _admin: AdminUser,
    _secrets: Secrets,
    Correlation(correlation_id): Correlation,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let endpoint = enabled(repo::find(&state.db, id).await?)?;
    let event_id = Uuid::new_v4();
    let delivery = NewDelivery {
        id: delivery_id(endpoint.id, event_id),
        endpoint_id: endpoint.id,
        event_id,
        event_type: TEST_EVENT.to_owned(),
        payload: test_payload(endpoint.id, Utc::now()),
    };
    queue(
        &state.db,
        &state.bus,
        std::slice::from_ref(&delivery),
        false,
        &correlation_id,
    )
    .await
    .map_err(not_queued)?;
    let queued = repo::delivery(&state.db, endpoint.id, delivery.id).await?;
    Ok((StatusCode::ACCEPTED, Json(found(queued)?)))
}

/// A 422 naming every field that failed its check.
fn invalid<const N: usize>(errors: [Option<FieldError>; N]) -> ApiError {
    ApiError::Validation(errors.into_iter().flatten().collect())
}

/// The endpoint, or a 404.
pub(super) fn found<T>(row: Option<T>) -> Result<T, ApiError> {
    row.ok_or(ApiError::NotFound("webhook endpoint"))
}

/// The endpoint if it exists and is enabled: nothing is sent to a disabled one (a 409).
pub(super) fn enabled(row: Option<Endpoint>) -> Result<Endpoint, ApiError> {
    let endpoint = found(row)?;
    if !endpoint.enabled {
        return Err(ApiError::conflict(
            "the endpoint is disabled; enable it (PATCH enabled: true) first",
        ));
    }
    Ok(endpoint)
}
