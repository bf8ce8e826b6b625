//! Who an authenticated caller is, as the rest of the api reads it (the extractors that
//! establish it are in `caller.rs`).

use chrono::{DateTime, Utc};
use common::domain::Role;
use uuid::Uuid;

/// An authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
    /// When this authorization ends: the access token's expiry, or the session's if sooner.
    /// What outlives a request (an order event stream) ends then.
    pub authorized_until: DateTime<Utc>,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
