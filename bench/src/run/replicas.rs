//! `replicas`: what an api replica spends on the orders placed through the others. The load
//! (place, `Prefer: wait`) goes through the first api alone while every replica's CPU is
//! measured, less what each spent idle over as long just before; each replica's CPU per order
//! placed is printed, the placing one's as its own cost, the others' against it. Then reads
//! across replicas: each order placed (202, no wait) through the first api is read at once
//! through another, and must answer `PENDING` or the recorded order, never 404.

use super::shared::Run;
use crate::driver::Plan;
use crate::rss::cpu_secs;
use crate::scenarios::{self, Shop, two_lines};
use crate::setup::{Api, http_client};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Orders read across replicas right after being accepted.
const READS: usize = 300;

pub async fn section(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    let _ = writeln!(
        out,
        "\n== replicas (place through the first api only, Prefer: wait={})",
        ctx.options.wait
    );
    let Some(first) = ctx.options.api_pid else {
        let _ = writeln!(out, "  skipped: needs --api-pid");
        return Ok(());
    };
    if ctx.options.replicas.is_empty() {
        let _ = writeln!(out, "  skipped: needs --replica-url and --replica-pid");
        return Ok(());
    }
    let mut apis = vec![("api#0".to_owned(), first, Arc::clone(&ctx.api))];
    for (i, (url, pid)) in ctx.options.replicas.iter().enumerate() {
        let api = Api::new(url, http_client(8)?);
        api.wait_ready(Duration::from_secs(30)).await?;
        apis.push((format!("api#{}", i + 1), *pid, Arc::new(api)));
    }
    let shop = ctx.shop(ctx.options.concurrency, "replicas").await?;
    let _ = scenarios::place(
        &shop,
        &ctx.db,
        ctx.options.concurrency,
        Plan::For(Duration::from_secs(2)),
        ctx.options.wait,
        "warm-up",
    )
    .await?;

    // Idle first: timers and metrics cost a replica something with no order at all.
    let idle = Duration::from_secs(3);
    let before: Vec<f64> = apis.iter().map(|a| cpu_secs(a.1).unwrap_or(0.0)).collect();
    tokio::time::sleep(idle).await;
    let idle_rate: Vec<f64> = apis
        .iter()
        .zip(&before)
        .map(|(a, b)| (cpu_secs(a.1).unwrap_or(*b) - b) / idle.as_secs_f64())
        .collect();

    let before: Vec<f64> = apis.iter().map(|a| cpu_secs(a.1).unwrap_or(0.0)).collect();
    let m = scenarios::place(
        &shop,
        &ctx.db,
        ctx.options.concurrency,
        Plan::For(ctx.options.duration),
        ctx.options.wait,
        "replicas",
    )
    .await?;
    let orders = m.stats.accepted.max(1) as f64;
    let elapsed = m.ran.elapsed.as_secs_f64();
    let per_order: Vec<(f64, f64)> = apis
        .iter()
        .zip(&before)
        .zip(&idle_rate)
        .map(|((a, b), idle)| {
            let used = cpu_secs(a.1).unwrap_or(*b) - b;
            (
                1000.0 * used / orders,
                1000.0 * (used - idle * elapsed).max(0.0) / orders,
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "  orders              {} accepted through api#0 in {elapsed:.1} s ({:.0}/s), p50 {}  p99 {}",
        m.stats.accepted,
        m.accepted_per_sec(),
        crate::stats::ms(m.stats.p50),
        crate::stats::ms(m.stats.p99)
    );
    let own = per_order[0].1.max(1e-9);
    for ((name, _, _), (raw, less_idle)) in apis.iter().zip(&per_order) {
        let role = if name == "api#0" {
            "own orders"
        } else {
            "the others' orders"
        };
        let _ = writeln!(
            out,
            "  CPU {name:<8}        {less_idle:.4} ms per order ({raw:.4} with its idle time), {role}; {:.1}% of the placing replica's (target <= 5%)",
            100.0 * less_idle / own
        );
    }

    // PENDING reads across replicas.
    let placing = Shop {
        api: Arc::clone(&apis[0].2),
        ..shop.clone()
    };
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    let started = Instant::now();
    for i in 0..READS {
        let customer = &placing.customers[i % placing.customers.len()];
        let body = two_lines(&placing.products);
        let (_, id) = scenarios::post_order(&placing.api, customer, &body, None).await;
        let Some(id) = id else {
            *answers.entry("not accepted".into()).or_default() += 1;
            continue;
        };
        let reader = &apis[1 + i % (apis.len() - 1)].2;
        let res = reader
            .http
            .get(reader.url(&format!("/orders/{id}")))
            .bearer_auth(&customer.token)
            .send()
            .await;
        let answer = match res {
            Ok(res) if res.status() == 200 => match res.json::<serde_json::Value>().await {
                Ok(order) => order["status"].as_str().unwrap_or("?").to_owned(),
                Err(_) => "unreadable".into(),
            },
            Ok(res) => res.status().as_str().to_owned(),
            Err(_) => "error".into(),
        };
        *answers.entry(answer).or_default() += 1;
    }
    let answers: Vec<String> = answers.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        out,
        "  reads elsewhere     {READS} orders read through another replica right after their 202 ({:.1} s): {} (target: no 404)",
        started.elapsed().as_secs_f64(),
        answers.join(", ")
    );
    Ok(())
}
