//! Defence against cross-site request forgery for cookie-authenticated requests.
//!
//! Two layers: the auth cookies are `SameSite=Strict`, so browsers do not attach them to
//! requests started by another site; and this middleware refuses any unsafe request (not GET,
//! HEAD or OPTIONS) that carries an auth cookie and whose `Origin` is not the api's own origin
//! or one listed in `TRUSTED_ORIGINS` (or whose `Sec-Fetch-Site` says `cross-site`). Browsers
//! always send `Origin` on unsafe cross-origin requests, so a forged one cannot slip through by
//! leaving it out; clients that send no `Origin` are not browsers and cannot be forged into
//! sending a request. Requests with `Authorization: Bearer` need no check: a page cannot make
//! a browser add that header on its own.

use crate::auth::cookies::{ALL_NAMES, cookie_in};
use crate::error::Problem;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_forged(req.method(), req.headers(), &state.config.trusted_origins) {
        tracing::warn!(
            origin = ?req.headers().get(header::ORIGIN),
            "cross-origin cookie-authenticated request refused"
        );
        return Problem::new(
            StatusCode::FORBIDDEN,
            "/problems/cross-origin-request",
            "cross-origin requests authenticated by cookie are refused",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a request must be refused as a possible forgery.
pub fn is_forged(method: &Method, headers: &HeaderMap, trusted: &[String]) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    let cookie_auth = ALL_NAMES
        .iter()
        .any(|name| cookie_in(headers, name).is_some());
    if bearer || !cookie_auth {
        return false;
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(origin) = origin.to_str().ok().map(str::to_ascii_lowercase) else {
        return true;
    };
    if trusted.contains(&origin) {
        return false;
    }
    // Same origin: the Origin's authority is the Host the request was sent to.
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    !matches!((authority, host), (Some(a), Some(h)) if a == h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const COOKIE: (&str, &str) = ("cookie", "access_token=abc");
    const HOST: (&str, &str) = ("host", "api.example:8080");

    #[test]
    fn a_foreign_origin_with_an_auth_cookie_is_refused() {
        let h = headers(&[COOKIE, HOST, ("origin", "https://evil.example")]);
        assert!(is_forged(&Method::POST, &h, &[]));
    }

    #[test]
    fn the_same_origin_or_a_trusted_one_passes() {
        let h = headers(&[COOKIE, HOST, ("origin", "http://api.example:8080")]);
        assert!(!is_forged(&Method::POST, &h, &[]));
        let h = headers(&[COOKIE, HOST, ("origin", "https://shop.example")]);
        assert!(!is_forged(
            &Method::PUT,
            &h,
            &["https://shop.example".into()]
        ));
    }

    #[test]
    fn safe_methods_bearer_tokens_and_cookieless_requests_are_not_checked() {
        let h = headers(&[COOKIE, HOST, ("origin", "https://evil.example")]);
        assert!(!is_forged(&Method::GET, &h, &[]));
        let h = headers(&[HOST, ("origin", "https://evil.example")]);
        assert!(!is_forged(&Method::POST, &h, &[]));
        let h = headers(&[
            COOKIE,
            HOST,
            ("origin", "https://evil.example"),
            ("authorization", "Bearer x"),
        ]);
        assert!(!is_forged(&Method::POST, &h, &[]));
    }

    #[test]
    fn a_cross_site_fetch_or_a_null_origin_is_refused() {
        let h = headers(&[COOKIE, HOST, ("sec-fetch-site", "cross-site")]);
        assert!(is_forged(&Method::DELETE, &h, &[]));
        let h = headers(&[COOKIE, HOST, ("origin", "null")]);
        assert!(is_forged(&Method::POST, &h, &[]));
    }
}
