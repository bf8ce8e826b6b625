//! The user resource as the api shows it: never a password hash. Also the shapes of account
//! management: a change of role or status, and the audit trail of such changes.

use chrono::{DateTime, Utc};
use common::domain::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    /// Trimmed and lower-cased.
    #[schema(example = "ann@example.com")]
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// A disabled account cannot log in; an ADMIN may enable it again.
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A `users` row without its password hash.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// `disabled_at IS NOT NULL`; statements that do not select it read a fresh account.
    #[sqlx(default)]
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = anyhow::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: row.id,
            email: row.email,
            name: row.name,
            role: row.role,
            disabled: row.disabled,
            created_at: row.created_at,
        })
    }
}

/// `PATCH /users/{id}` body: any of the account's role and status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "CLIENT", "disabled": true}))]
pub struct AccountChange {
    /// `ADMIN` promotes, `CLIENT` demotes (ending the account's sessions).
    pub role: Option<Role>,
    /// `true` disables the account (ending its sessions), `false` enables it.
    pub disabled: Option<bool>,
}

/// One attribute's value before and after a change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Changed<T> {
    pub from: T,
    pub to: T,
}

/// What one change of an account changed; attributes left alone are absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AuditChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Changed<Role>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Changed<bool>>,
}

impl AuditChanges {
    pub fn is_empty(&self) -> bool {
        self.role.is_none() && self.disabled.is_none()
    }
}

/// One change of an account: who made it, when, and what it changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub user_id: Uuid,
    /// The ADMIN who made the change (`null` if that account was deleted since).
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub changes: AuditChanges,
}
