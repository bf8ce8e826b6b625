//! Data access of the users domain; no query here reads a password hash.

use crate::users::model::{AuditChanges, AuditEntry, UserRow};
use chrono::{DateTime, Utc};
use common::domain::Role;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The columns of a [`UserRow`].
macro_rules! user_columns {
    () => {
        "id, email, name, role, disabled_at IS NOT NULL AS disabled, created_at"
    };
}

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, name, role AS "role: Role", disabled_at IS NOT NULL AS "disabled!",
                  created_at
             FROM users WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// Filters of the account list.
pub struct ListFilter<'a> {
    pub role: Option<Role>,
    /// Lower-case start of the email.
    pub email_prefix: Option<&'a str>,
    /// The last key of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Up to `limit` users in creation order, strictly after `after`. Only the filters given
/// become predicates, so a prefix can use `users_email_prefix`.
#[tracing::instrument(skip_all)]
pub async fn list(db: &PgPool, f: &ListFilter<'_>) -> sqlx::Result<Vec<UserRow>> {
    let mut q = sqlx::QueryBuilder::new(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE true"
    ));
    if let Some(role) = f.role {
        q.push(" AND role = ").push_bind(role);
    }
    if let Some(prefix) = f.email_prefix {
        // `\` escapes LIKE's wildcards, so `_` and `%` in the prefix match themselves.
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q.push(" AND email LIKE ").push_bind(format!("{escaped}%"));
    }
    if let Some((at, id)) = f.after {
        q.push(" AND (created_at, id) > (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY created_at, id LIMIT ").push_bind(f.limit);
    q.build_query_as().fetch_all(db).await
}

/// Locks the active ADMINs' rows and the accounts `ids` (the account changed and the ADMIN
/// changing it), in id order in one statement, and returns the active ADMINs' ids. Every change
/// that could take an ADMIN away takes these locks first, so two such changes run one after the
/// other and the second sees what the first did. One ordered pass over every row the change
/// will touch matters: a row an earlier change demoted stays locked when it is skipped, and the
/// audit entry's reference to the acting ADMIN takes a lock on that ADMIN's row, so a row
/// locked apart, after the others, could wait on a change that waits on this one.
pub async fn lock_admins_and(tx: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
    let rows = sqlx::query!(
        r#"SELECT id, (role = 'ADMIN' AND disabled_at IS NULL) AS "active_admin!"
             FROM users WHERE (role = 'ADMIN' AND disabled_at IS NULL) OR id = ANY($1)
            ORDER BY id FOR UPDATE"#,
        ids,
    )
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.active_admin)
        .map(|r| r.id)
        .collect())
}

/// An account, its row locked until the transaction ends.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, name, role AS "role: Role", disabled_at IS NOT NULL AS "disabled!",
                  created_at
             FROM users WHERE id = $1 FOR UPDATE"#,
        id,
    )
    .fetch_optional(tx)
    .await
}

/// Sets an account's role and status (keeping when it was disabled if it already was).
pub async fn update(
    tx: &mut PgConnection,
    id: Uuid,
    role: Role,
    disabled: bool,
) -> sqlx::Result<UserRow> {
    sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET role = $2,
                  disabled_at = CASE WHEN $3 THEN COALESCE(disabled_at, now()) END
            WHERE id = $1
        RETURNING id, email, name, role AS "role: Role", disabled_at IS NOT NULL AS "disabled!",
                  created_at"#,
        id,
        role as Role,
        disabled,
    )
    .fetch_one(tx)
    .await
}

pub async fn record_audit(
    tx: &mut PgConnection,
    user_id: Uuid,
    actor_id: Uuid,
    changes: &AuditChanges,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO user_audit (user_id, actor_id, changes) VALUES ($1, $2, $3)",
        user_id,
        actor_id,
        Json(changes) as _,
    )
    .execute(tx)
    .await
    .map(|_| ())
}

struct AuditRow {
    id: i64,
    user_id: Uuid,
    actor_id: Option<Uuid>,
    at: DateTime<Utc>,
    changes: Json<AuditChanges>,
}

/// Up to `limit` changes of an account, oldest first, after change `after`.
pub async fn audit(
    db: &PgPool,
    user_id: Uuid,
    after: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<AuditEntry>> {
    let rows = sqlx::query_as!(
        AuditRow,
        r#"SELECT id, user_id, actor_id, at, changes AS "changes: Json<AuditChanges>"
             FROM user_audit
            WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"#,
        user_id,
        after.unwrap_or(0),
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            user_id: r.user_id,
            actor_id: r.actor_id,
            at: r.at,
            changes: r.changes.0,
        })
        .collect())
}
