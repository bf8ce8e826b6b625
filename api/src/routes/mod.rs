//! HTTP routes, one module per domain, merged in `app::router`.

pub mod health;

use crate::error::ApiError;

/// Anything no route matches.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("resource")
}
