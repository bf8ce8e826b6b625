//! The orders domain: placing orders through JetStream, reading them back.

pub mod accepted;
mod idempotency;
mod lifecycle;
pub mod model;
mod repo;
mod routes;
mod service;
pub mod watch;

pub use routes::router;
pub use service::idempotent_order_id;
