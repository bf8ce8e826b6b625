//! The caller of a request, and role checks as extractors, so a handler cannot forget them: a handler that takes
//! [`AuthUser`] is reachable only with a valid access token, one that takes [`AdminUser`] only
//! by an ADMIN, one that takes [`ClientUser`] only by a CLIENT.
//!
//! The token is read from the `access_token` cookie or an `Authorization: Bearer` header.
//! Besides its signature and expiry, the token's session must still be live, so logout, a
//! password change or a detected token theft ends it at once; the role is the account's
//! current one, so a change of role takes effect at once too. Both come from
//! [`crate::auth::session_cache`], which reads PostgreSQL only when it has not seen the session within
//! `SESSION_CACHE_TTL_MS` and forgets a session as soon as anything in the api ends it.
//! There is deliberately no `Option<AuthUser>`: it would turn a bad token into "anonymous"
//! silently; a route open to everyone simply does not take the extractor.

use crate::auth::cookies::{Cookies, cookie_in};
pub use crate::auth::identity::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};
use chrono::DateTime;
use common::domain::Role;

/// An authenticated ADMIN.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

/// An authenticated CLIENT: a customer account, the only kind that places orders.
#[derive(Debug, Clone, Copy)]
pub struct ClientUser(pub AuthUser);

/// The raw access token of a request: the Bearer header wins over the cookie named
/// `access_cookie` (its name depends on `COOKIE_SECURE`, see [`Cookies`]).
pub fn access_token(headers: &HeaderMap, access_cookie: &str) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    cookie_in(headers, access_cookie)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(*user);
        }
        if let Some(marker) = parts.extensions.get::<crate::headers::Authenticated>() {
            // Whatever the answer, it is about this caller: no cache may keep it.
            marker.mark();
        }
        let cookies = Cookies {
            secure: state.config.cookie_secure,
        };
        let token = access_token(&parts.headers, cookies.access_name())
            .ok_or(ApiError::Unauthorized("authentication required"))?;
        let claims = state
            .tokens
            .verify(&token)
            .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
        let (role, session_ends) = state
            .session_cache
            .live(&state.db, claims.sid, claims.sub)
            .await?
            .ok_or(ApiError::Unauthorized(
                "the session has ended, log in again",
            ))?;
        let token_ends = DateTime::from_timestamp(claims.exp, 0).unwrap_or(session_ends);
        let user = AuthUser {
            id: claims.sub,
            role,
            session_id: claims.sid,
            authorized_until: token_ends.min(session_ends),
        };
        parts.extensions.insert(user);
        // The request span (see `app::with_middleware`) declares the field; every later log
        // line of the request names its caller.
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        Ok(user)
    }
}

/// The authenticated caller if it has `role`: 401 without a valid session, 403 with another role.
async fn caller_with_role(
    parts: &mut Parts,
    state: &AppState,
    role: Role,
) -> Result<AuthUser, ApiError> {
    let user = AuthUser::from_request_parts(parts, state).await?;
    if user.role != role {
        return Err(ApiError::Forbidden);
    }
    Ok(user)
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        caller_with_role(parts, state, Role::Admin)
            .await
            .map(AdminUser)
    }
}

impl FromRequestParts<AppState> for ClientUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        caller_with_role(parts, state, Role::Client)
            .await
            .map(ClientUser)
    }
}
