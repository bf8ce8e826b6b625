//! What one scenario measured: outcomes by status, latencies, live counters for the progress bar.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Shared by every client task of a scenario.
pub struct Recorder {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub failed: AtomicU64,
    inner: Mutex<Inner>,
}

struct Inner {
    latency_us: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        // 1 µs to 10 min at 3 significant digits.
        let latency_us = Histogram::new_with_bounds(1, 600_000_000, 3)
            .expect("constant histogram bounds are valid");
        Recorder {
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                latency_us,
                statuses: BTreeMap::new(),
            }),
        }
    }

    /// One answered request: `status` is the HTTP status, or a transport error's name.
    pub fn record(&self, status: &str, accepted: bool, latency: Duration) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if accepted {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Ok(mut inner) = self.inner.lock() {
            let _ = inner.latency_us.record(us.min(600_000_000));
            *inner.statuses.entry(status.to_owned()).or_insert(0) += 1;
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let (p50, p95, p99, max, statuses, quantiles) = match self.inner.lock() {
            Ok(inner) => {
                let h = &inner.latency_us;
                let q = |x: f64| Duration::from_micros(h.value_at_quantile(x));
                let quantiles = (0..=99)
                    .map(|i| f64::from(i) / 100.0)
                    .chain([0.995, 0.999, 1.0])
                    .map(|x| (x, q(x)))
                    .collect();
                (
                    q(0.50),
                    q(0.95),
                    q(0.99),
                    Duration::from_micros(h.max()),
                    inner.statuses.clone(),
                    quantiles,
                )
            }
            Err(_) => Default::default(),
        };
        Snapshot {
            sent: self.sent.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            p50,
            p95,
            p99,
            max,
            statuses,
            quantiles,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub sent: u64,
    pub accepted: u64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub statuses: BTreeMap<String, u64>,
    /// The latency each quantile (0 to 1) reaches, for charts.
    pub quantiles: Vec<(f64, Duration)>,
}

impl Snapshot {
    /// Statuses other than the expected ones, e.g. `503=12 connect=3`.
    pub fn errors(&self, ok: &[&str]) -> String {
        let parts: Vec<String> = self
            .statuses
            .iter()
            .filter(|(s, _)| !ok.contains(&s.as_str()))
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(" ")
        }
    }

    pub fn by_status(&self) -> String {
        self.statuses
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The name under which a failed request is counted.
pub fn transport_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
