//! `latency` (a few clients, nothing queued) and `soak` (a steady load for minutes).

use super::shared::Run;
use crate::stats::ms;
use crate::synchronous::Work;
use std::fmt::Write as _;
use std::time::Duration;
pub async fn section(ctx: &Run, out: &mut String, latency: bool, soak: bool) -> anyhow::Result<()> {
    let shop = ctx.shop(ctx.options.soak_clients.max(4), "steady").await?;
    if latency {
        let phase = (ctx.options.duration / 2).max(Duration::from_secs(5));
        let _ = writeln!(
            out,
            "\n== latency (two-line orders, Prefer: wait={}, closed loop)",
            ctx.options.wait
        );
        for clients in [1, 4] {
            let s = crate::soak::latency(&shop, clients, phase, ctx.options.wait).await;
            let _ = writeln!(
                out,
                "  {clients} client{}           {} requests, p50 {}  p99 {}  max {} (target p99 <= 15 ms); errors {}",
                if clients == 1 { " " } else { "s" },
                s.sent,
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                s.errors(&["201", "202"])
            );
            // The synchronous baselines from as many clients, right after: the same run's
            // yardsticks for the p50. The ceiling's transaction is the target's; the inventory
            // worker's own, run synchronously, tells what of the rest the bus costs and what
            // the order's records cost.
            if let Some(secret) = &ctx.options.jwt_secret {
                for (work, label, target) in [
                    (Work::Ceiling, "synchronous      ", " (target <= 1.2x)"),
                    (Work::Recorded, "same transaction ", ""),
                ] {
                    let sync = crate::synchronous::run(
                        work,
                        &shop,
                        &ctx.options.deployment.database_url,
                        secret,
                        ctx.options.products,
                        clients,
                        phase,
                    )
                    .await?;
                    let b = &sync.stats;
                    let _ = writeln!(
                        out,
                        "    {label} {} requests, p50 {}  p99 {}; place p50 = {:.2}x of it{target}",
                        b.sent,
                        ms(b.p50),
                        ms(b.p99),
                        s.p50.as_secs_f64() / b.p50.as_secs_f64().max(1e-9)
                    );
                }
            }
        }
    }
    if soak {
        let soak = crate::soak::soak(
            &shop,
            ctx.options.soak_clients,
            ctx.options.soak,
            ctx.options.wait,
            &ctx.processes,
            Some((
                ctx.options.nats_url.as_str(),
                ctx.options.nats_namespace.as_str(),
            )),
        )
        .await?;
        let _ = writeln!(
            out,
            "\n== soak ({} clients, Prefer: wait={}, {} s, p50/p99 per {} s window)",
            ctx.options.soak_clients,
            ctx.options.wait,
            ctx.options.soak.as_secs(),
            crate::soak::WINDOW.as_secs()
        );
        soak.describe(out);
    }
    Ok(())
}
