//! Configuration read from the environment, validated once at start-up.
//!
//! Every failure names the variable at fault, so a mis-configured process stops with one clear
//! line instead of a panic.

use crate::money::Currency;
use std::net::SocketAddr;
use std::time::Duration;

mod credentials;
mod database;
mod limits;
mod memory;
mod nats;
mod parse;
#[cfg(test)]
mod tests;
mod webhooks;

pub use credentials::MIN_JWT_SECRET_BYTES;
pub use limits::{ForwardedHeader, StreamLimit, StreamLimits};
pub use memory::HASH_MEMORY_KIB;
pub use parse::MAX_CACHE_TTL_MS;
use parse::{parse, parse_bool, parse_origins, parse_positive, parse_ttl};
pub use webhooks::{MAX_WEBHOOK_TIMEOUT_SECS, WEBHOOK_KEY_BYTES, WebhookConfig};

/// Values that must never reach a log line (passwords, keys, URLs with credentials): their
/// `Debug` output is redacted, and reading one takes an explicit `expose_secret()`.
pub use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Credentials of the administrator ensured at start-up.
#[derive(Debug, Clone)]
pub struct AdminSeed {
    pub email: String,
    pub password: SecretString,
}

/// The store's currency when `STORE_CURRENCY` is not set.
pub const DEFAULT_STORE_CURRENCY: &str = "USD";

#[derive(Debug, Clone)]
pub struct Config {
    /// The runtime role: reads and writes data, and (see [`Config::migrate_on_start`]) may
    /// own the schema or not.
    pub database_url: SecretString,
    /// The schema owner (`DATABASE_MIGRATE_URL`), used only by `api migrate`.
    pub database_migrate_url: Option<SecretString>,
    /// Whether the api and workers apply pending migrations at start (`MIGRATE_ON_START`);
    /// otherwise they check the schema is current and refuse to start if it is not.
    pub migrate_on_start: bool,
    pub database_max_connections: u32,
    /// Server URLs, without credentials (those embedded in `NATS_URL` are moved to
    /// [`Config::nats_credentials`], so the URL can be logged).
    pub nats_url: String,
    /// User and password for NATS (`NATS_USER`/`NATS_PASSWORD`, or `user:password@` in `NATS_URL`).
    pub nats_credentials: Option<(String, SecretString)>,
    pub nats_namespace: String,
    pub nats_stream_replicas: usize,
    pub http_addr: SocketAddr,
    pub worker_http_addr: SocketAddr,
    /// Absent in processes that do not issue tokens; the api requires it via [`Config::jwt_secret`].
    jwt_secret: Option<SecretString>,
    /// The key tokens were signed with before the last rotation of `JWT_SECRET`: accepted for
    /// verification only, so rotating the key logs nobody out.
    jwt_previous_secret: Option<SecretString>,
    pub admin: Option<AdminSeed>,
    pub cookie_secure: bool,
    pub reservation_ttl: Duration,
    /// How long after its delivery a customer may ask to return an order's goods
    /// (`RETURN_WINDOW_DAYS`, default 30; staff may at any time).
    pub return_window: chrono::Duration,
    /// How often the order worker looks for expired reservations.
    pub expiry_sweep_interval: Duration,
    /// How often the workers check stock conservation for the `stock_drift_products` gauge.
    pub stock_reconciliation_interval: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Failed logins allowed per account per minute before 429.
    pub login_rate_per_minute: u32,
    /// ISO 4217 code (three upper-case letters) that new products are priced in.
    pub store_currency: Currency,
    /// Failed logins allowed per client address per minute before 429.
    pub login_ip_rate_per_minute: u32,
    /// Origins, besides the api's own, allowed to send cookie-authenticated unsafe requests
    /// (`scheme://host[:port]`, lower case).
    pub trusted_origins: Vec<String>,
    /// How long the api keeps the JSON of a public catalogue page or product (zero: not cached).
    pub catalogue_cache_ttl: Duration,
    /// How long the api trusts that a session it saw live still is (zero: checked on every
    /// request).
    pub session_cache_ttl: Duration,
    /// Password hashes (argon2, 19 MiB each) the api computes at once; past that, 503. By
    /// default the cores, capped so they fit in half the process's memory limit.
    pub password_hash_concurrency: usize,
    /// Registrations allowed per client address per minute before 429.
    pub register_ip_rate_per_minute: u32,
    /// Peers whose forwarding header names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The forwarding header those proxies set.
    pub trusted_proxy_header: ForwardedHeader,
    /// Live sessions one account may hold; a new login revokes the oldest past it.
    pub max_sessions_per_user: u32,
    /// Unpaid (`CONFIRMED`) orders one account may hold; past it, placements are refused (429).
    /// `None` (`MAX_UNPAID_ORDERS_PER_USER=0`): unbounded, for load tests.
    pub max_unpaid_orders_per_user: Option<u32>,
    /// How often the api purges idempotency keys, used refresh tokens and ended sessions.
    pub purge_interval: Duration,
    /// Where the api serves `/metrics`, apart from the public `HTTP_ADDR`.
    pub metrics_addr: SocketAddr,
    /// Prefix of this process's NATS reply subjects (`NATS_INBOX_PREFIX`).
    pub nats_inbox_prefix: String,
    /// Size and count limits of the streams (`NATS_STREAM_LIMITS`).
    pub nats_stream_limits: StreamLimits,
    /// Order event streams (SSE) one account may hold open on one api process.
    pub sse_streams_per_user: usize,
    /// Order event streams (SSE) one api process serves at once.
    pub sse_streams_max: usize,
    /// How often an idle order event stream sends a comment, so proxies keep it open.
    pub sse_heartbeat: Duration,
    /// How long an api replica keeps hearing order changes once nothing on it needs them (no
    /// stream, no waiting request, no accepted order waiting to be recorded).
    pub order_events_idle: Duration,
    /// How long the api waits for a request's complete headers (a new connection's first, or
    /// the next on an idle one) before closing the connection.
    pub http_header_read_timeout: Duration,
    /// Outbound webhooks (`WEBHOOK_*`).
    pub webhooks: WebhookConfig,
}

/// A variable source whose values are trimmed, a blank value counting as unset.
fn trimmed(get: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// `COOKIE_SECURE`: the `Secure` flag and `__Host-` / `__Secure-` names of the auth cookies.
fn cookie_secure(var: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    parse_bool(var, "COOKIE_SECURE", true)
}

/// A configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable,
            problem: problem.into(),
        }
    }
}

impl Config {
    /// Reads the process environment (after loading `.env` if one exists).
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal in production; a malformed one is not worth failing for
        // either, since every variable is validated below.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `COOKIE_SECURE` alone, read from the environment as [`Config::from_env`] reads it, for
    /// what needs no other variable (`api openapi`: the cookies' names depend on it).
    pub fn cookie_secure_from_env() -> Result<bool, ConfigError> {
        let _ = dotenvy::dotenv();
        cookie_secure(&trimmed(|name| std::env::var(name).ok()))
    }

    /// Builds a configuration from any variable source; tests pass a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = trimmed(get);

        let (database_url, database_migrate_url, migrate_on_start) =
            database::urls_and_migration(&var)?;

        let (nats_url, nats_credentials, nats_namespace) = nats::servers_and_credentials(&var)?;

        let jwt_secret = credentials::parse_jwt_key(&var, "JWT_SECRET")?;
        let jwt_previous_secret = credentials::parse_jwt_key(&var, "JWT_PREVIOUS_SECRET")?;

        let admin = credentials::admin_seed(&var)?;

        let log_format = match var("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("must be pretty or json, not {other:?}"),
                ));
            }
        };

        let store_currency =
            Currency::new(&var("STORE_CURRENCY").unwrap_or_else(|| DEFAULT_STORE_CURRENCY.into()))
                .map_err(|e| ConfigError::new("STORE_CURRENCY", e))?;

        Ok(Config {
            database_url,
            database_migrate_url,
            migrate_on_start,
            database_max_connections: parse(&var, "DATABASE_MAX_CONNECTIONS", 10u32)?,
            nats_url,
            nats_credentials,
            nats_namespace,
            nats_stream_replicas: parse(&var, "NATS_STREAM_REPLICAS", 1usize)?,
            http_addr: parse(&var, "HTTP_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            worker_http_addr: parse(
                &var,
                "WORKER_HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 9090)),
            )?,
            jwt_secret,
            jwt_previous_secret,
            admin,
            cookie_secure: cookie_secure(&var)?,
            reservation_ttl: Duration::from_secs(parse(&var, "RESERVATION_TTL_SECS", 900u64)?),
            return_window: chrono::Duration::days(i64::from(parse(
                &var,
                "RETURN_WINDOW_DAYS",
                30u16,
            )?)),
            expiry_sweep_interval: Duration::from_millis(
                parse(&var, "EXPIRY_SWEEP_INTERVAL_MS", 5000u64)?.max(10),
            ),
            stock_reconciliation_interval: Duration::from_millis(u64::from(parse_positive(
                &var,
                "STOCK_RECONCILIATION_INTERVAL_MS",
                60_000,
            )?)),
            log_format,
            log_filter: var("RUST_LOG").unwrap_or_else(|| "info".into()),
            store_currency,
            login_rate_per_minute: parse_positive(&var, "LOGIN_RATE_PER_MINUTE", 10)?,
            login_ip_rate_per_minute: parse_positive(&var, "LOGIN_IP_RATE_PER_MINUTE", 30)?,
            trusted_origins: parse_origins(&var, "TRUSTED_ORIGINS")?,
            catalogue_cache_ttl: parse_ttl(&var, "CATALOGUE_CACHE_TTL_MS", 1000)?,
            session_cache_ttl: parse_ttl(&var, "SESSION_CACHE_TTL_MS", 1000)?,
            password_hash_concurrency: parse_positive(
                &var,
                "PASSWORD_HASH_CONCURRENCY",
                u32::try_from(memory::hash_concurrency(
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                    memory::memory_limit(),
                ))
                .unwrap_or(u32::MAX),
            )? as usize,
            register_ip_rate_per_minute: parse_positive(&var, "REGISTER_IP_RATE_PER_MINUTE", 10)?,
            trusted_proxies: limits::parse_cidrs(var("TRUSTED_PROXIES"), "TRUSTED_PROXIES")?,
            trusted_proxy_header: limits::parse_forwarded_header(
                var("TRUSTED_PROXY_HEADER"),
                "TRUSTED_PROXY_HEADER",
            )?,
            max_sessions_per_user: parse_positive(&var, "MAX_SESSIONS_PER_USER", 10)?,
            max_unpaid_orders_per_user: Some(parse(&var, "MAX_UNPAID_ORDERS_PER_USER", 20u32)?)
                .filter(|&max| max > 0),
            purge_interval: Duration::from_millis(
                parse_positive(&var, "PURGE_INTERVAL_MS", 600_000)?.into(),
            ),
            metrics_addr: parse(&var, "METRICS_ADDR", SocketAddr::from(([0, 0, 0, 0], 9091)))?,
            nats_inbox_prefix: limits::parse_inbox_prefix(
                var("NATS_INBOX_PREFIX"),
                "NATS_INBOX_PREFIX",
            )?,
            nats_stream_limits: limits::parse_stream_limits(
                var("NATS_STREAM_LIMITS"),
                "NATS_STREAM_LIMITS",
            )?,
            sse_streams_per_user: parse_positive(&var, "SSE_STREAMS_PER_USER", 10)? as usize,
            sse_streams_max: parse_positive(&var, "SSE_STREAMS_MAX", 10_000)? as usize,
            sse_heartbeat: Duration::from_secs(
                parse_positive(&var, "SSE_HEARTBEAT_SECS", 15)?.into(),
            ),
            http_header_read_timeout: Duration::from_secs(
                parse_positive(&var, "HTTP_HEADER_READ_TIMEOUT_SECS", 10)?.into(),
            ),
            order_events_idle: Duration::from_secs(
                parse_positive(&var, "ORDER_EVENTS_IDLE_SECS", 30)?.into(),
            ),
            webhooks: WebhookConfig::from_vars(&var)?,
        })
    }

    /// The token-signing key; processes that issue tokens call this at start-up.
    pub fn jwt_secret(&self) -> Result<&SecretString, ConfigError> {
        self.jwt_secret.as_ref().ok_or_else(|| {
            ConfigError::new(
                "JWT_SECRET",
                format!("required: a random key of at least {MIN_JWT_SECRET_BYTES} bytes"),
            )
        })
    }

    /// The key of the previous rotation, still accepted to verify tokens (`JWT_PREVIOUS_SECRET`).
    pub fn jwt_previous_secret(&self) -> Option<&SecretString> {
        self.jwt_previous_secret.as_ref()
    }
}
