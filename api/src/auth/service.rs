//! The rules of accounts and sessions: registration, login, refresh-token rotation with theft
//! detection, logout, password change and the start-up ADMIN. Handlers only translate HTTP.

use crate::auth::identity::AuthUser;
use crate::auth::model::{ChangePasswordRequest, LoginRequest, RegisterRequest};
use crate::auth::password::Hashing;
use crate::auth::repo::{self, InsertUserError, Rotation};
use crate::auth::validation::{Email, check_email_length, check_password, parse_name};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::users::model::User;
use anyhow::{Context, anyhow};
use common::config::{AdminSeed, ExposeSecret, SecretString};
use common::domain::Role;
use sqlx::PgPool;
use std::net::IpAddr;
use uuid::Uuid;

/// A fresh pair of tokens for a session.
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// An account just logged in (or registered) and its tokens.
pub struct LoggedIn {
    pub user: User,
    pub tokens: Tokens,
}

const BAD_CREDENTIALS: &str = "invalid email or password";

/// Creates a CLIENT account and logs it in. Input is checked first (cheap), then the
/// address's registration allowance (429), then the password is hashed (503 when every
/// hashing slot is busy).
#[tracing::instrument(skip_all, fields(%address))]
pub async fn register(
    state: &AppState,
    address: IpAddr,
    req: RegisterRequest,
) -> ApiResult<LoggedIn> {
    check_email_length(&req.email)?;
    let mut errors = Vec::new();
    let email = Email::parse(&req.email)
        .map_err(|m| errors.push(FieldError::new("email", m)))
        .ok();
    let name = parse_name(req.name.as_deref())
        .map_err(|m| errors.push(FieldError::new("name", m)))
        .ok()
        .flatten();
    if let Err(e) = check_password("password", &req.password, email.as_ref()) {
        errors.push(e);
    }
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };

    state.login_limits.record_registration(address)?;
    let hash = state
        .passwords
        .hash(SecretString::from(req.password))
        .await?;
    let row = repo::insert_user(&state.db, &email, name.as_deref(), Role::Client, &hash)
        .await
        .map_err(|e| match e {
            InsertUserError::DuplicateEmail => {
                ApiError::conflict("an account with this email already exists")
            }
            InsertUserError::Db(e) => e.into(),
        })?;
    let user = User::try_from(row)?;
    tracing::info!(user_id = %user.id, "account registered");
    let tokens = start_session(state, user.id, user.role).await?;
    Ok(LoggedIn { user, tokens })
}

/// Checks credentials. Unknown emails, wrong passwords and disabled accounts cost the same (a
/// dummy hash is verified for unknown emails) and get the same answer; failures count towards
/// the rate limits. An email too long to be one is refused before any limiter sees it, so it
/// cannot grow their state.
#[tracing::instrument(skip_all, fields(%address))]
pub async fn login(state: &AppState, address: IpAddr, req: LoginRequest) -> ApiResult<LoggedIn> {
    check_email_length(&req.email)?;
    let account_key = Email::normalise(&req.email);
    state.login_limits.check(address, &account_key)?;

    let account = repo::find_account_by_email(&state.db, &account_key).await?;
    let (hash, account) = match account {
        Some(a) => (a.password_hash.clone(), Some(a)),
        None => (state.passwords.dummy_hash(), None),
    };
    let matches = state
        .passwords
        .verify(SecretString::from(req.password), hash)
        .await?;
    let account = match account {
        Some(a) if matches && !a.user.disabled => a,
        _ => {
            state.login_limits.record_failure(address, &account_key)?;
            tracing::info!("login failed");
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
        }
    };
    let user = User::try_from(account.user)?;
    tracing::info!(user_id = %user.id, "logged in");
    let tokens = start_session(state, user.id, user.role).await?;
    Ok(LoggedIn { user, tokens })
}

async fn start_session(state: &AppState, user_id: Uuid, role: Role) -> ApiResult<Tokens> {
    let session =
        repo::create_session(&state.db, user_id, state.config.max_sessions_per_user).await?;
    for revoked in &session.revoked {
        state.evictions.session_ended(*revoked).await;
    }
    if !session.revoked.is_empty() {
        tracing::info!(
            revoked = session.revoked.len(),
            "oldest sessions revoked past the cap"
        );
    }
    let access = state.tokens.issue(user_id, role, session.session_id)?;
    Ok(Tokens {
        access,
        refresh: session.refresh_token,
    })
}

/// Exchanges a refresh token for a new pair. A token presented a second time means two
/// parties hold it: the whole session is revoked, which also ends the newer token.
#[tracing::instrument(skip_all)]
pub async fn refresh(state: &AppState, refresh_token: Option<&str>) -> ApiResult<Tokens> {
    let token = refresh_token.ok_or(ApiError::Unauthorized("a refresh token is required"))?;
    match repo::rotate_refresh_token(&state.db, token).await? {
        Rotation::Rotated {
            session_id,
            user_id,
            role,
            refresh_token,
        } => {
            let access = state.tokens.issue(user_id, role, session_id)?;
            Ok(Tokens {
                access,
                refresh: refresh_token,
            })
        }
        Rotation::Reused {
            session_id,
            user_id,
        } => {
            state.evictions.session_ended(session_id).await;
            tracing::warn!(%session_id, %user_id, "refresh token reused: session revoked");
            Err(ApiError::Unauthorized(
                "this refresh token was already used; the session has been revoked",
            ))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(
            "invalid or expired refresh token, log in again",
        )),
    }
}

/// Ends the caller's session: its refresh token and access tokens stop working at once.
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn logout(state: &AppState, user: AuthUser) -> ApiResult<()> {
    repo::revoke_session(&state.db, user.session_id).await?;
    state.evictions.session_ended(user.session_id).await;
    tracing::info!(session_id = %user.session_id, "logged out");
    Ok(())
}

/// Changes the caller's password after checking the current one; every other session of the
/// account is revoked, the caller's own stays.
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn change_password(
    state: &AppState,
    user: AuthUser,
    req: ChangePasswordRequest,
) -> ApiResult<()> {
    let account = repo::find_account(&state.db, user.id)
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    let email = Email::parse(&account.user.email).map_err(anyhow::Error::msg)?;
    state.login_limits.check_account(email.as_str())?;

    let current_ok = state
        .passwords
        .verify(
            SecretString::from(req.current_password.clone()),
            account.password_hash,
        )
        .await?;
    if !current_ok {
        state.login_limits.record_account_failure(email.as_str())?;
        return Err(ApiError::field(
            "current_password",
            "is not the current password",
        ));
    }
    check_password("new_password", &req.new_password, Some(&email))
        .map_err(|e| ApiError::Validation(vec![e]))?;
    if req.new_password == req.current_password {
        return Err(ApiError::field(
            "new_password",
            "must differ from the current password",
        ));
    }

    let hash = state
        .passwords
        .hash(SecretString::from(req.new_password))
        .await?;
    let mut tx = state.db.begin().await?;
    repo::update_password(&mut *tx, user.id, &hash).await?;
    let revoked = repo::revoke_sessions_except(&mut *tx, user.id, Some(user.session_id)).await?;
    tx.commit().await?;
    state.evictions.user_changed(user.id).await;
    tracing::info!(other_sessions_revoked = revoked, "password changed");
    Ok(())
}

/// Ensures the ADMIN named by `ADMIN_EMAIL` exists with `ADMIN_PASSWORD`: creates it, or
/// promotes, enables and re-keys an existing account with that email (ending its sessions). Nothing
/// else in the service can create an ADMIN. Idempotent, so concurrent replicas may run it.
/// Returns the account's id when it changed (its sessions and role are then to be forgotten
/// by the replicas' caches).
#[tracing::instrument(skip_all)]
pub async fn seed_admin(
    db: &PgPool,
    passwords: &Hashing,
    seed: &AdminSeed,
) -> anyhow::Result<Option<Uuid>> {
    let email = Email::parse(&seed.email).map_err(|m| anyhow!("ADMIN_EMAIL {m}"))?;
    check_password(
        "ADMIN_PASSWORD",
        seed.password.expose_secret(),
        Some(&email),
    )
    .map_err(|e| anyhow!("ADMIN_PASSWORD {}", e.message))?;

    if let Some(existing) = repo::find_account_by_email(db, email.as_str()).await?
        && existing.user.role == Role::Admin
        && !existing.user.disabled
        && passwords
            .verify(seed.password.clone(), existing.password_hash)
            .await?
    {
        tracing::info!(user_id = %existing.user.id, "start-up administrator already present");
        return Ok(None);
    }
    let hash = passwords.hash(seed.password.clone()).await?;
    let mut tx = db.begin().await?;
    let id = repo::upsert_admin(&mut *tx, &email, &hash)
        .await
        .context("creating the start-up administrator")?;
    repo::revoke_sessions_except(&mut *tx, id, None).await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, "start-up administrator created or updated");
    Ok(Some(id))
}
