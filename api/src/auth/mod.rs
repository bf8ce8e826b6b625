//! Authentication: access tokens and the extractors that enforce roles.

pub mod extract;
pub mod token;

pub use extract::{AdminUser, AuthUser};
