//! The auth cookies: their names, the `Set-Cookie` values the api sends and reading them back
//! from a request (with `axum-extra`'s `CookieJar`).

use crate::auth::session::SESSION_TTL_DAYS;
use crate::auth::token::ACCESS_TOKEN_TTL_SECS;
use axum::http::{HeaderMap, HeaderValue};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// Cookie names over plain http (`COOKIE_SECURE=false`, local use only).
pub const ACCESS_COOKIE: &str = "access_token";
pub const REFRESH_COOKIE: &str = "refresh_token";
/// Cookie names with `Secure`: `__Host-` makes browsers refuse the access cookie unless it is
/// `Secure`, host-only and for path `/`, so no subdomain can plant or shadow it; the refresh
/// cookie's path rules `__Host-` out, and `__Secure-` still demands `Secure`.
pub const SECURE_ACCESS_COOKIE: &str = "__Host-access_token";
pub const SECURE_REFRESH_COOKIE: &str = "__Secure-refresh_token";
/// Every name an auth cookie may have, whichever `COOKIE_SECURE` chose.
pub const ALL_NAMES: [&str; 4] = [
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    SECURE_ACCESS_COOKIE,
    SECURE_REFRESH_COOKIE,
];
/// The refresh cookie is only ever sent to the auth routes.
pub const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

/// The value of cookie `name` among `headers`, if present and not empty.
pub fn cookie_in(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(Cookie::value)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Builds `Set-Cookie` values with the attributes every auth cookie shares: `HttpOnly` (no
/// script can read it), `SameSite=Strict` (no cross-site request carries it) and, unless
/// `COOKIE_SECURE=false`, `Secure` with a prefixed name.
#[derive(Clone, Copy)]
pub struct Cookies {
    pub secure: bool,
}

impl Cookies {
    pub fn access_name(&self) -> &'static str {
        if self.secure {
            SECURE_ACCESS_COOKIE
        } else {
            ACCESS_COOKIE
        }
    }

    pub fn refresh_name(&self) -> &'static str {
        if self.secure {
            SECURE_REFRESH_COOKIE
        } else {
            REFRESH_COOKIE
        }
    }

    pub fn access(&self, token: &str) -> HeaderValue {
        self.build(self.access_name(), token, "/", ACCESS_TOKEN_TTL_SECS)
    }

    pub fn refresh(&self, token: &str) -> HeaderValue {
        self.build(
            self.refresh_name(),
            token,
            REFRESH_COOKIE_PATH,
            SESSION_TTL_DAYS * 24 * 3600,
        )
    }

    /// Both cookies, expired: what logout sends.
    pub fn cleared(&self) -> [HeaderValue; 2] {
        [
            self.build(self.access_name(), "", "/", 0),
            self.build(self.refresh_name(), "", REFRESH_COOKIE_PATH, 0),
        ]
    }

    fn build(
        &self,
        name: &'static str,
        value: &str,
        path: &'static str,
        max_age: i64,
    ) -> HeaderValue {
        let cookie = Cookie::build((name, value.to_owned()))
            .path(path)
            .max_age(cookie::time::Duration::seconds(max_age))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .build();
        // Tokens are base64url or JWTs, so the value is always a valid header.
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn cookies_are_http_only_strict_and_secure_and_prefixed_when_asked() {
        let c = Cookies { secure: true }.refresh("abc");
        let c = c.to_str().expect("ascii");
        assert!(c.starts_with("__Secure-refresh_token=abc;"), "{c}");
        assert!(c.contains("; Path=/api/v1/auth;"), "{c}");
        assert!(
            c.contains("; HttpOnly") && c.contains("; SameSite=Strict") && c.contains("; Secure"),
            "{c}"
        );
        let c = Cookies { secure: true }.access("abc");
        let c = c.to_str().expect("ascii");
        assert!(
            c.starts_with("__Host-access_token=abc;") && c.contains("; Path=/;"),
            "{c}"
        );
        assert!(!c.contains("Domain") && c.contains("; Secure"), "{c}");
        let c = Cookies { secure: false }.access("abc");
        let c = c.to_str().expect("ascii");
        assert!(
            c.starts_with("access_token=abc;") && !c.contains("Secure"),
            "{c}"
        );
    }

    #[test]
    fn cleared_cookies_expire_at_once() {
        for c in (Cookies { secure: true }).cleared() {
            let c = c.to_str().expect("ascii");
            assert!(c.contains("Max-Age=0"), "{c}");
        }
    }

    #[test]
    fn a_cookie_is_read_by_its_exact_name_and_never_empty() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; access_token=tok"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("refresh_token="));
        assert_eq!(cookie_in(&headers, ACCESS_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie_in(&headers, SECURE_ACCESS_COOKIE), None);
        assert_eq!(cookie_in(&headers, REFRESH_COOKIE), None);
    }
}
