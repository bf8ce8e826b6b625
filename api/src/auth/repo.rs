//! Data access of the auth domain: accounts' credentials, sessions and refresh tokens.

use crate::auth::session::{SESSION_TTL_DAYS, random_token, token_hash};
use crate::auth::validation::Email;
use crate::users::model::UserRow;
use chrono::{DateTime, Utc};
use common::domain::Role;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// An account with its password hash: never leaves the auth service.
#[derive(sqlx::FromRow)]
pub struct Account {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub password_hash: String,
}

/// A `users` row with its password hash, as the checked statements return it.
struct AccountRecord {
    id: Uuid,
    email: String,
    name: Option<String>,
    role: Role,
    disabled: bool,
    created_at: DateTime<Utc>,
    password_hash: String,
}

impl From<AccountRecord> for Account {
    fn from(r: AccountRecord) -> Self {
        Account {
            user: UserRow {
                id: r.id,
                email: r.email,
                name: r.name,
                role: r.role,
                disabled: r.disabled,
                created_at: r.created_at,
            },
            password_hash: r.password_hash,
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn find_account_by_email(db: &PgPool, email: &str) -> sqlx::Result<Option<Account>> {
    sqlx::query_as!(
        AccountRecord,
        r#"SELECT id, email, name, role AS "role: Role", disabled_at IS NOT NULL AS "disabled!",
                  created_at, password_hash
             FROM users WHERE email = $1"#,
        email,
    )
    .fetch_optional(db)
    .await
    .map(|r| r.map(Account::from))
}

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn find_account(db: &PgPool, id: Uuid) -> sqlx::Result<Option<Account>> {
    sqlx::query_as!(
        AccountRecord,
        r#"SELECT id, email, name, role AS "role: Role", disabled_at IS NOT NULL AS "disabled!",
                  created_at, password_hash
             FROM users WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
    .map(|r| r.map(Account::from))
}

/// Why inserting a user failed.
pub enum InsertUserError {
    DuplicateEmail,
    Db(sqlx::Error),
}

/// Inserts a new user; a taken email (case-insensitively, as emails are stored normalised) is
/// [`InsertUserError::DuplicateEmail`], told by the constraint's name.
#[tracing::instrument(skip_all)]
pub async fn insert_user(
    db: impl PgExecutor<'_>,
    email: &Email,
    name: Option<&str>,
    role: Role,
    password_hash: &str,
) -> Result<UserRow, InsertUserError> {
    sqlx::query_as!(
        UserRow,
        r#"INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5)
           RETURNING id, email, name, role AS "role: Role", false AS "disabled!", created_at"#,
        Uuid::now_v7(),
        email.as_str(),
        name,
        role as Role,
        password_hash,
    )
    .fetch_one(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("users_email_key") => {
            InsertUserError::DuplicateEmail
        }
        _ => InsertUserError::Db(e),
    })
}

#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn update_password(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    password_hash: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        user_id,
        password_hash,
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// Creates the start-up ADMIN, or makes the existing account with that email an enabled ADMIN
/// with that password. Returns the user id.
#[tracing::instrument(skip_all)]
pub async fn upsert_admin(
    db: impl PgExecutor<'_>,
    email: &Email,
    password_hash: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO users (id, email, name, role, password_hash)
         VALUES ($1, $2, 'Administrator', 'ADMIN', $3)
         ON CONFLICT (email) DO UPDATE SET role = 'ADMIN', password_hash = EXCLUDED.password_hash,
                                           disabled_at = NULL
         RETURNING id",
        Uuid::now_v7(),
        email.as_str(),
        password_hash,
    )
    .fetch_one(db)
    .await
}

/// A new session and its first refresh token.
pub struct NewSession {
    pub session_id: Uuid,
    pub refresh_token: String,
    /// The user's oldest live sessions, revoked to stay within the cap.
    pub revoked: Vec<Uuid>,
}

/// Starts a session for `user_id`. A user holds at most `max_sessions` live sessions: past
/// that, the oldest are revoked, so logins in a loop cannot grow the table without bound.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn create_session(
    db: &PgPool,
    user_id: Uuid,
    max_sessions: u32,
) -> sqlx::Result<NewSession> {
    let session_id = Uuid::new_v4();
    let refresh_token = random_token();
    let mut tx = db.begin().await?;
    // Concurrent logins of one user take turns, so together they cannot pass the cap.
    sqlx::query!("SELECT id FROM users WHERE id = $1 FOR UPDATE", user_id)
        .fetch_optional(&mut *tx)
        .await?;
    let revoked: Vec<Uuid> = sqlx::query_scalar!(
        "UPDATE sessions SET revoked_at = now() WHERE id IN (
             SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL
             AND expires_at > now() ORDER BY created_at DESC OFFSET $2)
         RETURNING id",
        user_id,
        i64::from(max_sessions.max(1)) - 1,
    )
    .fetch_all(&mut *tx)
    .await?;
    // Housekeeping: the user's sessions that can no longer be used go (their tokens with them).
    sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1
         AND (expires_at < now() OR revoked_at < now() - interval '1 day')",
        user_id,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(days => $3))",
        session_id,
        user_id,
        SESSION_TTL_DAYS as i32,
    )
    .execute(&mut *tx)
    .await?;
    insert_refresh_token(&mut *tx, session_id, &refresh_token).await?;
    tx.commit().await?;
    Ok(NewSession {
        session_id,
        refresh_token,
        revoked,
    })
}

async fn insert_refresh_token(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
    token: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)",
        &token_hash(token)[..],
        session_id,
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// What presenting a refresh token led to.
pub enum Rotation {
    /// The token was current: it is now used, and this one replaces it.
    Rotated {
        session_id: Uuid,
        user_id: Uuid,
        role: Role,
        refresh_token: String,
    },
    /// The token had already been rotated: treated as stolen, its session is now revoked.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Unknown token, or its session is revoked or expired.
    Invalid,
}

/// Rotates a refresh token in one transaction. Marking the token used is a guarded update
/// (`used_at IS NULL`), so of two concurrent presentations exactly one rotates and the other
/// is seen as a reuse.
#[tracing::instrument(skip_all)]
pub async fn rotate_refresh_token(db: &PgPool, token: &str) -> sqlx::Result<Rotation> {
    let hash = token_hash(token);
    let mut tx = db.begin().await?;
    let used: Option<Uuid> = sqlx::query_scalar!(
        "UPDATE refresh_tokens SET used_at = now()
          WHERE token_hash = $1 AND used_at IS NULL RETURNING session_id",
        &hash[..],
    )
    .fetch_optional(&mut *tx)
    .await?;

    let Some(session_id) = used else {
        // Either never issued, or already rotated: the latter means two parties hold it.
        let reused = sqlx::query!(
            "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
              WHERE t.token_hash = $1",
            &hash[..],
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| (r.id, r.user_id));
        let outcome = match reused {
            Some((session_id, user_id)) => {
                revoke_session(&mut *tx, session_id).await?;
                Rotation::Reused {
                    session_id,
                    user_id,
                }
            }
            None => Rotation::Invalid,
        };
        tx.commit().await?;
        return Ok(outcome);
    };

    let live = sqlx::query!(
        r#"SELECT u.id, u.role AS "role: Role" FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
              AND u.disabled_at IS NULL"#,
        session_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.id, r.role));
    let Some((user_id, role)) = live else {
        tx.commit().await?;
        return Ok(Rotation::Invalid);
    };
    let refresh_token = random_token();
    insert_refresh_token(&mut *tx, session_id, &refresh_token).await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        session_id,
        user_id,
        role,
        refresh_token,
    })
}

/// The current role of the user of a live session and when the session expires; `None` when
/// the session is revoked, expired, unknown or not this user's, or the account is disabled.
pub async fn live_session(
    db: &PgPool,
    session_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<(Role, DateTime<Utc>)>> {
    sqlx::query!(
        r#"SELECT u.role AS "role: Role", s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()
              AND u.disabled_at IS NULL"#,
        session_id,
        user_id,
    )
    .fetch_optional(db)
    .await
    .map(|r| r.map(|r| (r.role, r.expires_at)))
}

#[tracing::instrument(skip_all, fields(session_id = %session_id))]
pub async fn revoke_session(db: impl PgExecutor<'_>, session_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        session_id,
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// Revokes every live session of a user except `keep` (pass `None` to revoke them all).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn revoke_sessions_except(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> sqlx::Result<u64> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now()
          WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
        user_id,
        keep,
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}
