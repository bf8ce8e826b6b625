//! `workers [inventory|orders|webhooks]`: runs the chosen worker kinds, or all of them (the
//! webhooks kind only when `WEBHOOK_ENCRYPTION_KEY` is set; asked for by name without it, the
//! process refuses to start).

use std::process::ExitCode;
use workers::{Kind, Workers};

/// jemalloc, with its background thread: memory freed and left idle (an argon2 hash's 19 MiB,
/// the buffers of closed event streams) goes back to the system within seconds, whether or not
/// the process allocates again (glibc's malloc keeps it in per-thread arenas).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let kinds: Result<Vec<Kind>, String> = std::env::args().skip(1).map(|a| a.parse()).collect();
    let kinds = match kinds {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}\nusage: workers [inventory] [orders] [webhooks]");
            return ExitCode::from(2);
        }
    };
    common::startup::serve("order-service-workers", |config| {
        let kinds = if kinds.is_empty() {
            Kind::every(&config)
        } else {
            kinds
        };
        run(config, kinds)
    })
    .await
}

async fn run(config: common::Config, kinds: Vec<Kind>) -> ExitCode {
    let shutdown = common::shutdown::on_signal();
    let workers = match Workers::build(config, kinds).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "workers failed to start");
            eprintln!("workers failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match workers.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "workers failed");
            ExitCode::FAILURE
        }
    }
}
