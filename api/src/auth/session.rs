//! Refresh tokens and the auth cookies.
//!
//! A refresh token is 256 random bits, sent to the client once (in a cookie scoped to
//! `/api/v1/auth`) and stored only as its SHA-256: a database leak yields nothing usable.

use crate::auth::token::ACCESS_TOKEN_TTL_SECS;
use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Cookie names over plain http (`COOKIE_SECURE=false`, local use only).
pub const ACCESS_COOKIE: &str = "access_token";
pub const REFRESH_COOKIE: &str = "refresh_token";
/// Cookie names with `Secure`: `__Host-` makes browsers refuse the access cookie unless it is
/// `Secure`, host-only and for path `/`, so no subdomain can plant or shadow it; the refresh
/// cookie's path rules `__Host-` out, and `__Secure-` still demands `Secure`.
pub const SECURE_ACCESS_COOKIE: &str = "__Host-access_token";
pub const SECURE_REFRESH_COOKIE: &str = "__Secure-refresh_token";
/// The refresh cookie is only ever sent to the auth routes.
pub const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";
/// Absolute lifetime of a session: after this, the user logs in again.
pub const SESSION_TTL_DAYS: i64 = 30;

/// 256 random bits, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores for a refresh token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
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

    fn build(&self, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        );
        // Tokens are base64url or JWTs, so the value is always a valid header.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_and_differ() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).expect("base64").len(), 32);
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 32);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_and_prefixed_when_asked() {
        let c = Cookies { secure: true }.refresh("abc");
        let c = c.to_str().expect("ascii");
        assert!(
            c.starts_with("__Secure-refresh_token=abc; Path=/api/v1/auth;"),
            "{c}"
        );
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        let c = Cookies { secure: true }.access("abc");
        let c = c.to_str().expect("ascii");
        assert!(c.starts_with("__Host-access_token=abc; Path=/;"), "{c}");
        assert!(!c.contains("Domain") && c.ends_with("Secure"), "{c}");
        let c = Cookies { secure: false }.access("abc");
        let c = c.to_str().expect("ascii");
        assert!(
            c.starts_with("access_token=abc;") && !c.contains("Secure"),
            "{c}"
        );
    }
}
