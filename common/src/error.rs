//! The shared error type for start-up and infrastructure failures.

/// Errors raised while wiring infrastructure (database, broker, telemetry).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The schema is not the one this build expects.
    #[error("database schema: {0}")]
    Schema(String),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("message encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("telemetry: {0}")]
    Telemetry(String),
}

impl Error {
    pub fn nats(e: impl std::fmt::Display) -> Self {
        Error::Nats(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
