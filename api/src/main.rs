//! `api [migrate]`: the HTTP front, or (with `migrate`) the once-per-release step that applies
//! migrations and provisions streams, then exits. Everything testable lives in the library;
//! this only wires it.

use std::process::ExitCode;

/// mimalloc returns freed memory to the system within milliseconds; glibc's malloc keeps each
/// thread's freed argon2 buffers (19 MiB a hash) resident in per-thread arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let migrate_only = match args.as_slice() {
        [] => false,
        [cmd] if cmd == "migrate" => true,
        _ => {
            eprintln!("usage: api [migrate]");
            return ExitCode::from(2);
        }
    };
    common::startup::serve("order-service-api", |config| run(config, migrate_only)).await
}

async fn run(config: common::Config, migrate_only: bool) -> ExitCode {
    if migrate_only {
        return match api::release::migrate(&config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "migration failed");
                eprintln!("migration failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let shutdown = common::shutdown::on_signal();
    let app = match api::Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "api failed to start");
            eprintln!("api failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown).await {
        Ok(()) => {
            tracing::info!("api stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "api server failed");
            ExitCode::FAILURE
        }
    }
}
