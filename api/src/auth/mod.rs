//! Authentication: accounts' credentials, sessions with rotating refresh tokens, access tokens,
//! the extractors that enforce roles, login rate limits and the CSRF guard.

pub mod caller;
pub mod cookies;
pub mod csrf;
pub mod identity;
pub mod model;
pub mod password;
pub mod rate_limit;
pub mod repo;
pub mod routes;
pub mod service;
pub mod session;
pub mod session_cache;
pub mod token;
pub mod validation;

pub use caller::{AdminUser, AuthUser, ClientUser};
pub use routes::router;
