//! Account management by ADMINs: promoting, demoting, disabling and enabling accounts, each
//! change audited. Handlers only translate HTTP.

use crate::auth::{AuthUser, repo as auth_repo};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::users::model::{AccountChange, AuditChanges, Changed, User};
use crate::users::repo;
use common::domain::Role;
use uuid::Uuid;

/// Applies `change` to account `id` on behalf of `admin`, in one transaction: the new role and
/// status, the audit entry and, for a demotion or a disabling, the end of every session of the
/// account. The last active ADMIN can be neither demoted nor disabled. Asking for what the
/// account already has changes nothing and records nothing.
#[tracing::instrument(skip_all, fields(user_id = %id, admin_id = %admin.id))]
pub async fn change_account(
    state: &AppState,
    admin: AuthUser,
    id: Uuid,
    change: AccountChange,
) -> ApiResult<User> {
    if change.role.is_none() && change.disabled.is_none() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "",
            "give `role`, `disabled` or both",
        )]));
    }
    let mut tx = state.db.begin().await?;
    let admins = repo::lock_admins_and(&mut tx, &[id, admin.id]).await?;
    // Another change may have demoted or disabled the ADMIN asking (and ended its sessions)
    // while this one waited for the locks: its request no longer holds.
    if !admins.contains(&admin.id) {
        return Err(ApiError::Unauthorized("the session has ended"));
    }
    let current = repo::lock(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let current_role = current.role;
    let role = change.role.unwrap_or(current_role);
    let disabled = change.disabled.unwrap_or(current.disabled);
    let changes = AuditChanges {
        role: (role != current_role).then_some(Changed {
            from: current_role,
            to: role,
        }),
        disabled: (disabled != current.disabled).then_some(Changed {
            from: current.disabled,
            to: disabled,
        }),
    };
    if changes.is_empty() {
        return Ok(User::try_from(current)?);
    }
    let was_active_admin = current_role == Role::Admin && !current.disabled;
    let stays_active_admin = role == Role::Admin && !disabled;
    if was_active_admin && !stays_active_admin && admins.iter().all(|a| *a == id) {
        return Err(ApiError::conflict(
            "this is the last active ADMIN: promote or enable another account first",
        ));
    }
    let updated = repo::update(&mut tx, id, role, disabled).await?;
    repo::record_audit(&mut tx, id, admin.id, &changes).await?;
    let demoted = current_role == Role::Admin && role == Role::Client;
    let ends_sessions = demoted || (disabled && !current.disabled);
    let revoked = if ends_sessions {
        auth_repo::revoke_sessions_except(&mut *tx, id, None).await?
    } else {
        0
    };
    tx.commit().await?;
    // Every replica forgets the account's cached sessions and role, and ends its streams.
    state.evictions.user_changed(id).await;
    tracing::info!(?changes, sessions_revoked = revoked, "account changed");
    Ok(User::try_from(updated)?)
}
