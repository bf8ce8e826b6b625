//! What every section of a run shares: the options, the deployment under test and its
//! database, and the lines that describe a measured load.

use crate::scenarios::{Measured, Shop};
use crate::setup::{Api, Deployment};
use crate::stats::ms;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    pub deployment: Deployment,
    pub scenarios: Vec<String>,
    pub concurrency: usize,
    pub duration: Duration,
    pub products: usize,
    pub wait: u64,
    pub flash_orders: u64,
    pub flash_stock: i64,
    pub flash_clients: usize,
    pub api_pid: Option<u32>,
    pub workers_pids: Vec<u32>,
    /// Other api replicas of the deployment: base URL and pid.
    pub replicas: Vec<(String, u32)>,
    /// The api's `JWT_SECRET`: the synchronous baseline verifies the same tokens.
    pub jwt_secret: Option<String>,
    /// How long the soak runs, and from how many clients.
    pub soak: Duration,
    pub soak_clients: usize,
    /// NATS, and the deployment's namespace, for watching the consumers' pull requests.
    pub nats_url: String,
    pub nats_namespace: String,
    /// Where to write the run's SVG charts, if anywhere.
    pub charts: Option<PathBuf>,
    /// The reads scenario: orders of the small store, and of the large one.
    pub reads_small: i64,
    pub reads_orders: i64,
}

/// What every section of a run shares.
pub struct Run {
    pub options: Options,
    pub api: Arc<Api>,
    /// The ADMIN's token.
    pub admin: String,
    pub db: sqlx::PgPool,
    /// The measured processes: name and pid.
    pub processes: Vec<(String, u32)>,
}

impl Run {
    /// A shop of `customers` new customers and the run's number of new products, with stock
    /// enough that no order is refused for the lack of it.
    pub async fn shop(&self, customers: usize, tag: &str) -> anyhow::Result<Shop> {
        Ok(Shop {
            api: Arc::clone(&self.api),
            customers: Arc::new(self.api.register_customers(customers, tag).await?),
            products: Arc::new(
                self.api
                    .create_products(&self.admin, self.options.products, 1_000_000_000, tag)
                    .await?,
            ),
        })
    }
}

pub(crate) fn describe(out: &mut String, m: &Measured, ok: &[&str]) {
    let s = &m.stats;
    let _ = writeln!(
        out,
        "  requests            {} in {:.1} s, {} accepted ({:.0}/s)",
        s.sent,
        m.ran.elapsed.as_secs_f64(),
        s.accepted,
        m.accepted_per_sec()
    );
    if let Some(settled) = m.settled_per_sec() {
        let _ = writeln!(
            out,
            "  settled end to end  {} in {:.2} s ({settled:.0} orders/s; {} confirmed)",
            m.settled,
            m.settled_after.map(|d| d.as_secs_f64()).unwrap_or(0.0),
            m.confirmed
        );
    } else if s.accepted > 0 && m.settled > 0 {
        let _ = writeln!(
            out,
            "  settled             {} of {} (not all within 60 s)",
            m.settled, s.accepted
        );
    }
    let _ = writeln!(
        out,
        "  latency             p50 {}  p95 {}  p99 {}  max {}",
        ms(s.p50),
        ms(s.p95),
        ms(s.p99),
        ms(s.max)
    );
    let _ = writeln!(out, "  by status           {}", s.by_status());
    let _ = writeln!(out, "  errors              {}", s.errors(ok));
}
