//! What the webhook routes share: the deployment's signing key, taken from the request's
//! state, and the answer to deliveries the broker did not take.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use common::webhooks::SecretBox;

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
pub(super) fn not_queued(e: common::Error) -> ApiError {
    match e {
        common::Error::Database(e) => ApiError::from(e),
        other => ApiError::unavailable_because(
            "the message broker did not take the deliveries; retry",
            anyhow::Error::new(other),
        ),
    }
}
