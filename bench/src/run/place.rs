//! `place`: orders from many clients at full speed and at half of it, against the database
//! ceiling and the synchronous baselines (the ceiling's transaction, and the inventory worker's
//! own, one order each); and `scaling`, the same at several client counts.

use super::shared::{Run, describe};
use crate::ceiling;
use crate::driver::Plan;
use crate::rss::{self, Sampler};
use crate::scenarios::{self, Measured, Shop};
use crate::stats::ms;
use crate::synchronous::Work;
use std::fmt::Write as _;
use std::time::Duration;
pub async fn section(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    eprintln!(
        "place: registering {} customers, creating {} products",
        ctx.options.concurrency, ctx.options.products
    );
    let shop = ctx.shop(ctx.options.concurrency, "place").await?;
    // Warm connection pools and caches; not recorded.
    let _ = scenarios::place(
        &shop,
        &ctx.db,
        ctx.options.concurrency,
        Plan::For(Duration::from_secs(3)),
        ctx.options.wait,
        "warm-up",
    )
    .await?;
    // Table statistics as autovacuum keeps them in a running shop: plans that connections
    // cached while the order tables were empty would otherwise scan them whole.
    sqlx::query("ANALYZE").execute(&ctx.db).await?;
    let sampler = Sampler::start(ctx.processes.clone());
    let cpu = rss::CpuMeter::start(&ctx.processes);
    let peak = scenarios::place(
        &shop,
        &ctx.db,
        ctx.options.concurrency,
        Plan::For(ctx.options.duration),
        ctx.options.wait,
        "place",
    )
    .await?;
    let peaks = sampler.peaks();
    let cpu_place = cpu.report(peak.ran.elapsed, peak.stats.accepted);
    let postgres_place = cpu.ms_per("postgres", peak.stats.accepted);
    let cpu_per_process = cpu.ms_per_process(peak.stats.accepted);
    drop(sampler);
    let half_rate = (peak.accepted_per_sec() / 2.0).max(1.0);
    let cpu = rss::CpuMeter::start(&ctx.processes);
    let half = scenarios::place(
        &shop,
        &ctx.db,
        ctx.options.concurrency,
        Plan::Paced {
            rate: half_rate,
            duration: ctx.options.duration,
        },
        ctx.options.wait,
        "place @ half",
    )
    .await?;
    let cpu_half = cpu.report(half.ran.elapsed, half.stats.accepted);
    let ceiling = ceiling::run(
        &ctx.options.deployment.database_url,
        ctx.options.products,
        ctx.options.concurrency,
        Plan::For(ctx.options.duration),
    )
    .await?;
    let ceiling_stats = ceiling.recorder.snapshot();
    let mut baselines = Vec::with_capacity(BASELINES.len());
    for b in &BASELINES {
        if let Some(measured) = baseline(ctx, &shop, b.work).await? {
            baselines.push((b, measured));
        }
    }
    let cpu_ceiling = &ceiling.cpu;
    let ceiling_rate = ceiling_stats.accepted as f64 / ceiling.ran.elapsed.as_secs_f64();

    let _ = writeln!(
        out,
        "\n== place (two-line orders, Prefer: wait={}, {} products)",
        ctx.options.wait, ctx.options.products
    );
    describe(out, &peak, &["201", "202"]);
    if let Some(settled) = peak.settled_per_sec() {
        let _ = writeln!(
            out,
            "  vs ceiling          {:.2}x of {:.0} orders/s (target >= 0.6x)",
            settled / ceiling_rate,
            ceiling_rate
        );
        for (b, measured) in &baselines {
            let rate = measured.accepted_per_sec();
            let _ = writeln!(
                out,
                "  vs {:<16} {:.2}x of {rate:.0} orders/s ({})",
                b.label,
                settled / rate.max(1e-9),
                b.note
            );
        }
    }
    let _ = writeln!(
        out,
        "  PostgreSQL CPU      {postgres_place:.3} ms per order, {:.2}x the ceiling's {:.3} ms (target <= 1.3x)",
        postgres_place / ceiling.postgres_ms.max(1e-9),
        ceiling.postgres_ms
    );
    for (name, kib) in &peaks {
        let _ = writeln!(
            out,
            "  peak RSS {name:<10} {} (sampled VmRSS; target <= 64 MiB)",
            rss::mib(*kib)
        );
    }
    let _ = writeln!(out, "  CPU                 {cpu_place}");
    let _ = writeln!(
        out,
        "\n== place at half of peak ({half_rate:.0} requests/s offered)"
    );
    describe(out, &half, &["201", "202"]);
    let _ = writeln!(out, "  (target: p99 <= 50 ms)");
    let _ = writeln!(out, "  CPU                 {cpu_half}");
    let _ = writeln!(
        out,
        "\n== ceiling (one transaction per order: guarded decrement of two lines + order row)"
    );
    let _ = writeln!(
        out,
        "  orders/s            {ceiling_rate:.0} ({} committed in {:.1} s, {} clients)",
        ceiling_stats.accepted,
        ceiling.ran.elapsed.as_secs_f64(),
        ctx.options.concurrency
    );
    let _ = writeln!(
        out,
        "  latency             p50 {}  p95 {}  p99 {}",
        ms(ceiling_stats.p50),
        ms(ceiling_stats.p95),
        ms(ceiling_stats.p99)
    );
    let _ = writeln!(out, "  outcomes            {}", ceiling_stats.by_status());
    let _ = writeln!(out, "  CPU                 {cpu_ceiling}");
    for (b, measured) in &baselines {
        let _ = writeln!(out, "\n== {}", b.title);
        describe(out, measured, &["201"]);
        if let Some(ms) = measured.postgres_ms {
            let _ = writeln!(out, "  PostgreSQL CPU      {ms:.3} ms per order");
        }
    }
    if let Some(dir) = &ctx.options.charts {
        crate::charts::latency(
            dir,
            "latency-place",
            &format!(
                "Placement latency, {} clients at full speed (Prefer: wait)",
                ctx.options.concurrency
            ),
            &peak.stats.quantiles,
        )?;
        crate::charts::cpu(
            dir,
            &format!(
                "CPU per order, {} clients at full speed",
                ctx.options.concurrency
            ),
            &cpu_per_process,
        )?;
    }
    Ok(())
}

/// A synchronous baseline as the summary names it.
struct Baseline {
    work: Work,
    /// Its name on place's line of ratios.
    label: &'static str,
    /// What place's ratio to it is for.
    note: &'static str,
    /// Its section's heading.
    title: &'static str,
}

/// The synchronous baselines place is compared with, in the summary's order.
const BASELINES: [Baseline; 2] = [
    Baseline {
        work: Work::Ceiling,
        label: "synchronous",
        note: "target >= 0.8x",
        title: "synchronous baseline (bare axum: same body and bearer token, the ceiling's transaction)",
    },
    Baseline {
        work: Work::Recorded,
        label: "same transaction",
        note: "the same records without the bus",
        title: "same transaction (bare axum: the inventory worker's transaction, one order each)",
    },
];

/// A synchronous baseline doing `work` from as many clients as `place`, for as long; none
/// without the api's token key.
async fn baseline(ctx: &Run, shop: &Shop, work: Work) -> anyhow::Result<Option<Measured>> {
    let Some(secret) = &ctx.options.jwt_secret else {
        return Ok(None);
    };
    let measured = crate::synchronous::run(
        work,
        shop,
        &ctx.options.deployment.database_url,
        secret,
        ctx.options.products,
        ctx.options.concurrency,
        ctx.options.duration,
    )
    .await?;
    Ok(Some(measured))
}

/// `scaling`: `place` for a while at each number of clients, and the orders settled per second
/// each reached; with `--charts`, a chart of them.
pub async fn scaling(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    const CLIENTS: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];
    let most = CLIENTS.iter().copied().max().unwrap_or(1);
    eprintln!("scaling: registering {most} customers");
    let shop = ctx.shop(most, "scaling").await?;
    let phase = (ctx.options.duration / 4).max(Duration::from_secs(5));
    let _ = writeln!(
        out,
        "\n== scaling (place, Prefer: wait={}, {} s per client count)",
        ctx.options.wait,
        phase.as_secs()
    );
    let mut points = Vec::new();
    for clients in CLIENTS {
        let m = scenarios::place(
            &shop,
            &ctx.db,
            clients,
            Plan::For(phase),
            ctx.options.wait,
            &format!("scaling x{clients}"),
        )
        .await?;
        let rate = m.settled_per_sec().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "  {clients:>3} clients       {rate:>6.0} orders/s, p50 {}  p99 {}; errors {}",
            ms(m.stats.p50),
            ms(m.stats.p99),
            m.stats.errors(&["201", "202"])
        );
        points.push((clients, rate));
    }
    if let Some(dir) = &ctx.options.charts {
        let ceiling = ceiling::run(
            &ctx.options.deployment.database_url,
            ctx.options.products,
            ctx.options.concurrency,
            Plan::For(phase),
        )
        .await?;
        let rate = ceiling.recorder.snapshot().accepted as f64 / ceiling.ran.elapsed.as_secs_f64();
        crate::charts::throughput(dir, &points, Some((ctx.options.concurrency, rate)))?;
    }
    Ok(())
}
