//! Domain types shared by the api and the workers, parsed at the edge so the inside never
//! re-validates strings.

use serde::{Deserialize, Serialize};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Client,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "CLIENT",
            Role::Admin => "ADMIN",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CLIENT" => Ok(Role::Client),
            "ADMIN" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}
