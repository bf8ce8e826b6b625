//! `timeline`: where the milliseconds of one order go, at rest. One client places orders one
//! after another with `Prefer: wait`; for each, the bench notes when it sent the request, when
//! the place command, the outcome reply and the status event went by on the bus (core
//! subscriptions of its own: each copy reaches the bench when the server passes it on), when
//! the inventory worker's transaction began (the order's `created_at`, PostgreSQL's `now()`),
//! and when the answer arrived. All on this machine's one clock; the medians per hop are
//! printed in order.

use super::shared::Run;
use crate::scenarios::{post_order, two_lines};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Orders timed.
const ORDERS: usize = 200;

/// What the bench heard on the bus, per order.
#[derive(Default, Clone, Copy)]
struct Heard {
    command: Option<DateTime<Utc>>,
    reply: Option<DateTime<Utc>>,
    event: Option<DateTime<Utc>>,
}

pub async fn section(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    let shop = ctx.shop(1, "timeline").await?;
    let nats = async_nats::connect(&ctx.options.nats_url).await?;
    let ns = &ctx.options.nats_namespace;
    let subject = |s: &str| {
        if ns.is_empty() {
            s.to_owned()
        } else {
            format!("{ns}.{s}")
        }
    };
    let mut bus = futures::stream::select_all([
        nats.subscribe(subject("orders.cmd.place")).await?,
        nats.subscribe(subject("orders.evt.status_changed")).await?,
        // The api's replies, under the default inbox prefix.
        nats.subscribe("_INBOX.placed.>").await?,
    ]);
    nats.flush().await?;
    let heard: Arc<Mutex<HashMap<Uuid, Heard>>> = Arc::default();
    let listening = {
        let heard = Arc::clone(&heard);
        tokio::spawn(async move {
            while let Some(message) = bus.next().await {
                let at = Utc::now();
                let subject = message.subject.as_str();
                let order = if subject.contains(".placed.") {
                    subject.rsplit('.').next().and_then(|s| s.parse().ok())
                } else {
                    serde_json::from_slice::<serde_json::Value>(&message.payload)
                        .ok()
                        .and_then(|v| v["data"]["order_id"].as_str().and_then(|s| s.parse().ok()))
                };
                let Some(order) = order else { continue };
                let mut heard = heard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let h = heard.entry(order).or_default();
                let slot = if subject.ends_with("orders.cmd.place") {
                    &mut h.command
                } else if subject.contains(".placed.") {
                    &mut h.reply
                } else {
                    &mut h.event
                };
                slot.get_or_insert(at);
            }
        })
    };
    let customer = &shop.customers[0];
    let mut sent = Vec::with_capacity(ORDERS);
    for _ in 0..ORDERS {
        let body = two_lines(&shop.products);
        let t0 = Utc::now();
        let (outcome, id) = post_order(&shop.api, customer, &body, Some(ctx.options.wait)).await;
        let t5 = Utc::now();
        if let (Some(id), true) = (id, outcome.accepted) {
            sent.push((id, t0, t5));
        }
    }
    // The last event may still be on its way to the bench.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    listening.abort();
    let ids: Vec<Uuid> = sent.iter().map(|s| s.0).collect();
    let began: HashMap<Uuid, DateTime<Utc>> = sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(
        "SELECT id, created_at FROM orders WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&ctx.db)
    .await?
    .into_iter()
    .collect();
    let heard = heard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let ms = |a: DateTime<Utc>, b: DateTime<Utc>| {
        (b - a).num_microseconds().unwrap_or(0) as f64 / 1000.0
    };
    // Per order, each step's time since the request was sent.
    let mut steps: [Vec<f64>; 5] = Default::default();
    for (id, t0, t5) in &sent {
        let h = heard.get(id).copied().unwrap_or_default();
        let points = [
            h.command,
            began.get(id).copied(),
            h.reply,
            h.event,
            Some(*t5),
        ];
        for (step, at) in steps.iter_mut().zip(points) {
            if let Some(at) = at {
                step.push(ms(*t0, at));
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let _ = writeln!(
        out,
        "\n== timeline (one client, {} orders in sequence, Prefer: wait={}; median ms after the request was sent)",
        sent.len(),
        ctx.options.wait
    );
    let names = [
        "place command on the bus (api: HTTP, token, body, publish)",
        "worker's transaction began (delivery to the worker)",
        "outcome reply on the bus (the worker's statements, commit)",
        "status event on the bus",
        "answer received (the api's answer, HTTP)",
    ];
    let mut last = 0.0;
    for (name, step) in names.iter().zip(steps.iter_mut()) {
        match median(step) {
            Some(at) => {
                let _ = writeln!(out, "  {at:>7.2} ms (+{:>5.2})  {name}", at - last);
                last = at;
            }
            None => {
                let _ = writeln!(out, "        -            {name} (not seen)");
            }
        }
    }
    Ok(())
}
