//! The api's error type and its RFC 9457 `application/problem+json` rendering.
//!
//! Every error a client can see is built here. 5xx bodies are opaque: the cause travels on the
//! response (a [`Cause`] extension) to [`log_causes`], the middleware that logs it once, with
//! its chain and inside the request's span, and is never sent. Nothing logs an error where it
//! is converted.

use crate::refusals::{Limit, Refusal, refused};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// Path of the field in the request (`items[0].quantity`), or the parameter name.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present on validation failures: each bad field and what is wrong with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members some problems carry (the current status of an order, the checks of readiness).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: kind.to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
        }
    }

    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// This problem as an answer telling the client to retry in `secs` seconds (`Retry-After`).
    pub fn retry_after(self, secs: impl Into<HeaderValue>) -> Response {
        let mut res = self.into_response();
        res.headers_mut().insert(header::RETRY_AFTER, secs.into());
        res
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: bad JSON syntax, a bad path or query parameter.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Well-formed but invalid: each bad field named.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Well-formed but unprocessable for a reason not tied to one field.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    #[error("not authenticated: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        extensions: serde_json::Map<String, serde_json::Value>,
    },
    /// A placement asks for more than a product has left (`extensions` names each short line):
    /// a 409 of its own type, so a client tells it from a request to retry.
    #[error("out of stock: {detail}")]
    OutOfStock {
        detail: String,
        extensions: serde_json::Map<String, serde_json::Value>,
    },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    /// Past a rate limit (`limit` names it): 429, a refusal, not a fault.
    #[error("rate limited")]
    RateLimited { limit: Limit, retry_after_secs: u64 },
    /// A dependency (PostgreSQL, JetStream) is down; the client may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// [`ApiError::Unavailable`] with the error that showed it, logged when answered.
    #[error("unavailable: {detail}")]
    DependencyDown {
        detail: String,
        #[source]
        cause: anyhow::Error,
    },
    /// Two transactions collided in the database (a deadlock, a serialization failure): the
    /// same request succeeds once retried. 503 with `Retry-After: 1`; the cause is logged.
    #[error("collided: {0}")]
    Collided(#[source] anyhow::Error),
    /// The api is at a bound it keeps on purpose (password hashes at once); retry shortly.
    #[error("busy")]
    Busy { retry_after_secs: u64 },
    /// The caller's account is at a bound it keeps on purpose (its unpaid orders): 429.
    #[error("limited: {detail}")]
    Limited {
        detail: String,
        retry_after_secs: u64,
        extensions: serde_json::Map<String, serde_json::Value>,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn conflict(detail: impl Into<String>) -> Self {
        ApiError::Conflict {
            detail: detail.into(),
            extensions: serde_json::Map::new(),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// A 503 telling the client `detail`; `cause` is logged with the answer.
    pub fn unavailable_because(detail: impl Into<String>, cause: impl Into<anyhow::Error>) -> Self {
        ApiError::DependencyDown {
            detail: detail.into(),
            cause: cause.into(),
        }
    }
}

/// The cause of an error answer, with its chain: put on the response by
/// [`ApiError::into_response`], logged by [`log_causes`].
#[derive(Debug, Clone)]
pub struct Cause(pub String);

/// `res` carrying `cause`, with its chain, for [`log_causes`].
fn with_cause(mut res: Response, cause: &anyhow::Error) -> Response {
    res.extensions_mut().insert(Cause(format!("{cause:#}")));
    res
}

/// Logs every 5xx answer once, with its cause chain when it has one ([`Cause`]), inside the
/// request's span: the one place server errors are logged (the trace layer does not log
/// them again). It runs outside panic recovery and timeouts, so those answers are logged too.
/// A refusal at a limit kept on purpose (a [`Refusal`]: 429, or 503 with `Retry-After`) is no
/// fault: it is counted and warned about at most now and then ([`crate::refusals`]).
pub async fn log_causes(res: Response) -> Response {
    let status = res.status();
    if let Some(Refusal(limit)) = res.extensions().get::<Refusal>() {
        crate::refusals::note(*limit);
    } else if status.is_server_error() {
        let code = status.as_u16();
        match res.extensions().get::<Cause>() {
            Some(Cause(chain)) if status == StatusCode::SERVICE_UNAVAILABLE => {
                tracing::error!(status = code, error.cause_chain = %chain, "dependency unavailable");
            }
            Some(Cause(chain)) => {
                tracing::error!(status = code, error.cause_chain = %chain, "internal error");
            }
            None => tracing::error!(status = code, "request failed"),
        }
    }
    res
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // The pool could not reach PostgreSQL: a dependency outage, not a bug.
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::unavailable_because("the database is unavailable, retry later", e)
            }
            // The server is shutting down or restarting (57P0x), or the connection broke (08xxx).
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) =>
            {
                ApiError::unavailable_because("the database is unavailable, retry later", e)
            }
            // Two transactions collided (a deadlock, or a serialization failure): the same
            // request succeeds once retried.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| c == "40P01" || c == "40001") =>
            {
                ApiError::Collided(anyhow::Error::new(e))
            }
            // Anything else, a stored value that cannot be decoded included, is a bug or bad
            // data: a 500, as the workers dead-letter it rather than retry.
            _ => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::BadRequest(detail) => {
                Problem::new(StatusCode::BAD_REQUEST, "about:blank", detail)
            }
            ApiError::Validation(errors) => {
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "/problems/validation",
                    "the request has invalid fields",
                );
                p.title = "Validation failed".into();
                p.errors = errors;
                p
            }
            ApiError::Unprocessable(detail) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "about:blank", detail)
            }
            ApiError::Unauthorized(detail) => {
                Problem::new(StatusCode::UNAUTHORIZED, "about:blank", detail)
            }
            ApiError::Forbidden => Problem::new(
                StatusCode::FORBIDDEN,
                "about:blank",
                "your role does not allow this operation",
            ),
            ApiError::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "about:blank",
                format!("{what} not found"),
            ),
            ApiError::Conflict { detail, extensions } => {
                let mut p = Problem::new(StatusCode::CONFLICT, "about:blank", detail);
                p.extensions = extensions;
                p
            }
            ApiError::OutOfStock { detail, extensions } => {
                let mut p = Problem::new(StatusCode::CONFLICT, "/problems/out-of-stock", detail);
                "Out of stock".clone_into(&mut p.title);
                p.extensions = extensions;
                p
            }
            ApiError::UnsupportedMediaType => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "about:blank",
                "expected Content-Type: application/json",
            ),
            ApiError::PayloadTooLarge => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "about:blank",
                "the request body is too large",
            ),
            ApiError::RateLimited {
                limit,
                retry_after_secs,
            } => {
                let res = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "about:blank",
                    format!("too many attempts, retry in {retry_after_secs} s"),
                )
                .retry_after(retry_after_secs);
                return refused(res, limit);
            }
            ApiError::Unavailable(detail) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "about:blank", detail)
            }
            ApiError::DependencyDown { detail, cause } => {
                let res = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "about:blank", detail);
                return with_cause(res.into_response(), &cause);
            }
            ApiError::Collided(cause) => {
                let res = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "about:blank",
                    "the request collided with another change, retry it",
                );
                return with_cause(res.retry_after(1u64), &cause);
            }
            ApiError::Busy { retry_after_secs } => {
                let res = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "/problems/busy",
                    format!("too many password checks at once, retry in {retry_after_secs} s"),
                )
                .retry_after(retry_after_secs);
                return refused(res, Limit::PasswordHashing);
            }
            ApiError::Limited {
                detail,
                retry_after_secs,
                extensions,
            } => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "about:blank", detail);
                p.extensions = extensions;
                return refused(
                    p.retry_after(retry_after_secs),
                    Limit::UnpaidOrdersPerAccount,
                );
            }
            ApiError::Internal(e) => {
                let res = Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "about:blank",
                    "an internal error occurred; it has been logged",
                );
                return with_cause(res.into_response(), &e);
            }
        };
        problem.into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_5xx_carries_its_cause_chain_for_the_log_and_nothing_else_does() {
        let cause = anyhow::anyhow!("connection reset").context("reading the order");
        let res = ApiError::Internal(cause).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let Some(Cause(chain)) = res.extensions().get::<Cause>() else {
            panic!("no cause on a 500");
        };
        assert_eq!(chain, "reading the order: connection reset");

        let res = ApiError::from(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            res.extensions().get::<Cause>().is_some(),
            "a 503 keeps its cause"
        );

        let res = ApiError::NotFound("order").into_response();
        assert!(
            res.extensions().get::<Cause>().is_none(),
            "a 4xx is not an error of ours"
        );
    }
}
