//! Configuration read from the environment, validated once at start-up.
//!
//! Every failure names the variable at fault, so a mis-configured process stops with one clear
//! line instead of a panic.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

mod limits;
pub use limits::{ForwardedHeader, StreamLimit, StreamLimits};

/// A value that must never reach a log line.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Credentials of the administrator ensured at start-up.
#[derive(Debug, Clone)]
pub struct AdminSeed {
    pub email: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub database_max_connections: u32,
    /// Server URLs, without credentials (those embedded in `NATS_URL` are moved to
    /// [`Config::nats_credentials`], so the URL can be logged).
    pub nats_url: String,
    /// User and password for NATS (`NATS_USER`/`NATS_PASSWORD`, or `user:password@` in `NATS_URL`).
    pub nats_credentials: Option<(String, Secret)>,
    pub nats_namespace: String,
    pub nats_stream_replicas: usize,
    pub http_addr: SocketAddr,
    pub worker_http_addr: SocketAddr,
    /// Absent in processes that do not issue tokens; the api requires it via [`Config::jwt_secret`].
    jwt_secret: Option<Secret>,
    /// The key tokens were signed with before the last rotation of `JWT_SECRET`: accepted for
    /// verification only, so rotating the key logs nobody out.
    jwt_previous_secret: Option<Secret>,
    pub admin: Option<AdminSeed>,
    pub cookie_secure: bool,
    pub reservation_ttl: Duration,
    /// How often the order worker looks for expired reservations.
    pub expiry_sweep_interval: Duration,
    /// How often the workers check stock conservation for the `stock_drift_products` gauge.
    pub stock_reconciliation_interval: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Failed logins allowed per account per minute before 429.
    pub login_rate_per_minute: u32,
    /// ISO 4217 code (three upper-case letters) that new products are priced in.
    pub store_currency: String,
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
    /// Password hashes (argon2, 19 MiB each) the api computes at once; past that, 503.
    pub password_hash_concurrency: usize,
    /// Registrations allowed per client address per minute before 429.
    pub register_ip_rate_per_minute: u32,
    /// Peers whose forwarding header names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The forwarding header those proxies set.
    pub trusted_proxy_header: ForwardedHeader,
    /// Live sessions one account may hold; a new login revokes the oldest past it.
    pub max_sessions_per_user: u32,
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

pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the process environment (after loading `.env` if one exists).
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal in production; a malformed one is not worth failing for
        // either, since every variable is validated below.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds a configuration from any variable source; tests pass a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let database_url = var("DATABASE_URL").ok_or_else(|| {
            ConfigError::new("DATABASE_URL", "required, e.g. postgres://user@host/db")
        })?;
        let parsed = url::Url::parse(&database_url)
            .map_err(|e| ConfigError::new("DATABASE_URL", format!("not a valid URL ({e})")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(ConfigError::new(
                "DATABASE_URL",
                format!(
                    "scheme must be postgres:// or postgresql://, not {}://",
                    parsed.scheme()
                ),
            ));
        }

        let raw_nats_url = var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into());
        let mut servers = Vec::new();
        let mut url_credentials = None;
        for server in raw_nats_url.split(',') {
            let server = server.trim();
            let with_scheme = if server.contains("://") {
                server.to_owned()
            } else {
                format!("nats://{server}")
            };
            // The message names the server only by position: it may hold a password.
            let position = servers.len() + 1;
            let mut url = url::Url::parse(&with_scheme).map_err(|e| {
                ConfigError::new(
                    "NATS_URL",
                    format!("server {position} is not a valid URL ({e})"),
                )
            })?;
            if url.host_str().is_none() {
                return Err(ConfigError::new(
                    "NATS_URL",
                    format!("server {position} has no host"),
                ));
            }
            if !url.username().is_empty() {
                let user = percent_decode(url.username());
                let password = percent_decode(url.password().unwrap_or_default());
                url_credentials.get_or_insert((user, Secret::new(password)));
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            servers.push(url.as_str().trim_end_matches('/').to_owned());
        }
        let nats_url = servers.join(",");
        let nats_credentials = match (var("NATS_USER"), var("NATS_PASSWORD")) {
            (Some(user), Some(password)) => Some((user, Secret::new(password))),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "NATS_PASSWORD",
                    "required when NATS_USER is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "NATS_USER",
                    "required when NATS_PASSWORD is set",
                ));
            }
            (None, None) => url_credentials,
        };

        let nats_namespace = var("NATS_NAMESPACE").unwrap_or_default();
        if !nats_namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::new(
                "NATS_NAMESPACE",
                "may contain only letters, digits, '_' and '-'",
            ));
        }

        let jwt_secret = parse_jwt_key(&var, "JWT_SECRET")?;
        let jwt_previous_secret = parse_jwt_key(&var, "JWT_PREVIOUS_SECRET")?;

        let admin = match (var("ADMIN_EMAIL"), var("ADMIN_PASSWORD")) {
            (Some(_), Some(password)) if limits::is_placeholder(&password) => {
                return Err(ConfigError::new(
                    "ADMIN_PASSWORD",
                    "is the placeholder of .env.example; choose the administrator's password",
                ));
            }
            (Some(email), Some(password)) => Some(AdminSeed {
                email,
                password: Secret::new(password),
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "ADMIN_PASSWORD",
                    "required when ADMIN_EMAIL is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "ADMIN_EMAIL",
                    "required when ADMIN_PASSWORD is set",
                ));
            }
            (None, None) => None,
        };

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

        let store_currency = var("STORE_CURRENCY").unwrap_or_else(|| "USD".into());
        if !(store_currency.len() == 3 && store_currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(ConfigError::new(
                "STORE_CURRENCY",
                format!(
                    "must be an ISO 4217 code of three upper-case letters, not {store_currency:?}"
                ),
            ));
        }

        Ok(Config {
            database_url: Secret::new(database_url),
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
            cookie_secure: parse_bool(&var, "COOKIE_SECURE", true)?,
            reservation_ttl: Duration::from_secs(parse(&var, "RESERVATION_TTL_SECS", 900u64)?),
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
                std::thread::available_parallelism().map_or(1, |n| n.get()) as u32,
            )? as usize,
            register_ip_rate_per_minute: parse_positive(&var, "REGISTER_IP_RATE_PER_MINUTE", 10)?,
            trusted_proxies: limits::parse_cidrs(var("TRUSTED_PROXIES"), "TRUSTED_PROXIES")?,
            trusted_proxy_header: limits::parse_forwarded_header(
                var("TRUSTED_PROXY_HEADER"),
                "TRUSTED_PROXY_HEADER",
            )?,
            max_sessions_per_user: parse_positive(&var, "MAX_SESSIONS_PER_USER", 10)?,
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
        })
    }

    /// The token-signing key; processes that issue tokens call this at start-up.
    pub fn jwt_secret(&self) -> Result<&Secret, ConfigError> {
        self.jwt_secret.as_ref().ok_or_else(|| {
            ConfigError::new(
                "JWT_SECRET",
                format!("required: a random key of at least {MIN_JWT_SECRET_BYTES} bytes"),
            )
        })
    }

    /// The key of the previous rotation, still accepted to verify tokens (`JWT_PREVIOUS_SECRET`).
    pub fn jwt_previous_secret(&self) -> Option<&Secret> {
        self.jwt_previous_secret.as_ref()
    }
}

/// An HMAC key for access tokens: at least [`MIN_JWT_SECRET_BYTES`] bytes, when set.
fn parse_jwt_key(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    match var(name) {
        Some(s) if s.len() < MIN_JWT_SECRET_BYTES => Err(ConfigError::new(
            name,
            format!(
                "must be at least {MIN_JWT_SECRET_BYTES} bytes, got {}",
                s.len()
            ),
        )),
        Some(s) if limits::is_placeholder(&s) => Err(ConfigError::new(
            name,
            "is the placeholder of .env.example; use a random key, e.g. `openssl rand -base64 48`",
        )),
        key => Ok(key.map(Secret::new)),
    }
}

fn parse<T>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?} ({e})"))),
    }
}

/// Decodes `%XX` escapes of URL user info (a password may contain `@` or `:`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_positive(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    match parse(var, name, default)? {
        0 => Err(ConfigError::new(name, "must be at least 1")),
        n => Ok(n),
    }
}

/// Most a cache TTL may be: these caches trade freshness for load, for seconds, not hours.
pub const MAX_CACHE_TTL_MS: u64 = 60_000;

/// A cache lifetime in milliseconds, 0 (off) to [`MAX_CACHE_TTL_MS`].
fn parse_ttl(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default_ms: u64,
) -> Result<Duration, ConfigError> {
    match parse(var, name, default_ms)? {
        ms if ms > MAX_CACHE_TTL_MS => Err(ConfigError::new(
            name,
            format!("must be at most {MAX_CACHE_TTL_MS} (milliseconds), got {ms}"),
        )),
        ms => Ok(Duration::from_millis(ms)),
    }
}

/// A comma-separated list of origins (`https://shop.example`, `http://localhost:5173`).
fn parse_origins(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let url = url::Url::parse(o)
                .map_err(|e| ConfigError::new(name, format!("{o:?} is not an origin ({e})")))?;
            if url.host_str().is_none() || url.path() != "/" || url.query().is_some() {
                return Err(ConfigError::new(
                    name,
                    format!("{o:?} must be scheme://host[:port] only"),
                ));
            }
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

fn parse_bool(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            name,
            format!("must be true or false, not {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://postgres@127.0.0.1/db");
    const JWT: (&str, &str) = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");

    #[test]
    fn defaults_follow_the_design_table() {
        let c = load(&[DB, JWT]).expect("valid");
        assert_eq!(c.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.worker_http_addr.to_string(), "0.0.0.0:9090");
        assert!(c.cookie_secure);
        assert_eq!(c.reservation_ttl, Duration::from_secs(900));
        assert_eq!(c.nats_namespace, "");
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.store_currency, "USD");
        assert_eq!(c.catalogue_cache_ttl, Duration::from_millis(1000));
        assert_eq!(c.session_cache_ttl, Duration::from_millis(1000));
        assert_eq!(c.stock_reconciliation_interval, Duration::from_secs(60));
        assert_eq!(c.register_ip_rate_per_minute, 10);
        assert_eq!(c.max_sessions_per_user, 10);
        assert_eq!(c.purge_interval, Duration::from_secs(600));
        assert_eq!(c.metrics_addr.to_string(), "0.0.0.0:9091");
        assert_eq!(c.nats_inbox_prefix, "_INBOX");
        assert!(c.trusted_proxies.is_empty());
        assert!(c.password_hash_concurrency >= 1);
        assert_eq!(c.nats_stream_limits, StreamLimits::default());
        assert_eq!((c.sse_streams_per_user, c.sse_streams_max), (10, 10_000));
        assert_eq!(c.sse_heartbeat, Duration::from_secs(15));
    }

    #[test]
    fn cache_ttls_may_be_zero_and_are_bounded() {
        let c = load(&[
            DB,
            JWT,
            ("CATALOGUE_CACHE_TTL_MS", "0"),
            ("SESSION_CACHE_TTL_MS", "2500"),
        ])
        .expect("valid");
        assert_eq!(c.catalogue_cache_ttl, Duration::ZERO);
        assert_eq!(c.session_cache_ttl, Duration::from_millis(2500));
        let e = load(&[DB, JWT, ("SESSION_CACHE_TTL_MS", "3600000")]).unwrap_err();
        assert_eq!(e.variable, "SESSION_CACHE_TTL_MS");
        assert!(e.to_string().contains("at most 60000"), "{e}");
    }

    #[test]
    fn the_store_currency_must_be_three_upper_case_letters() {
        let c = load(&[DB, JWT, ("STORE_CURRENCY", "EUR")]).expect("valid");
        assert_eq!(c.store_currency, "EUR");
        for bad in ["eur", "EURO", "E1R", "US"] {
            let e = load(&[DB, JWT, ("STORE_CURRENCY", bad)]).unwrap_err();
            assert_eq!(e.variable, "STORE_CURRENCY", "{bad}");
        }
    }

    #[test]
    fn a_missing_database_url_names_the_variable() {
        let e = load(&[JWT]).unwrap_err();
        assert_eq!(e.variable, "DATABASE_URL");
    }

    #[test]
    fn an_unparsable_database_url_names_the_variable() {
        let e = load(&[("DATABASE_URL", "not a url"), JWT]).unwrap_err();
        assert_eq!(e.variable, "DATABASE_URL");
        let e = load(&[("DATABASE_URL", "mysql://x/y"), JWT]).unwrap_err();
        assert_eq!(e.variable, "DATABASE_URL");
    }

    #[test]
    fn a_short_jwt_secret_is_refused() {
        let e = load(&[DB, ("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(e.variable, "JWT_SECRET");
        assert!(e.to_string().contains("at least 32 bytes"), "{e}");
    }

    #[test]
    fn a_previous_jwt_secret_is_read_and_never_printed() {
        assert!(
            load(&[DB, JWT])
                .expect("valid")
                .jwt_previous_secret()
                .is_none()
        );
        let c = load(&[
            DB,
            JWT,
            ("JWT_PREVIOUS_SECRET", "previous-previous-previous-012345"),
        ])
        .expect("valid");
        assert_eq!(
            c.jwt_previous_secret().map(Secret::expose),
            Some("previous-previous-previous-012345")
        );
        assert!(!format!("{c:?}").contains("previous-previous"));
    }

    #[test]
    fn a_short_previous_jwt_secret_is_refused() {
        let e = load(&[DB, JWT, ("JWT_PREVIOUS_SECRET", "short")]).unwrap_err();
        assert_eq!(e.variable, "JWT_PREVIOUS_SECRET");
        assert!(e.to_string().contains("at least 32 bytes"), "{e}");
    }

    #[test]
    fn a_missing_jwt_secret_fails_only_where_it_is_required() {
        let c = load(&[DB]).expect("workers need no JWT secret");
        assert_eq!(c.jwt_secret().unwrap_err().variable, "JWT_SECRET");
    }

    #[test]
    fn the_secret_never_prints() {
        let c = load(&[DB, JWT]).expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains("0123456789abcdef"));
        assert!(!shown.contains("postgres@127.0.0.1"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("NATS_URL", "nats://"),
            ("HTTP_ADDR", "nowhere"),
            ("WORKER_HTTP_ADDR", "1.2.3.4"),
            ("COOKIE_SECURE", "maybe"),
            ("RESERVATION_TTL_SECS", "-5"),
            ("LOG_FORMAT", "xml"),
            ("NATS_NAMESPACE", "a.b"),
            ("LOGIN_RATE_PER_MINUTE", "0"),
            ("LOGIN_IP_RATE_PER_MINUTE", "many"),
            ("TRUSTED_ORIGINS", "https://shop.example/path"),
            ("CATALOGUE_CACHE_TTL_MS", "-1"),
            ("SESSION_CACHE_TTL_MS", "1s"),
            ("STOCK_RECONCILIATION_INTERVAL_MS", "0"),
            ("PASSWORD_HASH_CONCURRENCY", "0"),
            ("REGISTER_IP_RATE_PER_MINUTE", "0"),
            ("TRUSTED_PROXIES", "10.0.0.0/40"),
            ("TRUSTED_PROXY_HEADER", "x-real-ip"),
            ("MAX_SESSIONS_PER_USER", "0"),
            ("METRICS_ADDR", "9091"),
            ("NATS_INBOX_PREFIX", "_INBOX.>"),
            ("NATS_STREAM_LIMITS", "EVENTS=1GiB"),
            ("SSE_STREAMS_PER_USER", "0"),
            ("SSE_STREAMS_MAX", "-1"),
            ("SSE_HEARTBEAT_SECS", "0"),
        ] {
            let e = load(&[DB, JWT, (name, value)]).unwrap_err();
            assert_eq!(e.variable, name, "{value}");
        }
    }

    #[test]
    fn the_placeholders_of_the_example_environment_are_refused() {
        let e = load(&[
            DB,
            ("JWT_SECRET", "change-me-to-at-least-32-random-bytes-please"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "JWT_SECRET");
        assert!(e.to_string().contains("placeholder"), "{e}");
        let e = load(&[
            DB,
            JWT,
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", "change-me-admin-password"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "ADMIN_PASSWORD");
    }

    #[test]
    fn admin_credentials_come_in_pairs() {
        let e = load(&[DB, JWT, ("ADMIN_EMAIL", "a@b.c")]).unwrap_err();
        assert_eq!(e.variable, "ADMIN_PASSWORD");
        let c = load(&[DB, JWT, ("ADMIN_EMAIL", "a@b.c"), ("ADMIN_PASSWORD", "pw")]).expect("ok");
        assert_eq!(c.admin.map(|a| a.email), Some("a@b.c".into()));
    }

    #[test]
    fn trusted_origins_are_normalised() {
        let c = load(&[
            DB,
            JWT,
            (
                "TRUSTED_ORIGINS",
                "https://Shop.Example, http://localhost:5173",
            ),
        ])
        .expect("ok");
        assert_eq!(
            c.trusted_origins,
            vec!["https://shop.example", "http://localhost:5173"]
        );
    }

    #[test]
    fn nats_credentials_in_the_url_are_moved_out_of_it() {
        let c = load(&[
            DB,
            JWT,
            (
                "NATS_URL",
                "nats://api:s%40cret@a:4222, nats://api:s%40cret@b:4222",
            ),
        ])
        .expect("ok");
        assert_eq!(c.nats_url, "nats://a:4222,nats://b:4222");
        let (user, password) = c.nats_credentials.clone().expect("credentials");
        assert_eq!((user.as_str(), password.expose()), ("api", "s@cret"));
        assert!(!format!("{c:?}").contains("s@cret"));
        let c = load(&[
            DB,
            JWT,
            ("NATS_URL", "nats://x:y@a:4222"),
            ("NATS_USER", "orders-worker"),
            ("NATS_PASSWORD", "pw"),
        ])
        .expect("ok");
        assert_eq!(
            c.nats_credentials.map(|(u, _)| u),
            Some("orders-worker".into())
        );
        let e = load(&[DB, JWT, ("NATS_USER", "u")]).unwrap_err();
        assert_eq!(e.variable, "NATS_PASSWORD");
    }

    #[test]
    fn several_nats_servers_are_accepted() {
        let c = load(&[DB, JWT, ("NATS_URL", "nats://a:4222,nats://b:4222, c:4222")]).expect("ok");
        assert!(c.nats_url.contains("b:4222"));
    }
}
