//! Data access of the users domain; no query here reads a password hash.

use crate::users::model::UserRow;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT id, email, name, role, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Up to `limit` users in creation order, strictly after `after` (the last key of the
/// previous page).
#[tracing::instrument(skip_all)]
pub async fn list(
    db: &PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<UserRow>> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(
        "SELECT id, email, name, role, created_at FROM users \
         WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2) \
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db)
    .await
}
