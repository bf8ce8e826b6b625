//! The benchmark run: scenarios in order, then a plain-text summary (and, with `--charts`,
//! SVG charts). Each scenario's section is in its own file.

mod browse;
mod flash;
mod place;
mod reads;
mod replicas;
mod shared;
mod steady;
mod timeline;
mod webhooks;

pub use shared::{Options, Run};

use crate::rss;
use sqlx::postgres::PgPoolOptions;
use std::fmt::Write as _;

/// Runs the chosen scenarios and returns the summary text.
pub async fn run(o: &Options) -> anyhow::Result<String> {
    let (api, admin) = o
        .deployment
        .sign_in(o.concurrency.max(o.flash_clients))
        .await?;
    let db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&o.deployment.database_url)
        .await?;
    let mut processes = Vec::new();
    if let Some(pid) = o.api_pid {
        processes.push(("api".to_owned(), pid));
    }
    for (i, pid) in o.workers_pids.iter().enumerate() {
        let name = if o.workers_pids.len() == 1 {
            "workers".to_owned()
        } else {
            format!("workers#{i}")
        };
        processes.push((name, *pid));
    }
    if let Some(dir) = &o.charts {
        std::fs::create_dir_all(dir)?;
    }
    let ctx = Run {
        options: o.clone(),
        api,
        admin,
        db,
        processes,
    };
    let wants = |s: &str| o.scenarios.iter().any(|x| x == s);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "order service benchmark: {} clients, {} s per phase, api {}",
        o.concurrency,
        o.duration.as_secs(),
        o.deployment.api_url
    );
    // First, so that the scenarios after it run against the loaded store.
    if wants("reads") {
        reads::section(&ctx, &mut out).await?;
    }
    if wants("place") {
        place::section(&ctx, &mut out).await?;
    }
    if wants("scaling") {
        place::scaling(&ctx, &mut out).await?;
    }
    if wants("timeline") {
        timeline::section(&ctx, &mut out).await?;
    }
    if wants("latency") || wants("soak") {
        steady::section(&ctx, &mut out, wants("latency"), wants("soak")).await?;
    }
    if wants("flash-sale") {
        flash::section(&ctx, &mut out).await?;
    }
    if wants("browse") {
        browse::section(&ctx, &mut out).await?;
    }
    if wants("webhooks") {
        webhooks::section(&ctx, &mut out).await?;
    }
    if wants("replicas") {
        replicas::section(&ctx, &mut out).await?;
    }
    let processes = &ctx.processes;
    let db = &ctx.db;
    let mut hwm = Vec::new();
    for (name, pid) in processes {
        if let Some(kib) = rss::status_kib(*pid, "VmHWM") {
            hwm.push(format!("{name} {}", rss::mib(kib)));
        }
    }
    if !hwm.is_empty() {
        let _ = writeln!(out, "\nVmHWM over the whole run: {}", hwm.join(", "));
    }
    db.close().await;
    Ok(out)
}
