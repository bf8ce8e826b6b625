//! HTTP routes of the auth domain: translate requests to the service and results to cookies.
//! Tokens travel only in `Set-Cookie` headers, never in a response body.

use crate::auth::cookies::{Cookies, cookie_in};
use crate::auth::identity::AuthUser;
use crate::auth::model::{ChangePasswordRequest, LoginRequest, RegisterRequest};
use crate::auth::service::{self, Tokens};
use crate::client_address::ClientAddress;
use crate::error::{ApiResult, Problem};
use crate::extract::Json;
use crate::state::AppState;
use crate::users::model::User;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(change_password))
}

fn cookies(state: &AppState) -> Cookies {
    Cookies {
        secure: state.config.cookie_secure,
    }
}

/// The two `Set-Cookie` headers carrying a session's tokens.
fn token_cookies(
    state: &AppState,
    tokens: &Tokens,
) -> AppendHeaders<[(HeaderName, HeaderValue); 2]> {
    let cookies = cookies(state);
    AppendHeaders([
        (header::SET_COOKIE, cookies.access(&tokens.access)),
        (header::SET_COOKIE, cookies.refresh(&tokens.refresh)),
    ])
}

/// Create a CLIENT account and log it in.
///
/// Sets the access cookie (path `/`) and the refresh cookie (path `/api/v1/auth`): `__Host-access_token`
/// and `__Secure-refresh_token`, or `access_token` and `refresh_token` with `COOKIE_SECURE=false`. Registration never creates an ADMIN: a `role` field is an unknown field.
/// Registrations are limited per client address (`REGISTER_IP_RATE_PER_MINUTE`), and
/// password hashes per process (`PASSWORD_HASH_CONCURRENCY`).
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = User,
            headers(("set-cookie" = String, description = "The access and refresh cookies (access_token and refresh_token; __Host-access_token and __Secure-refresh_token with COOKIE_SECURE), HttpOnly, SameSite=Strict"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, each named", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Every password hashing slot is busy, or a dependency is down", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait, when busy"))),
    ))]
async fn register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Response> {
    let done = service::register(&state, address, req).await?;
    Ok((
        StatusCode::CREATED,
        token_cookies(&state, &done.tokens),
        axum::Json(done.user),
    )
        .into_response())
}

/// Log in with email and password.
///
/// Unknown emails and wrong passwords get the same 401. Failed attempts are limited per
/// client address and per account; over the limit the answer is 429 with `Retry-After`. An
/// email over 254 bytes is a 422.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = User,
            headers(("set-cookie" = String, description = "The access and refresh cookies (access_token and refresh_token; __Host-access_token and __Secure-refresh_token with COOKIE_SECURE), HttpOnly, SameSite=Strict"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Invalid email or password", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or unknown fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins",  body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Every password hashing slot is busy, or a dependency is down", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait, when busy"))),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let done = service::login(&state, address, req).await?;
    Ok((token_cookies(&state, &done.tokens), axum::Json(done.user)).into_response())
}

/// Rotate the refresh token and get a new access token.
///
/// Needs the refresh cookie. Each refresh token works once; presenting one that was
/// already rotated revokes the whole session (the newer token too) and answers 401.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    security(("refresh_cookie" = [])),
    responses(
        (status = 204, description = "New tokens set",
            headers(("set-cookie" = String, description = "The access and refresh cookies (access_token and refresh_token; __Host-access_token and __Secure-refresh_token with COOKIE_SECURE), HttpOnly, SameSite=Strict"))),
        (status = 401, description = "Missing, unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Cross-origin request refused", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let refresh_cookie = cookies(&state).refresh_name();
    let tokens = service::refresh(&state, cookie_in(&headers, refresh_cookie).as_deref()).await?;
    Ok((StatusCode::NO_CONTENT, token_cookies(&state, &tokens)).into_response())
}

/// Log out: revoke the session and clear both cookies.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security(("cookie" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Logged out; cookies cleared"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Cross-origin request refused", body = Problem, content_type = "application/problem+json"),
    ))]
async fn logout(State(state): State<AppState>, user: AuthUser) -> ApiResult<Response> {
    service::logout(&state, user).await?;
    let [access, refresh] = cookies(&state).cleared();
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, access), (header::SET_COOKIE, refresh)]),
    )
        .into_response())
}

/// Change the password; every other session of the account is revoked.
#[utoipa::path(put, path = "/auth/password", tag = "auth",
    security(("cookie" = []), ("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed; other sessions revoked"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Cross-origin request refused", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong current password or new password against the policy, each field named", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    ))]
async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    service::change_password(&state, user, req).await?;
    Ok(StatusCode::NO_CONTENT)
}
