//! The HTTP front of the order service: authenticates, validates, authorizes, reads from
//! PostgreSQL and publishes order commands to JetStream.

pub mod app;
pub mod auth;
pub mod client_address;
pub mod cors;
pub mod error;
pub mod evictions;
pub mod extract;
pub mod headers;
pub mod http_metrics;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod pagination;
pub mod products;
pub mod refusals;
pub mod release;
pub mod request_id;
pub mod retention;
pub mod routes;
pub mod state;
pub mod ttl_cache;
pub mod users;
pub mod webhooks;

pub use app::Application;
