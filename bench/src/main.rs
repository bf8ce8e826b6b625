//! `bench run …` measures a running deployment; `bench drill …` is the fault drill's load
//! and checks (scripts/bench and scripts/chaos start the system and call these).

use bench::setup::Deployment;
use bench::{drill, run};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Benchmarks and fault drills of the order service")]
struct Cli {
    /// Base URL of the api.
    #[arg(
        long,
        env = "BENCH_API_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    api_url: String,
    /// The deployment's database (for settlement checks, the ceiling and the drill's checks).
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    #[arg(long, env = "ADMIN_EMAIL", global = true)]
    admin_email: Option<String>,
    #[arg(long, env = "ADMIN_PASSWORD", global = true, hide_env_values = true)]
    admin_password: Option<String>,
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    nats_url: String,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run benchmark scenarios and print a summary.
    Run {
        /// Comma-separated: place (with the ceiling and the synchronous baseline), scaling
        /// (place at 1 to 64 clients), latency (with the synchronous baseline at 1 and 4
        /// clients), timeline (one order's steps, per hop), flash-sale, browse, soak, webhooks,
        /// replicas (needs --replica-url and --replica-pid; not in the default set), reads
        /// (every ADMIN and customer read on a small store, then on `--reads-orders`; runs
        /// first when chosen, so the other scenarios run against the loaded store).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "place,scaling,timeline,latency,flash-sale,browse,soak,webhooks"
        )]
        scenarios: Vec<String>,
        /// Concurrent clients for place, the ceiling and browse.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds per measured phase (browse splits it between list, detail and baseline).
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Size of the place catalogue.
        #[arg(long, default_value_t = 300)]
        products: usize,
        /// `Prefer: wait=N` sent with place orders.
        #[arg(long, default_value_t = 5)]
        wait: u64,
        #[arg(long, default_value_t = 10_000)]
        flash_orders: u64,
        #[arg(long, default_value_t = 100)]
        flash_stock: i64,
        #[arg(long, default_value_t = 64)]
        flash_clients: usize,
        /// pid of the api process (peak memory).
        #[arg(long)]
        api_pid: Option<u32>,
        /// pids of worker processes (peak memory); repeatable.
        #[arg(long)]
        workers_pid: Vec<u32>,
        /// Base URL of another api replica of the same deployment (the replicas scenario);
        /// repeatable, in the order of --replica-pid.
        #[arg(long)]
        replica_url: Vec<String>,
        /// pid of that replica; repeatable.
        #[arg(long)]
        replica_pid: Vec<u32>,
        /// The api's JWT_SECRET, for the synchronous baseline (skipped without it).
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
        /// Seconds of the soak scenario (ten minutes: the soak its targets are stated for).
        #[arg(long, default_value_t = 600)]
        soak_secs: u64,
        /// Clients of the soak scenario.
        #[arg(long, default_value_t = 8)]
        soak_clients: usize,
        /// Write SVG charts of the run into this directory.
        #[arg(long, env = "BENCH_CHARTS")]
        charts: Option<std::path::PathBuf>,
        /// The deployment's NATS namespace (the soak watches its consumers).
        #[arg(long, env = "NATS_NAMESPACE", default_value = "")]
        nats_namespace: String,
        /// Orders of the reads scenario's small store.
        #[arg(long, default_value_t = 2_000)]
        reads_small: i64,
        /// Orders of the reads scenario's large store (bulk-loaded through SQL).
        #[arg(long, default_value_t = 2_000_000)]
        reads_orders: i64,
    },
    /// Bulk-load a store's history through SQL: orders with their customers, lines,
    /// timelines, payments, refunds and reservations, over a year up to now.
    LoadOrders {
        #[arg(long, default_value_t = 2_000_000)]
        orders: i64,
        /// Currency of the loaded catalogue (the deployment's STORE_CURRENCY).
        #[arg(long, env = "STORE_CURRENCY", default_value = common::config::DEFAULT_STORE_CURRENCY)]
        currency: String,
    },
    /// Place orders for a while, then check every accepted order settled exactly once and stock
    /// is conserved; exits 1 on any violation.
    Drill {
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 40)]
        duration: u64,
        #[arg(long, default_value_t = 40)]
        products: usize,
        /// Stock of each product: low enough that products sell out (orders refused at once
        /// and, racing for the last units, rejected), high enough that placements keep
        /// crossing the bus while the faults strike.
        #[arg(long, default_value_t = 4_000)]
        stock: i64,
        /// How long to wait for accepted orders to settle after the load.
        #[arg(long, default_value_t = 120)]
        settle_timeout: u64,
    },
    /// Delete every stream of a NATS namespace (a fresh start for the next run).
    PurgeNamespace {
        #[arg(long)]
        namespace: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // The HTTP clients' TLS (rustls) uses ring, as the services do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Command::PurgeNamespace { namespace } = &cli.command {
        return match bench::purge_namespace(&cli.nats_url, namespace).await {
            Ok(n) => {
                eprintln!("deleted {n} streams of namespace {namespace}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("purge failed: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::LoadOrders { orders, currency } = &cli.command {
        let Some(url) = &cli.database_url else {
            eprintln!("DATABASE_URL is required (flag or environment)");
            return ExitCode::from(2);
        };
        let loaded = match sqlx::PgPool::connect(url).await {
            Ok(db) => match bench::load::orders(&db, *orders, currency).await {
                Ok(l) => bench::load::reconciliation_cost(&db).await.map(|c| (l, c)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        };
        return match loaded {
            Ok((l, (first, steady))) => {
                let rows: Vec<String> = l
                    .rows
                    .iter()
                    .map(|(t, n, d)| format!("{t} {n} ({:.1} s)", d.as_secs_f64()))
                    .collect();
                println!(
                    "loaded {} orders (tag {}) in {:.1} s: {}",
                    l.orders,
                    l.tag,
                    l.elapsed.as_secs_f64(),
                    rows.join(", ")
                );
                println!(
                    "reconciliation: {:.1} ms right after the load (reads each loaded order once), \
                     then {:.1} ms with nothing changed",
                    first.as_secs_f64() * 1e3,
                    steady.as_secs_f64() * 1e3
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("load failed: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let (Some(database_url), Some(admin_email), Some(admin_password)) =
        (cli.database_url, cli.admin_email, cli.admin_password)
    else {
        eprintln!(
            "DATABASE_URL, ADMIN_EMAIL and ADMIN_PASSWORD are required (flags or environment)"
        );
        return ExitCode::from(2);
    };
    let deployment = Deployment {
        api_url: cli.api_url,
        database_url,
        admin_email,
        admin_password,
    };
    match cli.command {
        Command::Run {
            scenarios,
            concurrency,
            duration,
            products,
            wait,
            flash_orders,
            flash_stock,
            flash_clients,
            api_pid,
            workers_pid,
            replica_url,
            replica_pid,
            jwt_secret,
            soak_secs,
            soak_clients,
            nats_namespace,
            charts,
            reads_small,
            reads_orders,
        } => {
            let options = run::Options {
                deployment,
                scenarios,
                concurrency,
                duration: Duration::from_secs(duration.clamp(1, 120)),
                products: products.max(2),
                wait,
                flash_orders,
                flash_stock,
                flash_clients,
                api_pid,
                workers_pids: workers_pid,
                replicas: replica_url.into_iter().zip(replica_pid).collect(),
                jwt_secret,
                soak: Duration::from_secs(soak_secs.clamp(10, 3600)),
                soak_clients: soak_clients.max(1),
                nats_url: cli.nats_url,
                nats_namespace,
                charts,
                reads_small,
                reads_orders,
            };
            match run::run(&options).await {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Drill {
            concurrency,
            duration,
            products,
            stock,
            settle_timeout,
        } => {
            let options = drill::Options {
                deployment,
                concurrency,
                duration: Duration::from_secs(duration.clamp(1, 600)),
                products: products.max(2),
                stock,
                settle_timeout: Duration::from_secs(settle_timeout),
            };
            match drill::run(&options).await {
                Ok((summary, verdict)) => {
                    println!("{summary}\n{verdict}");
                    if verdict.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("drill failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::PurgeNamespace { .. } | Command::LoadOrders { .. } => ExitCode::SUCCESS,
    }
}
