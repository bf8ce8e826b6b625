//! `X-Request-Id`: the id of a request, which is also the correlation id of everything it
//! leads to (the commands it publishes, the worker steps, the order it records). A client's id
//! is kept only within the bound of [`common::correlation`]; any other is replaced by a
//! generated one, and the answer echoes the id actually used.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use common::correlation::CorrelationId;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives the request a request id within the bound, in its header (read by the request span
/// and echoed in the answer) and as a [`CorrelationId`] extension (read by the handlers).
pub fn bound(mut req: Request) -> Request {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(CorrelationId::parse)
        .unwrap_or_else(CorrelationId::generate);
    // Every character of a correlation id is a valid header value character.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        req.headers_mut().insert(REQUEST_ID, value);
    }
    req.extensions_mut().insert(id);
    req
}
