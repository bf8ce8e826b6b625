//! The webhooks domain (ADMIN only): endpoints and their signing secrets, the delivery log,
//! re-sending one delivery, replaying an endpoint from the event history, and test events. The
//! webhooks worker (`workers webhooks`) makes the deliveries; docs/webhooks.md tells receivers
//! how to verify them.

mod deliveries;
mod document;
pub mod model;
mod replay;
mod repo;
mod routes;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use common::webhooks::SecretBox;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use document::add_webhooks;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::create, routes::list))
        .routes(routes!(
            routes::get_endpoint,
            routes::change,
            routes::delete
        ))
        .routes(routes!(routes::rotate_secret))
        .routes(routes!(routes::test))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::retry))
        .routes(routes!(replay::replay))
}

/// The deployment's key for signing secrets. Without `WEBHOOK_ENCRYPTION_KEY` every webhook
/// route answers 503: no secret could be stored, and no worker could sign.
pub struct Secrets(pub SecretBox);

impl FromRequestParts<AppState> for Secrets {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = state.config.webhooks.encryption_key().ok_or_else(|| {
            ApiError::Unavailable(
                "outbound webhooks are not configured on this deployment (WEBHOOK_ENCRYPTION_KEY is not set)"
                    .into(),
            )
        })?;
        SecretBox::new(key)
            .map(Secrets)
            .map_err(|e| ApiError::Internal(e.into()))
    }
}

/// A 503 for a failure to queue deliveries: nothing was sent; the request may be repeated.
fn not_queued(e: common::Error) -> ApiError {
    match e {
        common::Error::Database(e) => ApiError::from(e),
        other => ApiError::unavailable_because(
            "the message broker did not take the deliveries; retry",
            anyhow::Error::new(other),
        ),
    }
}
