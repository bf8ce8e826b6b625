//! Refusals at the limits the api keeps on purpose: a 429 past a rate limit or the bound on an
//! account's unpaid orders, a 503 with `Retry-After` at the password hashing bound or the order
//! event stream cap. They are the limits working, not faults: none is logged as an error. Each
//! refusal is counted (`http_refusals_total{limit}`), and a limit that refuses logs one WARN
//! naming it (its variable) at most every [`WARN_EVERY`], with how many it refused since the
//! last one, so a reconnect storm at a cap neither floods the logs nor trips an error-rate alert.

use axum::response::Response;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shortest time between two warnings about one limit.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// A limit the api keeps on purpose, named by the variable that tunes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    PasswordHashing,
    LoginsPerAccount,
    LoginsPerAddress,
    RegistrationsPerAddress,
    StreamsPerAccount,
    StreamsPerProcess,
    UnpaidOrdersPerAccount,
    /// The process is shutting down: no new order event stream.
    ShuttingDown,
}

impl Limit {
    const ALL: [Limit; 8] = [
        Limit::PasswordHashing,
        Limit::LoginsPerAccount,
        Limit::LoginsPerAddress,
        Limit::RegistrationsPerAddress,
        Limit::StreamsPerAccount,
        Limit::StreamsPerProcess,
        Limit::UnpaidOrdersPerAccount,
        Limit::ShuttingDown,
    ];

    /// The variable that tunes the limit (the `limit` of the log line and the metric).
    pub fn name(self) -> &'static str {
        match self {
            Limit::PasswordHashing => "PASSWORD_HASH_CONCURRENCY",
            Limit::LoginsPerAccount => "LOGIN_RATE_PER_MINUTE",
            Limit::LoginsPerAddress => "LOGIN_IP_RATE_PER_MINUTE",
            Limit::RegistrationsPerAddress => "REGISTER_IP_RATE_PER_MINUTE",
            Limit::StreamsPerAccount => "SSE_STREAMS_PER_USER",
            Limit::StreamsPerProcess => "SSE_STREAMS_MAX",
            Limit::UnpaidOrdersPerAccount => "MAX_UNPAID_ORDERS_PER_USER",
            Limit::ShuttingDown => "shutdown",
        }
    }

    fn index(self) -> usize {
        Limit::ALL.iter().position(|l| *l == self).unwrap_or(0)
    }
}

/// Marks an answer as a refusal at `limit` (a response extension), for [`crate::error::log_causes`].
#[derive(Debug, Clone, Copy)]
pub struct Refusal(pub Limit);

/// `res`, marked as a refusal at `limit`.
pub fn refused(mut res: Response, limit: Limit) -> Response {
    res.extensions_mut().insert(Refusal(limit));
    res
}

/// Refusals of one limit since its last warning, and when that was.
struct Tally {
    refused: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

static TALLIES: [Tally; Limit::ALL.len()] = [const {
    Tally {
        refused: AtomicU64::new(0),
        warned: Mutex::new(None),
    }
}; Limit::ALL.len()];

/// Exports `http_refusals_total` of every limit at zero, so it is there (and its rate
/// computable) before the first refusal.
pub fn register() {
    for limit in Limit::ALL {
        metrics::counter!("http_refusals_total", "limit" => limit.name()).absolute(0);
    }
}

/// Counts a refusal at `limit`, and warns if the limit has not been warned about lately.
pub fn note(limit: Limit) {
    metrics::counter!("http_refusals_total", "limit" => limit.name()).increment(1);
    let tally = &TALLIES[limit.index()];
    tally.refused.fetch_add(1, Ordering::Relaxed);
    let mut warned = tally.warned.lock().unwrap_or_else(|p| p.into_inner());
    if warned.is_some_and(|at| at.elapsed() < WARN_EVERY) {
        return;
    }
    *warned = Some(Instant::now());
    let refused = tally.refused.swap(0, Ordering::Relaxed);
    drop(warned);
    tracing::warn!(
        limit = limit.name(),
        refused,
        "requests refused at a limit (at most one line per limit every 10 s)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_has_its_own_tally_and_name() {
        let names: std::collections::BTreeSet<_> = Limit::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(names.len(), Limit::ALL.len());
        for (i, limit) in Limit::ALL.iter().enumerate() {
            assert_eq!(limit.index(), i);
        }
    }
}
