//! The user resource as the api shows it: never a password hash.

use chrono::{DateTime, Utc};
use common::domain::Role;
use serde::Serialize;
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
    pub created_at: DateTime<Utc>,
}

/// A `users` row without its password hash.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = anyhow::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: row.id,
            email: row.email,
            name: row.name,
            role: row.role.parse().map_err(anyhow::Error::msg)?,
            created_at: row.created_at,
        })
    }
}
