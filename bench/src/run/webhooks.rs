//! `webhooks`: what the webhooks worker adds. Orders are placed at a steady rate while a local
//! receiver (answering 200 at once) is registered for `order.status_changed`: each order's
//! CONFIRMED event becomes one webhook, timed from the event (published right after its commit,
//! the payload's `timestamp`) to its arrival. Then a replay of that period re-sends them all at
//! once: delivery throughput, the rate the receiver gets them at.

use super::shared::Run;
use crate::driver::Plan;
use crate::scenarios::Order;
use crate::stats::ms;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Orders per second of the latency phase: a load the system carries without queueing.
const RATE: f64 = 50.0;

#[derive(Default)]
struct Received {
    count: u64,
    /// Microseconds from each event's `timestamp` to its arrival.
    latency_us: Vec<u64>,
    last: Option<Instant>,
}

async fn receive(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> &'static str {
    let now = SystemTime::now();
    let at = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["timestamp"].as_str().map(str::to_owned))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)));
    let mut r = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    r.count += 1;
    r.last = Some(Instant::now());
    if let Some(late) = at.and_then(|at| now.duration_since(at).ok()) {
        r.latency_us.push(late.as_micros() as u64);
    }
    "ok"
}

pub async fn section(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    let received = Arc::new(Mutex::new(Received::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(Arc::clone(&received));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let res = ctx
        .api
        .http
        .post(ctx.api.url("/webhooks"))
        .bearer_auth(&ctx.admin)
        .json(&json!({"url": url, "events": ["order.status_changed"]}))
        .send()
        .await?;
    anyhow::ensure!(
        res.status() == 201,
        "registering the receiver: {} (the workers need WEBHOOK_ENCRYPTION_KEY and, for a local receiver, WEBHOOK_ALLOW_PRIVATE_NETWORKS=true)",
        res.status()
    );
    let endpoint: Value = res.json().await?;
    let id = endpoint["id"].as_str().unwrap_or_default().to_owned();
    let shop = ctx.shop(8, "webhooks").await?;
    let since = chrono::Utc::now();
    let plan = Plan::Paced {
        rate: RATE,
        duration: ctx.options.duration,
    };
    let (_, recorder) = shop
        .order("webhooks", 8, plan, Order::two_lines(None))
        .await;
    let orders = recorder.snapshot().accepted;
    let arrived = wait_for(&received, orders, Duration::from_secs(60)).await;
    let latency = histogram(
        &received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .latency_us,
    )?;

    // Replay the period: every delivery again, queued at once.
    let (before, started) = (arrived, Instant::now());
    let res = ctx
        .api
        .http
        .post(ctx.api.url(&format!("/webhooks/{id}/replay")))
        .bearer_auth(&ctx.admin)
        .json(&json!({"since": since}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 202, "replay: {}", res.status());
    let queued = res.json::<Value>().await?["queued"].as_u64().unwrap_or(0);
    let answered = started.elapsed();
    let total = wait_for(&received, before + queued, Duration::from_secs(120)).await;
    let last = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .last;
    let took = last.map_or(Duration::ZERO, |l| l.duration_since(started));
    server.abort();

    let _ = writeln!(
        out,
        "\n== webhooks (one endpoint on 127.0.0.1 answering 200; orders at {RATE}/s for {} s)",
        ctx.options.duration.as_secs()
    );
    let _ = writeln!(
        out,
        "  event to webhook     {arrived} of {orders} orders' CONFIRMED webhooks; p50 {}  p99 {}  max {}",
        ms(Duration::from_micros(latency.value_at_quantile(0.5))),
        ms(Duration::from_micros(latency.value_at_quantile(0.99))),
        ms(Duration::from_micros(latency.max())),
    );
    let _ = writeln!(
        out,
        "  replay of {queued}      answered in {}, all {} delivered in {}: {:.0} deliveries/s",
        ms(answered),
        total - before,
        ms(took),
        (total - before) as f64 / took.as_secs_f64().max(1e-3),
    );
    Ok(())
}

/// Waits until `n` webhooks arrived (or `limit` passed); how many did.
async fn wait_for(received: &Mutex<Received>, n: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let count = received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .count;
        if count >= n || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn histogram(samples: &[u64]) -> anyhow::Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for s in samples {
        h.record((*s).max(1))?;
    }
    Ok(h)
}
