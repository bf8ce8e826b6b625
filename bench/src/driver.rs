//! Runs an operation from many concurrent clients, for a duration or a count, optionally paced,
//! with a progress bar; every run is bounded.

use crate::stats::Recorder;
use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much work a run does.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// As fast as the clients can, for this long.
    For(Duration),
    /// Exactly this many requests, as fast as the clients can (bounded by `limit` as a safety net).
    Count { n: u64, limit: Duration },
    /// At `rate` requests per second for this long (open loop: a slow answer does not slow the
    /// schedule down, as long as a client is free).
    Paced { rate: f64, duration: Duration },
}

/// What an operation reports: the status to count it under, and whether it counts as accepted.
pub struct Outcome {
    pub status: String,
    pub accepted: bool,
}

impl Outcome {
    pub fn http(status: u16, accepted: bool) -> Self {
        Outcome {
            status: status.to_string(),
            accepted,
        }
    }
    pub fn error(e: &reqwest::Error) -> Self {
        Outcome {
            status: crate::stats::transport_error(e).to_owned(),
            accepted: false,
        }
    }
}

/// When the first request left and the last answer came back.
pub struct Ran {
    pub started: Instant,
    pub elapsed: Duration,
}

/// Runs `op(index, client)` from `clients` tasks according to `plan`, recording into `recorder`.
pub async fn drive<F, Fut>(
    label: &str,
    clients: usize,
    plan: Plan,
    recorder: Arc<Recorder>,
    op: F,
) -> Ran
where
    F: Fn(u64, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let bar = progress(label, plan);
    let ticker = {
        let bar = bar.clone();
        let recorder = Arc::clone(&recorder);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let elapsed = started.elapsed();
                let sent = recorder.sent.load(Ordering::Relaxed);
                match plan {
                    Plan::Count { .. } => bar.set_position(sent),
                    _ => bar.set_position(u64::try_from(elapsed.as_millis()).unwrap_or(0)),
                }
                bar.set_message(format!(
                    "accepted {} failed {} ({:.0}/s)",
                    recorder.accepted.load(Ordering::Relaxed),
                    recorder.failed.load(Ordering::Relaxed),
                    sent as f64 / elapsed.as_secs_f64().max(0.001)
                ));
            }
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients.max(1) {
        let (op, next, recorder) = (Arc::clone(&op), Arc::clone(&next), Arc::clone(&recorder));
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                match plan {
                    Plan::For(d) if started.elapsed() >= d => break,
                    Plan::Count { n, limit } if i >= n || started.elapsed() >= limit => break,
                    Plan::Paced { rate, duration } => {
                        let due = Duration::from_secs_f64(i as f64 / rate);
                        if due >= duration {
                            break;
                        }
                        tokio::time::sleep_until((started + due).into()).await;
                    }
                    _ => {}
                }
                let t = Instant::now();
                let outcome = op(i, client).await;
                recorder.record(&outcome.status, outcome.accepted, t.elapsed());
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    Ran { started, elapsed }
}

fn progress(label: &str, plan: Plan) -> ProgressBar {
    let (len, unit) = match plan {
        Plan::For(d) | Plan::Paced { duration: d, .. } => {
            (u64::try_from(d.as_millis()).unwrap_or(0), "ms")
        }
        Plan::Count { n, .. } => (n, "req"),
    };
    let bar = ProgressBar::new(len);
    let template = format!("{{prefix:>14}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}
