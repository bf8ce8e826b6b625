//! Security headers on every answer: `X-Content-Type-Options: nosniff` everywhere,
//! `Cache-Control: no-store` on every answer to an authenticated caller or setting a cookie
//! (no shared or browser cache keeps someone's orders or tokens), and a Content Security
//! Policy on the interactive docs that lets Swagger UI run its own scripts and nothing else,
//! and never inside another site's frame.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Swagger UI (`/docs`) loads its own scripts, styles and the OpenAPI document from the api;
/// its icons are inline `data:` images and some of its styles are set inline.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// Set by the [`crate::auth::AuthUser`] extractor when a request's caller is authenticated.
#[derive(Clone, Default)]
pub struct Authenticated(Arc<AtomicBool>);

impl Authenticated {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub async fn security_headers(mut req: Request, next: Next) -> Response {
    let authenticated = Authenticated::default();
    req.extensions_mut().insert(authenticated.clone());
    let is_docs = req.uri().path() == "/docs" || req.uri().path().starts_with("/docs/");
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if authenticated.is_marked() || headers.contains_key(header::SET_COOKIE) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if is_docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    }
    res
}
