//! The products domain: the public catalogue, its ADMIN writes, and stock adjustments with
//! their ledger.
//!
//! `routes` extracts and answers, `validate` turns requests into validated values, `service`
//! holds the rules and transactions, `repo` the SQL.

pub mod cache;
pub mod levels;
pub mod model;
pub mod quotes;
mod repo;
mod routes;
pub mod service;
pub mod validate;

pub use routes::router;
