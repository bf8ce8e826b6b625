//! HTTP routes of the users domain. Who may call what is decided by the extractors each
//! handler takes ([`AuthUser`], [`AdminUser`]).

use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Query;
use crate::pagination::{self, Page};
use crate::state::AppState;
use crate::users::model::User;
use crate::users::repo;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list))
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
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
        (status = 422, description = "Limit out of range", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<User>>> {
    let limit = pagination::limit(params.limit)?;
    let after = params
        .cursor
        .as_deref()
        .map(pagination::decode_cursor::<(DateTime<Utc>, Uuid)>)
        .transpose()?;
    let rows = repo::list(&state.db, after, i64::from(limit) + 1).await?;
    let users = rows
        .into_iter()
        .map(User::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(pagination::page(users, limit, |u| {
        (u.created_at, u.id)
    })))
}
