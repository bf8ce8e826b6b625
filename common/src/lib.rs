//! Shared library of the order service: configuration, domain types, the message envelope and
//! subjects, stream provisioning, dead-letter re-drives, the database pool and migrations,
//! telemetry, start-up and shutdown.

pub mod asyncapi;
pub mod config;
pub mod conservation;
pub mod correlation;
pub mod db;
pub mod domain;
pub mod error;
pub mod health;
pub mod messages;
pub mod messaging;
pub mod metrics;
pub mod money;
pub mod nats;
pub mod notices;
pub mod otel;
pub mod redrive;
pub mod refunds;
#[cfg(feature = "serve")]
pub mod serve;
pub mod shipping;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;
pub mod webhooks;

pub use config::{Config, ConfigError};
pub use error::{Error, Result};
