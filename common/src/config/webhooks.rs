//! The outbound webhooks' settings (`WEBHOOK_*`): the key their signing secrets are encrypted
//! with, the retry schedule, the timeout, when a failing endpoint is disabled, how long a
//! rotated secret keeps signing, how many deliveries one endpoint gets at once, and whether
//! private networks may be called (development and tests only).

use super::parse::{parse, parse_bool, parse_positive};
use super::{ConfigError, SecretString};
use base64::Engine;
use std::time::Duration;

/// Bytes of the key (`WEBHOOK_ENCRYPTION_KEY`, base64): an XChaCha20-Poly1305 key.
pub const WEBHOOK_KEY_BYTES: usize = 32;
/// Longest answer wait accepted for `WEBHOOK_TIMEOUT_SECS`.
pub const MAX_WEBHOOK_TIMEOUT_SECS: u32 = 30;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The key signing secrets are encrypted with at rest; without it the webhook routes answer
    /// 503 and the webhooks worker does not start.
    encryption_key: Option<SecretString>,
    /// The wait before each attempt of a delivery: the first is usually zero (at once).
    pub retry_schedule: Vec<Duration>,
    /// How long an endpoint has to answer an attempt.
    pub timeout: Duration,
    /// An endpoint failing every attempt for this long is disabled.
    pub disable_after: Duration,
    /// How long a rotated secret keeps signing beside the new one.
    pub secret_overlap: Duration,
    /// Attempts sent to one endpoint at once.
    pub endpoint_concurrency: usize,
    /// Allow http and private, loopback and link-local addresses (development and tests only).
    pub allow_private_networks: bool,
}

impl WebhookConfig {
    /// The default schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    pub const DEFAULT_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

    /// The key that encrypts signing secrets (`WEBHOOK_ENCRYPTION_KEY`), when set.
    pub fn encryption_key(&self) -> Option<&SecretString> {
        self.encryption_key.as_ref()
    }

    pub(super) fn from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let timeout = parse_positive(var, "WEBHOOK_TIMEOUT_SECS", 10)?;
        if timeout > MAX_WEBHOOK_TIMEOUT_SECS {
            return Err(ConfigError::new(
                "WEBHOOK_TIMEOUT_SECS",
                format!("must be at most {MAX_WEBHOOK_TIMEOUT_SECS}, got {timeout}"),
            ));
        }
        Ok(WebhookConfig {
            encryption_key: parse_key(var("WEBHOOK_ENCRYPTION_KEY"))?,
            retry_schedule: parse_schedule(
                &var("WEBHOOK_RETRY_SCHEDULE").unwrap_or_else(|| Self::DEFAULT_SCHEDULE.into()),
            )?,
            timeout: Duration::from_secs(timeout.into()),
            disable_after: Duration::from_secs(parse(
                var,
                "WEBHOOK_DISABLE_AFTER_SECS",
                5 * 24 * 3600u64,
            )?),
            secret_overlap: Duration::from_secs(parse(
                var,
                "WEBHOOK_SECRET_OVERLAP_SECS",
                24 * 3600u64,
            )?),
            endpoint_concurrency: parse_positive(var, "WEBHOOK_ENDPOINT_CONCURRENCY", 8)? as usize,
            allow_private_networks: parse_bool(var, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", false)?,
        })
    }
}

fn parse_key(raw: Option<String>) -> Result<Option<SecretString>, ConfigError> {
    const NAME: &str = "WEBHOOK_ENCRYPTION_KEY";
    let Some(raw) = raw else {
        return Ok(None);
    };
    // The message never repeats the value: it is a key.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|_| {
            ConfigError::new(NAME, "not base64; make one with `openssl rand -base64 32`")
        })?;
    if bytes.len() != WEBHOOK_KEY_BYTES {
        return Err(ConfigError::new(
            NAME,
            format!(
                "must be {WEBHOOK_KEY_BYTES} bytes (base64), got {}; make one with `openssl rand -base64 32`",
                bytes.len()
            ),
        ));
    }
    Ok(Some(SecretString::from(raw)))
}

/// `WEBHOOK_RETRY_SCHEDULE`: comma-separated waits, each a number with `ms`, `s`, `m`, `h` or
/// `d` (`0` alone is allowed), 1 to 20 of them, none over a day.
fn parse_schedule(raw: &str) -> Result<Vec<Duration>, ConfigError> {
    const NAME: &str = "WEBHOOK_RETRY_SCHEDULE";
    let schedule = raw
        .split(',')
        .map(str::trim)
        .map(|entry| {
            parse_wait(entry).ok_or_else(|| {
                ConfigError::new(
                    NAME,
                    format!("{entry:?} is not a wait such as 0, 500ms, 5s, 5m, 2h or 1d"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if schedule.len() > 20 {
        return Err(ConfigError::new(NAME, "at most 20 attempts"));
    }
    if let Some(long) = schedule.iter().find(|d| **d > Duration::from_secs(86_400)) {
        return Err(ConfigError::new(
            NAME,
            format!("each wait is at most a day, got {long:?}"),
        ));
    }
    Ok(schedule)
}

fn parse_wait(entry: &str) -> Option<Duration> {
    if entry == "0" {
        return Some(Duration::ZERO);
    }
    let split = entry.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = entry.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_defaults_are_the_documented_schedule_and_limits() {
        let c = WebhookConfig::from_vars(&vars(&[])).expect("valid");
        let s = |n| Duration::from_secs(n);
        assert_eq!(
            c.retry_schedule,
            vec![
                s(0),
                s(5),
                s(300),
                s(1800),
                s(7200),
                s(18_000),
                s(36_000),
                s(36_000)
            ]
        );
        assert_eq!(c.timeout, s(10));
        assert_eq!(c.disable_after, s(5 * 24 * 3600));
        assert_eq!(c.secret_overlap, s(24 * 3600));
        assert_eq!(c.endpoint_concurrency, 8);
        assert!(!c.allow_private_networks);
        assert!(c.encryption_key().is_none());
    }

    #[test]
    fn a_schedule_entry_that_is_not_a_wait_is_named() {
        let e = WebhookConfig::from_vars(&vars(&[("WEBHOOK_RETRY_SCHEDULE", "0,5x")]))
            .expect_err("refused");
        assert_eq!(e.variable, "WEBHOOK_RETRY_SCHEDULE");
        assert!(e.problem.contains("\"5x\""), "{e}");
        let e = WebhookConfig::from_vars(&vars(&[("WEBHOOK_RETRY_SCHEDULE", "0,2d")]))
            .expect_err("refused");
        assert!(e.problem.contains("at most a day"), "{e}");
        let c = WebhookConfig::from_vars(&vars(&[("WEBHOOK_RETRY_SCHEDULE", "0, 200ms ,1s")]))
            .expect("valid");
        assert_eq!(
            c.retry_schedule,
            vec![
                Duration::ZERO,
                Duration::from_millis(200),
                Duration::from_secs(1)
            ]
        );
    }

    #[test]
    fn the_encryption_key_must_be_32_bytes_of_base64_and_is_never_echoed() {
        let e = WebhookConfig::from_vars(&vars(&[("WEBHOOK_ENCRYPTION_KEY", "c2hvcnQ=")]))
            .expect_err("refused");
        assert_eq!(e.variable, "WEBHOOK_ENCRYPTION_KEY");
        assert!(!e.to_string().contains("c2hvcnQ="), "{e}");
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let c =
            WebhookConfig::from_vars(&vars(&[("WEBHOOK_ENCRYPTION_KEY", &key)])).expect("valid");
        assert!(c.encryption_key().is_some());
        assert!(!format!("{c:?}").contains(&key), "the key is redacted");
    }

    #[test]
    fn the_timeout_is_bounded() {
        let e = WebhookConfig::from_vars(&vars(&[("WEBHOOK_TIMEOUT_SECS", "31")]))
            .expect_err("refused");
        assert_eq!(e.variable, "WEBHOOK_TIMEOUT_SECS");
    }
}
