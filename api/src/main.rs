//! `api [migrate | openapi]`: the HTTP front; with `migrate`, the once-per-release step that
//! applies migrations and provisions streams, then exits; with `openapi`, the OpenAPI document
//! the api serves, printed (frontends generate their types from it). Everything testable lives
//! in the library; this only wires it.

use std::io::Write;
use std::process::ExitCode;

/// jemalloc, with its background thread: memory freed and left idle (an argon2 hash's 19 MiB,
/// the buffers of closed event streams) goes back to the system within seconds, whether or not
/// the process allocates again (glibc's malloc keeps it in per-thread arenas).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let migrate_only = match args.as_slice() {
        [] => false,
        [cmd] if cmd == "migrate" => true,
        [cmd] if cmd == "openapi" => return print_openapi(),
        _ => {
            eprintln!("usage: api [migrate | openapi]");
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

/// Prints the OpenAPI document; needs no configuration but `COOKIE_SECURE`, which names the
/// cookies in it.
fn print_openapi() -> ExitCode {
    let cookie_secure = match common::Config::cookie_secure_from_env() {
        Ok(secure) => secure,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let printed = api::app::openapi(cookie_secure)
        .to_pretty_json()
        .map_err(|e| e.to_string())
        .and_then(|json| writeln!(std::io::stdout().lock(), "{json}").map_err(|e| e.to_string()));
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot print the OpenAPI document: {e}");
            ExitCode::FAILURE
        }
    }
}
