//! The users domain: one's own profile; for ADMINs, the accounts, their management and its audit trail.

pub mod model;
pub mod repo;
pub mod routes;
pub mod service;

pub use routes::router;
