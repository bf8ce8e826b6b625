//! `soak`: a steady load for minutes, read window by window, with the memory of every process
//! over time and the seconds a consumer sat with messages pending and no pull request waiting
//! (the symptom of a consumer that stopped asking). `latency`: placement latency from a few
//! clients, when nothing queues.

use crate::driver::Plan;
use crate::rss;
use crate::scenarios::{Order, Shop};
use crate::stats::{Recorder, Snapshot, ms};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Length of one window of the soak's report.
pub const WINDOW: Duration = Duration::from_secs(10);

/// The durable consumers whose pull requests the soak watches (without namespace); those a
/// deployment does not have (an earlier release's) are left out of the report.
const WATCHED: [(&str, &str); 5] = [
    ("ORDERS_CMD", "inventory-place"),
    ("ORDERS_CMD", "orders-transitions"),
    ("ORDERS_CMD", "orders-commands"),
    ("INVENTORY_CMD", "inventory-commands"),
    ("EVENTS", "orders-inventory-events"),
];

pub struct Soak {
    pub windows: Vec<Snapshot>,
    /// Per sample: seconds since the start and VmRSS (KiB) of each process.
    pub memory: Vec<(u64, Vec<(String, u64)>)>,
    /// Per window: the share of the machine's CPU the hypervisor stole (from `/proc/stat`),
    /// so a slow window can be told from a slow service.
    pub stolen: Vec<Option<f64>>,
    /// Per watched consumer: whole seconds with messages pending and no pull request waiting.
    pub stalled_seconds: Vec<(String, u64)>,
    pub total: Snapshot,
}

impl Soak {
    /// The report: one line per window, then memory over time, then stalls.
    pub fn describe(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "  window      requests  p50        p99        max        CPU stolen"
        );
        for (i, w) in self.windows.iter().enumerate() {
            let stolen = match self.stolen.get(i).copied().flatten() {
                Some(share) => format!("{:.0}%", 100.0 * share),
                None => "-".into(),
            };
            let _ = writeln!(
                out,
                "  {:>4}-{:<4}s {:>8}  {:<10} {:<10} {:<10} {stolen}",
                i as u64 * WINDOW.as_secs(),
                (i as u64 + 1) * WINDOW.as_secs(),
                w.sent,
                ms(w.p50),
                ms(w.p99),
                ms(w.max)
            );
        }
        let worst = self.windows.iter().map(|w| w.p99).max().unwrap_or_default();
        let _ = writeln!(
            out,
            "  worst window p99    {} (target <= 50 ms); whole run p50 {} p99 {}; errors {}",
            ms(worst),
            ms(self.total.p50),
            ms(self.total.p99),
            self.total.errors(&["201", "202"])
        );
        for (name, _) in self.memory.first().map(|m| m.1.clone()).unwrap_or_default() {
            let series: Vec<String> = self
                .memory
                .iter()
                .filter_map(|(at, procs)| {
                    let kib = procs.iter().find(|(n, _)| *n == name)?.1;
                    Some(format!("{at}s {:.1}", kib as f64 / 1024.0))
                })
                .collect();
            let _ = writeln!(out, "  RSS {name:<8} MiB    {}", series.join(", "));
            if let Some((first, last)) = self.flat_after_a_minute(&name) {
                let _ = writeln!(
                    out,
                    "  RSS {name:<8} after the first minute: {:.1} -> {:.1} MiB ({:+.0}%; target within 10%)",
                    first as f64 / 1024.0,
                    last as f64 / 1024.0,
                    100.0 * (last as f64 - first as f64) / first.max(1) as f64
                );
            }
        }
        for (consumer, seconds) in &self.stalled_seconds {
            let _ = writeln!(
                out,
                "  {consumer:<20} {seconds} s with messages pending and no pull waiting (target 0)"
            );
        }
    }

    /// The RSS of `name` at the first sample past one minute and at the last sample.
    fn flat_after_a_minute(&self, name: &str) -> Option<(u64, u64)> {
        let of = |procs: &Vec<(String, u64)>| procs.iter().find(|(n, _)| n == name).map(|p| p.1);
        let first = self.memory.iter().find(|(at, _)| *at >= 60)?;
        let last = self.memory.last()?;
        (last.0 > first.0).then_some((of(&first.1)?, of(&last.1)?))
    }
}

/// Runs the soak: `clients` customers of `shop` order two lines with `Prefer: wait`, closed
/// loop, for `duration`.
pub async fn soak(
    shop: &Shop,
    clients: usize,
    duration: Duration,
    wait: u64,
    processes: &[(String, u32)],
    nats: Option<(&str, &str)>,
) -> anyhow::Result<Soak> {
    let windows_count = usize::try_from(duration.as_secs().div_ceil(WINDOW.as_secs())).unwrap_or(1);
    let windows: Arc<Vec<Recorder>> =
        Arc::new((0..windows_count.max(1)).map(|_| Recorder::new()).collect());
    let started = Instant::now();
    let memory = tokio::spawn(sample_memory(processes.to_vec(), duration));
    let stalls = nats.map(|(url, namespace)| {
        tokio::spawn(watch_pulls(url.to_owned(), namespace.to_owned(), duration))
    });
    let (_, total) = {
        let windows = Arc::clone(&windows);
        let plan = Plan::For(duration);
        shop.order_then(
            "soak",
            clients,
            plan,
            Order::two_lines(Some(wait)),
            move |placed| {
                let window = usize::try_from(
                    placed.sent.duration_since(started).as_secs() / WINDOW.as_secs(),
                )
                .unwrap_or(usize::MAX);
                if let Some(w) = windows.get(window) {
                    let outcome = &placed.outcome;
                    w.record(&outcome.status, outcome.accepted, placed.sent.elapsed());
                }
                std::future::ready(placed.outcome)
            },
        )
        .await
    };
    let (memory, cpu) = memory.await.unwrap_or_default();
    let stolen = cpu
        .windows(2)
        .map(|pair| match pair {
            [Some(a), Some(b)] if b.total > a.total => {
                Some((b.stolen - a.stolen) / (b.total - a.total))
            }
            _ => None,
        })
        .collect();
    let stalled_seconds = match stalls {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Soak {
        windows: windows.iter().map(Recorder::snapshot).collect(),
        memory,
        stolen,
        stalled_seconds,
        total: total.snapshot(),
    })
}

/// VmRSS of each process and the machine's CPU counters every [`WINDOW`], from the start to
/// `duration`.
async fn sample_memory(
    processes: Vec<(String, u32)>,
    duration: Duration,
) -> (Vec<(u64, Vec<(String, u64)>)>, Vec<Option<rss::MachineCpu>>) {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut cpu = Vec::new();
    let mut ticks = tokio::time::interval(WINDOW);
    loop {
        ticks.tick().await;
        let at = started.elapsed();
        let procs = processes
            .iter()
            .filter_map(|(name, pid)| Some((name.clone(), rss::status_kib(*pid, "VmRSS")?)))
            .collect();
        samples.push((at.as_secs(), procs));
        cpu.push(rss::machine_cpu());
        if at >= duration {
            return (samples, cpu);
        }
    }
}

/// Every 200 ms, each watched consumer's pending messages and waiting pull requests; returns,
/// per consumer, the whole seconds spent with messages pending and no pull request waiting.
async fn watch_pulls(url: String, namespace: String, duration: Duration) -> Vec<(String, u64)> {
    let Ok(client) = async_nats::connect(&url).await else {
        return Vec::new();
    };
    let js = async_nats::jetstream::new(client);
    let name = |base: &str| {
        if namespace.is_empty() {
            base.to_owned()
        } else {
            format!("{namespace}_{base}")
        }
    };
    let step = Duration::from_millis(200);
    let mut stalled = vec![Duration::ZERO; WATCHED.len()];
    let mut seen = [false; WATCHED.len()];
    let started = Instant::now();
    while started.elapsed() < duration {
        for (i, (stream, durable)) in WATCHED.iter().enumerate() {
            let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> = js
                .get_consumer_from_stream(name(durable), name(stream))
                .await;
            if let Ok(consumer) = consumer {
                seen[i] = true;
                let info = consumer.cached_info();
                if info.num_pending > 0 && info.num_waiting == 0 {
                    stalled[i] += step;
                }
            }
        }
        tokio::time::sleep(step).await;
    }
    WATCHED
        .iter()
        .zip(stalled)
        .zip(seen)
        .filter(|(_, seen)| *seen)
        .map(|(((_, durable), d), _)| ((*durable).to_owned(), d.as_secs()))
        .collect()
}

/// Placement latency with `Prefer: wait` from `clients` clients in sequence (closed loop).
pub async fn latency(shop: &Shop, clients: usize, duration: Duration, wait: u64) -> Snapshot {
    let label = format!("latency x{clients}");
    let order = Order::two_lines(Some(wait));
    let (_, recorder) = shop
        .order(&label, clients, Plan::For(duration), order)
        .await;
    recorder.snapshot()
}
