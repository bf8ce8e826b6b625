//! The benchmark run: scenarios in order, then a plain-text summary.

use crate::ceiling;
use crate::driver::Plan;
use crate::rss::{self, Sampler};
use crate::scenarios::{self, Measured};
use crate::setup::{Api, http_client};
use crate::stats::ms;
use sqlx::postgres::PgPoolOptions;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    pub api_url: String,
    pub database_url: String,
    pub admin_email: String,
    pub admin_password: String,
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
    /// The api's `JWT_SECRET`: the synchronous baseline verifies the same tokens.
    pub jwt_secret: Option<String>,
    /// How long the soak runs, and from how many clients.
    pub soak: Duration,
    pub soak_clients: usize,
    /// NATS, and the deployment's namespace, for watching the consumers' pull requests.
    pub nats_url: String,
    pub nats_namespace: String,
}

/// Runs the chosen scenarios and returns the summary text.
pub async fn run(o: &Options) -> anyhow::Result<String> {
    let api = Arc::new(Api::new(
        &o.api_url,
        http_client(o.concurrency.max(o.flash_clients) * 2)?,
    ));
    api.wait_ready(Duration::from_secs(60)).await?;
    let admin = api.login(&o.admin_email, &o.admin_password).await?;
    let db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&o.database_url)
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
    let wants = |s: &str| o.scenarios.iter().any(|x| x == s);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "order service benchmark: {} clients, {} s per phase, api {}",
        o.concurrency,
        o.duration.as_secs(),
        o.api_url
    );

    if wants("place") {
        eprintln!(
            "place: registering {} customers, creating {} products",
            o.concurrency, o.products
        );
        let shop = scenarios::Shop {
            api: Arc::clone(&api),
            customers: Arc::new(api.register_customers(o.concurrency, "place").await?),
            products: Arc::new(
                api.create_products(&admin, o.products, 1_000_000_000, "place")
                    .await?,
            ),
        };
        // Warm connection pools and caches; not recorded.
        let _ = scenarios::place(
            &shop,
            &db,
            o.concurrency,
            Plan::For(Duration::from_secs(3)),
            o.wait,
            "warm-up",
        )
        .await?;
        // Table statistics as autovacuum keeps them in a running shop: plans that connections
        // cached while the order tables were empty would otherwise scan them whole.
        sqlx::query("ANALYZE").execute(&db).await?;
        let sampler = Sampler::start(processes.clone());
        let cpu = rss::CpuMeter::start(&processes);
        let peak = scenarios::place(
            &shop,
            &db,
            o.concurrency,
            Plan::For(o.duration),
            o.wait,
            "place",
        )
        .await?;
        let peaks = sampler.peaks();
        let cpu_place = cpu.report(peak.ran.elapsed, peak.stats.accepted);
        let postgres_place = cpu.ms_per("postgres", peak.stats.accepted);
        drop(sampler);
        let half_rate = (peak.accepted_per_sec() / 2.0).max(1.0);
        let cpu = rss::CpuMeter::start(&processes);
        let half = scenarios::place(
            &shop,
            &db,
            o.concurrency,
            Plan::Paced {
                rate: half_rate,
                duration: o.duration,
            },
            o.wait,
            "place @ half",
        )
        .await?;
        let cpu_half = cpu.report(half.ran.elapsed, half.stats.accepted);
        let ceiling = ceiling::run(
            &o.database_url,
            o.products,
            o.concurrency,
            Plan::For(o.duration),
        )
        .await?;
        let ceiling_stats = ceiling.recorder.snapshot();
        let synchronous = match &o.jwt_secret {
            Some(secret) => Some(
                crate::synchronous::run(
                    &shop,
                    &o.database_url,
                    secret,
                    o.products,
                    o.concurrency,
                    o.duration,
                )
                .await?,
            ),
            None => None,
        };
        let cpu_ceiling = &ceiling.cpu;
        let ceiling_rate = ceiling_stats.accepted as f64 / ceiling.ran.elapsed.as_secs_f64();

        let _ = writeln!(
            out,
            "\n== place (two-line orders, Prefer: wait={}, {} products)",
            o.wait, o.products
        );
        describe(&mut out, &peak, &["201", "202"]);
        if let Some(settled) = peak.settled_per_sec() {
            let _ = writeln!(
                out,
                "  vs ceiling          {:.2}x of {:.0} orders/s (target >= 0.5x)",
                settled / ceiling_rate,
                ceiling_rate
            );
            if let Some(sync) = &synchronous {
                let _ = writeln!(
                    out,
                    "  vs synchronous      {:.2}x of {:.0} orders/s (target >= 0.8x)",
                    settled / sync.accepted_per_sec().max(1e-9),
                    sync.accepted_per_sec()
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
        describe(&mut out, &half, &["201", "202"]);
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
            o.concurrency
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
        if let Some(sync) = &synchronous {
            let _ = writeln!(
                out,
                "\n== synchronous baseline (bare axum: same body and bearer token, the ceiling's transaction)"
            );
            describe(&mut out, sync, &["201"]);
            if let Some(ms) = sync.postgres_ms {
                let _ = writeln!(out, "  PostgreSQL CPU      {ms:.3} ms per order");
            }
        }
    }

    if wants("latency") || wants("soak") {
        let shop = scenarios::Shop {
            api: Arc::clone(&api),
            customers: Arc::new(
                api.register_customers(o.soak_clients.max(4), "steady")
                    .await?,
            ),
            products: Arc::new(
                api.create_products(&admin, o.products, 1_000_000_000, "steady")
                    .await?,
            ),
        };
        if wants("latency") {
            let phase = (o.duration / 2).max(Duration::from_secs(5));
            let _ = writeln!(
                out,
                "\n== latency (two-line orders, Prefer: wait={}, closed loop)",
                o.wait
            );
            for clients in [1, 4] {
                let s = crate::soak::latency(&shop, clients, phase, o.wait).await;
                let _ = writeln!(
                    out,
                    "  {clients} client{}           {} requests, p50 {}  p99 {}  max {} (target p50 <= 5 ms, p99 <= 15 ms); errors {}",
                    if clients == 1 { " " } else { "s" },
                    s.sent,
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    s.errors(&["201", "202"])
                );
            }
        }
        if wants("soak") {
            let soak = crate::soak::soak(
                &shop,
                o.soak_clients,
                o.soak,
                o.wait,
                &processes,
                Some((o.nats_url.as_str(), o.nats_namespace.as_str())),
            )
            .await?;
            let _ = writeln!(
                out,
                "\n== soak ({} clients, Prefer: wait={}, {} s, p50/p99 per {} s window)",
                o.soak_clients,
                o.wait,
                o.soak.as_secs(),
                crate::soak::WINDOW.as_secs()
            );
            soak.describe(&mut out);
        }
    }

    if wants("flash-sale") {
        eprintln!("flash-sale: registering {} customers", o.flash_clients);
        let customers = Arc::new(api.register_customers(o.flash_clients, "flash").await?);
        let product = api
            .create_products(&admin, 1, o.flash_stock, "flash")
            .await?
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no flash-sale product"))?;
        let flash = scenarios::flash_sale(
            Arc::clone(&api),
            &db,
            Arc::clone(&customers),
            product,
            o.flash_clients,
            o.flash_orders,
        )
        .await?;
        let stock: i32 = sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
            .bind(product)
            .fetch_one(&db)
            .await?;
        let _ = writeln!(
            out,
            "\n== flash-sale ({} orders for the last {} units, {} clients, answered 202)",
            o.flash_orders, o.flash_stock, o.flash_clients
        );
        describe(&mut out, &flash, &["202", "201"]);
        let _ = writeln!(
            out,
            "  confirmed           {} (target exactly {}), stock left {stock}",
            flash.confirmed, o.flash_stock
        );
        let _ = writeln!(
            out,
            "  all settled after   {} (target <= 5 s)",
            flash
                .settled_after
                .map(|d| format!("{:.2} s", d.as_secs_f64()))
                .unwrap_or_else(|| "not within 60 s".into())
        );
    }

    if wants("browse") {
        let products: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM products WHERE archived_at IS NULL LIMIT 500")
                .fetch_all(&db)
                .await
                .unwrap_or_default();
        let products = if products.is_empty() {
            api.create_products(&admin, o.products, 1000, "browse")
                .await?
        } else {
            products
        };
        let half = o.duration / 2;
        let cpu = rss::CpuMeter::start(&processes);
        let lists = crate::browse::browse_lists(Arc::clone(&api), o.concurrency, half).await;
        let cpu_lists = cpu.report(lists.ran.elapsed, lists.stats.accepted);
        let details = crate::browse::browse_details(
            Arc::clone(&api),
            Arc::new(products),
            o.concurrency,
            half,
        )
        .await;
        let (bare, size) = crate::browse::baseline(&api, o.concurrency, half).await?;
        let list_rps = lists.stats.accepted as f64 / lists.ran.elapsed.as_secs_f64();
        let bare_rps = bare.stats.accepted as f64 / bare.ran.elapsed.as_secs_f64();
        let _ = writeln!(out, "\n== browse (anonymous, {} clients)", o.concurrency);
        let _ = writeln!(out, "  list (filters, sorts, limit 20-50)");
        describe(&mut out, &lists, &["200"]);
        let _ = writeln!(out, "  CPU (per request)   {cpu_lists}");
        let _ = writeln!(out, "  detail");
        describe(&mut out, &details, &["200"]);
        let _ = writeln!(
            out,
            "  bare axum, same {size}-byte list page from a fixed buffer"
        );
        describe(&mut out, &bare, &["200"]);
        let _ = writeln!(
            out,
            "  list vs bare axum   {:.2}x (target >= 0.7x)",
            list_rps / bare_rps.max(1e-9)
        );
    }

    let mut hwm = Vec::new();
    for (name, pid) in &processes {
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

fn describe(out: &mut String, m: &Measured, ok: &[&str]) {
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
