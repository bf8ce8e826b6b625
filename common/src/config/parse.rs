//! Parsers of single variables: numbers, durations, booleans and origin lists, each error
//! naming its variable.

use super::ConfigError;
use std::fmt;
use std::time::Duration;

pub(super) fn parse<T>(
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

pub(super) fn parse_positive(
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
pub(super) fn parse_ttl(
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
pub(super) fn parse_origins(
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

pub(super) fn parse_bool(
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
