//! The configuration read from variable maps: defaults, every variable's checks.

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
    assert_eq!(c.max_unpaid_orders_per_user, Some(20));
    assert_eq!(c.purge_interval, Duration::from_secs(600));
    assert_eq!(c.metrics_addr.to_string(), "0.0.0.0:9091");
    assert_eq!(c.nats_inbox_prefix, "_INBOX");
    assert!(c.trusted_proxies.is_empty());
    assert!(c.password_hash_concurrency >= 1);
    assert_eq!(c.nats_stream_limits, StreamLimits::default());
    assert_eq!((c.sse_streams_per_user, c.sse_streams_max), (10, 10_000));
    assert_eq!(c.sse_heartbeat, Duration::from_secs(15));
    assert_eq!(c.order_events_idle, Duration::from_secs(30));
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
        c.jwt_previous_secret().map(SecretString::expose_secret),
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
        ("MAX_UNPAID_ORDERS_PER_USER", "-1"),
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
fn the_placeholder_nats_passwords_of_the_example_manifests_are_refused() {
    for password in ["change-me-api", "change-me-orders", "CHANGE-ME"] {
        let e = load(&[DB, JWT, ("NATS_USER", "api"), ("NATS_PASSWORD", password)]).unwrap_err();
        assert_eq!(e.variable, "NATS_PASSWORD", "{password}");
        assert!(!e.to_string().contains(password), "{e}");
    }
    let e = load(&[DB, JWT, ("NATS_URL", "nats://api:change-me-api@nats:4222")]).unwrap_err();
    assert_eq!(e.variable, "NATS_URL");
    assert!(!e.to_string().contains("change-me-api"), "{e}");
    let real = load(&[
        DB,
        JWT,
        ("NATS_USER", "api"),
        ("NATS_PASSWORD", "s3cr3t-xyz"),
    ]);
    assert!(real.is_ok());
}

#[test]
fn a_schema_owner_url_turns_migrating_at_start_off_unless_asked() {
    let c = load(&[DB, JWT]).expect("valid");
    assert!(c.database_migrate_url.is_none());
    assert!(c.migrate_on_start, "one role: the processes migrate");
    let owner = ("DATABASE_MIGRATE_URL", "postgres://owner@db/orders");
    let c = load(&[DB, JWT, owner]).expect("valid");
    assert!(c.database_migrate_url.is_some());
    assert!(
        !c.migrate_on_start,
        "the release step migrates as the owner"
    );
    let c = load(&[DB, JWT, ("MIGRATE_ON_START", "false")]).expect("valid");
    assert!(!c.migrate_on_start);
    let e = load(&[DB, JWT, ("DATABASE_MIGRATE_URL", "mysql://owner:pw@db/x")]).unwrap_err();
    assert_eq!(e.variable, "DATABASE_MIGRATE_URL");
    assert!(!e.to_string().contains("pw"), "{e}");
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
    assert_eq!((user.as_str(), password.expose_secret()), ("api", "s@cret"));
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

#[test]
fn the_bound_on_unpaid_orders_may_be_set_or_turned_off_with_zero() {
    let c = load(&[DB, JWT, ("MAX_UNPAID_ORDERS_PER_USER", "3")]).expect("valid");
    assert_eq!(c.max_unpaid_orders_per_user, Some(3));
    let c = load(&[DB, JWT, ("MAX_UNPAID_ORDERS_PER_USER", "0")]).expect("valid");
    assert_eq!(c.max_unpaid_orders_per_user, None);
}
