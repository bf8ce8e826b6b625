//! What the order commands share at the HTTP edge: `Prefer: wait=N`, the correlation id they
//! carry on the bus, the `Idempotency-Key` header, the request a command carries out, and an
//! answer naming the order.

use super::idempotency::valid_key;
use super::service::{Commanded, parse_prefer_wait};
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use common::correlation::CorrelationId;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use uuid::Uuid;

/// `Prefer: wait=N`: how long the caller waits for the outcome, if at all.
#[derive(Debug, Clone, Copy)]
pub struct Wait(pub Option<Duration>);

impl<S: Send + Sync> FromRequestParts<S> for Wait {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Wait(parse_prefer_wait(&parts.headers)))
    }
}

/// The request id set by the middleware ([`crate::request_id`]), which doubles as the
/// correlation id across the bus.
pub struct Correlation(pub CorrelationId);

impl<S: Send + Sync> FromRequestParts<S> for Correlation {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .extensions
            .get::<CorrelationId>()
            .cloned()
            .unwrap_or_else(CorrelationId::generate);
        Ok(Correlation(id))
    }
}

/// The `Idempotency-Key` header if sent; a 400 unless it is 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().ok().filter(|k| valid_key(k)).ok_or_else(|| {
                ApiError::BadRequest(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                )
            })
        })
        .transpose()
}

/// Fixed namespace of the ids naming the requests transition commands carry out (UUID v5).
const REQUEST_IDS: Uuid = Uuid::from_u128(0x3b8e_51c2_7d04_4f6a_a9e3_15c7_80d2_6e49);

/// The request a caller's command carries out: named by its `Idempotency-Key` when sent (a
/// retry is the same request), else by its request id (every request its own), and scoped to
/// the caller, so two callers never name one request.
pub fn request_id(caller: Uuid, key: Option<&str>, correlation: &CorrelationId) -> Uuid {
    let name = match key {
        Some(key) => format!("{caller}:key:{key}"),
        None => format!("{caller}:request:{correlation}"),
    };
    Uuid::new_v5(&REQUEST_IDS, name.as_bytes())
}

/// `body` as JSON with `status`, and a `Location` naming the order it is about.
pub fn about_order<T: Serialize>(status: StatusCode, order_id: Uuid, body: &T) -> Response {
    let location = HeaderValue::from_str(&format!("/api/v1/orders/{order_id}"))
        .unwrap_or(HeaderValue::from_static("/api/v1/orders"));
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(header::LOCATION, location);
    res
}

/// The answer to an order command: the order with `settled` once the outcome is in, `202`
/// while it is only accepted; `Preference-Applied` names the wait that was honoured.
pub fn answer(commanded: Commanded, settled: StatusCode, wait: Wait) -> Response {
    let (status, order) = match commanded {
        Commanded::Outcome(order) => (settled, order),
        Commanded::Accepted(order) => (StatusCode::ACCEPTED, order),
    };
    preference_applied(about_order(status, order.id, &order), wait)
}

/// `res` with `Preference-Applied` naming the wait that was honoured, if any.
pub fn preference_applied(mut res: Response, Wait(wait): Wait) -> Response {
    if let Some(wait) = wait
        && let Ok(v) = HeaderValue::from_str(&format!("wait={}", wait.as_secs()))
    {
        res.headers_mut().insert("preference-applied", v);
    }
    res
}
