//! Cross-origin resource sharing for browser frontends served from the origins listed in
//! `TRUSTED_ORIGINS`, the same list the CSRF guard ([`crate::auth::csrf`]) reads.
//!
//! A request whose `Origin` is in the list goes through tower-http's CORS layer: preflights
//! are answered (and may be cached for [`MAX_AGE`]), credentials (the auth cookies) are
//! allowed, and the headers a client needs are exposed. Any other request passes by it
//! untouched: a page from another origin gets no `Access-Control-*` header at all, so its
//! browser refuses to let it read the answer.

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use futures::FutureExt;
use futures::future::{Either, Map};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

/// How long a browser may reuse a preflight's answer (Chromium caps it at two hours).
pub const MAX_AGE: Duration = Duration::from_secs(7200);

/// The CORS layer for `origins` (normalised `scheme://host[:port]`), or `None` for none.
pub fn layer(origins: &[String]) -> Option<TrustedCorsLayer> {
    let values: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(values.clone()))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("prefer"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("preference-applied"),
        ])
        .max_age(MAX_AGE);
    Some(TrustedCorsLayer {
        cors,
        origins: values.into(),
    })
}

#[derive(Clone)]
pub struct TrustedCorsLayer {
    cors: CorsLayer,
    origins: Arc<[HeaderValue]>,
}

impl<S: Clone> Layer<S> for TrustedCorsLayer {
    type Service = TrustedCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrustedCors {
            cors: self.cors.layer(inner.clone()),
            plain: inner,
            origins: Arc::clone(&self.origins),
        }
    }
}

/// CORS for the trusted origins; everything else straight to the inner service.
#[derive(Clone)]
pub struct TrustedCors<S> {
    cors: Cors<S>,
    plain: S,
    origins: Arc<[HeaderValue]>,
}

type PlainFuture<F, B, E> = Map<F, fn(Result<Response<B>, E>) -> Result<Response<B>, E>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TrustedCors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<
        <Cors<S> as Service<Request<ReqBody>>>::Future,
        PlainFuture<S::Future, ResBody, S::Error>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.cors.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let trusted = req
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|origin| self.origins.iter().any(|o| o == origin));
        if trusted {
            Either::Left(self.cors.call(req))
        } else {
            Either::Right(self.plain.call(req).map(vary_by_origin))
        }
    }
}

/// The answer to a trusted origin differs (it carries CORS headers): caches must key on
/// `Origin` for every answer, not only for those.
fn vary_by_origin<B, E>(res: Result<Response<B>, E>) -> Result<Response<B>, E> {
    res.map(|mut res| {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
        res
    })
}
