//! Parsers of the configuration that bounds what clients and the bus may use: trusted proxies,
//! stream limits, NATS inbox prefixes and byte sizes.

use super::ConfigError;
use ipnet::IpNet;
use std::collections::BTreeMap;

/// Which forwarding header a trusted proxy sets: only that one is read, so a client cannot
/// smuggle an address in the other one, which the proxy passes on untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// Size and count limits of one stream. When a stream is full, JetStream refuses new
/// publishes to a work queue (the publisher learns the command was not stored) and drops the
/// oldest messages of an event or dead-letter stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimit {
    pub max_bytes: i64,
    pub max_msgs: i64,
}

/// Limits of every stream, by base name (`ORDERS_CMD`, `EVENTS`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits(BTreeMap<String, StreamLimit>);

const MIB: i64 = 1024 * 1024;

impl Default for StreamLimits {
    /// Commands are consumed within seconds, so their streams hold a backlog, not history;
    /// events keep seven days and dead letters thirty.
    fn default() -> Self {
        let limit = |mib: i64, max_msgs: i64| StreamLimit {
            max_bytes: mib * MIB,
            max_msgs,
        };
        StreamLimits(BTreeMap::from([
            ("ORDERS_CMD".to_owned(), limit(256, 1_000_000)),
            ("INVENTORY_CMD".to_owned(), limit(256, 1_000_000)),
            ("PAYMENTS_CMD".to_owned(), limit(64, 100_000)),
            ("EVENTS".to_owned(), limit(1024, 5_000_000)),
            ("DEAD_LETTERS".to_owned(), limit(256, 100_000)),
            // Each pending attempt of a webhook delivery: a ticket of some 200 bytes.
            ("WEBHOOKS".to_owned(), limit(256, 1_000_000)),
        ]))
    }
}

impl StreamLimits {
    /// The limit of stream `base` (its name without the namespace).
    pub fn of(&self, base: &str) -> Option<StreamLimit> {
        self.0.get(base).copied()
    }
}

/// `NATS_STREAM_LIMITS`: `NAME=SIZE/COUNT` entries, comma separated, over the defaults, e.g.
/// `EVENTS=4GiB/20000000,DEAD_LETTERS=512MiB/200000`.
pub(super) fn parse_stream_limits(
    raw: Option<String>,
    name: &'static str,
) -> Result<StreamLimits, ConfigError> {
    let mut limits = StreamLimits::default();
    let Some(raw) = raw else {
        return Ok(limits);
    };
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| ConfigError::new(name, format!("{entry:?}: {why}"));
        let (stream, limit) = entry
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=SIZE/COUNT"))?;
        let stream = stream.trim();
        if !limits.0.contains_key(stream) {
            let known: Vec<&str> = limits.0.keys().map(String::as_str).collect();
            return Err(bad(&format!("unknown stream, one of {}", known.join(", "))));
        }
        let (size, count) = limit
            .split_once('/')
            .ok_or_else(|| bad("expected NAME=SIZE/COUNT"))?;
        let max_bytes = parse_size(size.trim()).map_err(|e| bad(&e))?;
        let max_msgs: i64 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("COUNT must be a positive integer"))?;
        limits.0.insert(
            stream.to_owned(),
            StreamLimit {
                max_bytes,
                max_msgs,
            },
        );
    }
    Ok(limits)
}

/// A positive byte size: a number with an optional `KiB`, `MiB` or `GiB` suffix.
fn parse_size(raw: &str) -> Result<i64, String> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let factor: i64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => MIB,
        "GiB" => 1024 * MIB,
        other => return Err(format!("unknown size unit {other:?} (B, KiB, MiB or GiB)")),
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n > 0)
        .ok_or_else(|| "SIZE must be a positive number of bytes".to_owned())
}

/// `TRUSTED_PROXIES`: comma-separated CIDRs (`10.0.0.0/8`) or single addresses.
pub(super) fn parse_cidrs(
    raw: Option<String>,
    name: &'static str,
) -> Result<Vec<IpNet>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| ConfigError::new(name, format!("{c:?} is not a CIDR or an address")))
        })
        .collect()
}

pub(super) fn parse_forwarded_header(
    raw: Option<String>,
    name: &'static str,
) -> Result<ForwardedHeader, ConfigError> {
    match raw.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("x-forwarded-for") => Ok(ForwardedHeader::XForwardedFor),
        Some("forwarded") => Ok(ForwardedHeader::Forwarded),
        Some(other) => Err(ConfigError::new(
            name,
            format!("must be x-forwarded-for or forwarded, not {other:?}"),
        )),
    }
}

/// `NATS_INBOX_PREFIX`: subject tokens of letters, digits, `_` and `-`, dot separated.
pub(super) fn parse_inbox_prefix(
    raw: Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    let prefix = raw.unwrap_or_else(|| "_INBOX".to_owned());
    let valid = prefix.split('.').all(|token| {
        !token.is_empty()
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !valid {
        return Err(ConfigError::new(
            name,
            format!("{prefix:?} must be dot-separated tokens of letters, digits, '_' and '-'"),
        ));
    }
    Ok(prefix)
}

/// Whether a secret is still the placeholder of `.env.example` or the example manifests.
pub(super) fn is_placeholder(secret: &str) -> bool {
    secret.to_ascii_lowercase().contains("change-me")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_limits_override_the_defaults_by_name() {
        let limits = parse_stream_limits(
            Some("EVENTS=4GiB/20000000, DEAD_LETTERS=512MiB/7".into()),
            "X",
        )
        .expect("valid");
        assert_eq!(
            limits.of("EVENTS"),
            Some(StreamLimit {
                max_bytes: 4 * 1024 * MIB,
                max_msgs: 20_000_000
            })
        );
        assert_eq!(limits.of("DEAD_LETTERS").map(|l| l.max_msgs), Some(7));
        assert_eq!(
            limits.of("ORDERS_CMD"),
            StreamLimits::default().of("ORDERS_CMD")
        );
        for bad in [
            "EVENTS=4GiB",
            "NOPE=1MiB/1",
            "EVENTS=1TiB/1",
            "EVENTS=0/1",
            "EVENTS=1MiB/0",
        ] {
            assert!(parse_stream_limits(Some(bad.into()), "X").is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_networks_or_single_addresses() {
        let nets =
            parse_cidrs(Some("10.0.0.0/8, 192.168.1.7, fd00::/8".into()), "X").expect("valid");
        assert_eq!(nets.len(), 3);
        assert!(nets[1].contains(&"192.168.1.7".parse::<std::net::IpAddr>().expect("ip")));
        assert!(parse_cidrs(Some("10.0.0.0/33".into()), "X").is_err());
        assert!(parse_cidrs(Some("proxy.local".into()), "X").is_err());
    }

    #[test]
    fn inbox_prefixes_are_subject_tokens() {
        assert_eq!(parse_inbox_prefix(None, "X").expect("default"), "_INBOX");
        assert!(parse_inbox_prefix(Some("_INBOX_orders-worker".into()), "X").is_ok());
        for bad in ["_INBOX.>", "a..b", "a b", "_INBOX.*", ".x"] {
            assert!(parse_inbox_prefix(Some(bad.into()), "X").is_err(), "{bad}");
        }
    }
}
