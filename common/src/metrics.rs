//! The Prometheus recorder shared by both binaries.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often recorded histogram samples are folded into their buckets and summaries.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the global recorder once per process and returns a handle that renders the
/// text exposition format. Later calls return the same handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Histogram samples wait in per-series queues until upkeep folds them in; scrapes
            // do it too, but a process nobody scrapes would keep every sample of every message.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            // Another recorder may already be installed (a test binary hosting both the api and
            // the workers); metrics then flow to that one and this handle renders nothing extra.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Sets the connection-pool gauges of `pool` (labelled `pool`): open connections by state
/// and the configured maximum. Called on each scrape, so the values are current.
pub fn record_pool(pool: &sqlx::PgPool, name: &'static str) {
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    metrics::gauge!("db_pool_connections", "pool" => name, "state" => "idle").set(idle);
    metrics::gauge!("db_pool_connections", "pool" => name, "state" => "in_use")
        .set((size - idle).max(0.0));
    metrics::gauge!("db_pool_max_connections", "pool" => name)
        .set(f64::from(pool.options().get_max_connections()));
}
