//! HTTP routes of the users domain. Who may call what is decided by the extractors each
//! handler takes ([`AuthUser`], [`AdminUser`]).

use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::extract::{Json as JsonBody, Path, Query};
use crate::pagination::{Keyset, Page};
use crate::state::AppState;
use crate::users::model::{AccountChange, AuditEntry, User};
use crate::users::{repo, service};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use common::domain::Role;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list))
        .routes(routes!(get_user, change_user))
        .routes(routes!(audit))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/users/me", tag = "users",
    security(("cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = User),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<User>> {
    let row = repo::find(&state.db, user.id)
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    Ok(Json(User::try_from(row)?))
}

/// Longest email prefix accepted (an email is at most 254 characters).
const MAX_EMAIL_PREFIX: usize = 254;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only accounts with this role.
    role: Option<Role>,
    /// Only accounts whose email starts with this (case-insensitive, 1 to 254 characters).
    #[param(example = "ann@")]
    email: Option<String>,
}

/// Every account, oldest first, a page at a time (ADMIN only).
#[utoipa::path(get, path = "/users", tag = "users", operation_id = "list_users",
    security(("cookie" = []), ("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 400, description = "Bad cursor or unknown parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit or email prefix out of range", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<User>>> {
    let keyset = Keyset::<(DateTime<Utc>, Uuid)>::parse(params.limit, params.cursor.as_deref())?;
    let email_prefix = params.email.map(|e| e.trim().to_lowercase());
    if email_prefix
        .as_ref()
        .is_some_and(|p| p.is_empty() || p.chars().count() > MAX_EMAIL_PREFIX)
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "email",
            format!("must be 1 to {MAX_EMAIL_PREFIX} characters"),
        )]));
    }
    let filter = repo::ListFilter {
        role: params.role,
        email_prefix: email_prefix.as_deref(),
        after: keyset.after,
        limit: keyset.fetch(),
    };
    let users = repo::list(&state.db, &filter)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(keyset.page(users, |u| (u.created_at, u.id))))
}

/// One account (ADMIN only).
#[utoipa::path(get, path = "/users/{id}", tag = "users",
    security(("cookie" = []), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The account", body = User),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<User>> {
    let row = repo::find(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(User::try_from(row)?))
}

/// Promote, demote, disable or enable an account (ADMIN only).
///
/// `{"role"?, "disabled"?}`. Demoting an ADMIN or disabling an account ends all of its
/// sessions at once, on every replica (its open order event streams too); a disabled account
/// cannot log in (it gets the same answer as a wrong password) nor refresh. The last active
/// ADMIN can be neither demoted nor disabled (409). Each change is recorded in the account's
/// audit trail; asking for what the account already has changes and records nothing.
#[utoipa::path(patch, path = "/users/{id}", tag = "users",
    security(("cookie" = []), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = AccountChange,
    responses(
        (status = 200, description = "The account as changed", body = User),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active ADMIN cannot be demoted or disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role, unknown field, or nothing to change", body = Problem, content_type = "application/problem+json"),
    ))]
async fn change_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    JsonBody(change): JsonBody<AccountChange>,
) -> ApiResult<Json<User>> {
    service::change_account(&state, admin, id, change)
        .await
        .map(Json)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The changes made to an account's role and status, oldest first (ADMIN only).
#[utoipa::path(get, path = "/users/{id}/audit", tag = "users",
    security(("cookie" = []), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id"), AuditParams),
    responses(
        (status = 200, description = "A page of the account's audit trail", body = Page<AuditEntry>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ))]
async fn audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let keyset = Keyset::<i64>::parse(params.limit, params.cursor.as_deref())?;
    if repo::find(&state.db, id).await?.is_none() {
        return Err(ApiError::NotFound("user"));
    }
    let entries = repo::audit(&state.db, id, keyset.after, keyset.fetch()).await?;
    Ok(Json(keyset.page(entries, |e| e.id)))
}
