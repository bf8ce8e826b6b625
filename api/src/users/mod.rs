//! The users domain: one's own profile, and the list of accounts for ADMINs.

pub mod model;
pub mod repo;
pub mod routes;

pub use routes::router;
