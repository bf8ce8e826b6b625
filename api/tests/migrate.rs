//! `api migrate`, the once-per-release step run by the Kubernetes migration Job.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::testing::{TestEnv, nats_url};
use std::process::{Command, Stdio};

#[path = "support/otlp.rs"]
mod otlp;
use otlp::fake_collector;

#[tokio::test]
async fn api_migrate_applies_the_schema_provisions_the_streams_and_exits() {
    let env = TestEnv::new().await;

    // No JWT_SECRET: the release step issues no tokens and must not need one.
    let out = env
        .command(env!("CARGO_BIN_EXE_api"))
        .arg("migrate")
        .current_dir(std::env::temp_dir())
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run api migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("streams provisioned"), "{stdout}");

    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, common::db::MIGRATOR.iter().count());
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "no admin is seeded by the release step");
    pool.close().await;

    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
    for stream in [
        "ORDERS_CMD",
        "INVENTORY_CMD",
        "PAYMENTS_CMD",
        "EVENTS",
        "DEAD_LETTERS",
        "WEBHOOKS",
    ] {
        let name = format!("{}_{stream}", env.namespace);
        js.get_stream(&name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn an_unknown_subcommand_is_refused_with_the_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("migrat")
        .env_clear()
        .output()
        .expect("run api");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: api [migrate | openapi]"));
}

#[tokio::test]
async fn spans_are_exported_over_otlp_when_an_endpoint_is_configured() {
    let env = TestEnv::new().await;
    let (collector, mut received) = fake_collector().await;

    let mut child = tokio::process::Command::from(env.command(env!("CARGO_BIN_EXE_api")))
        .arg("migrate")
        .current_dir(std::env::temp_dir())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("RUST_LOG", "info")
        .spawn()
        .expect("run api migrate");
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");

    let (path, body) = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
        .await
        .expect("spans exported before the process exited")
        .unwrap();
    assert_eq!(path, "/v1/traces");
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"order-service-api"), "the service is named");
    assert!(contains(b"migrate"), "the migration span is exported");
}
