//! `api migrate`, the once-per-release step run by the Kubernetes migration Job.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::testing::{TestEnv, nats_url};
use std::process::Command;

#[tokio::test]
async fn api_migrate_applies_the_schema_provisions_the_streams_and_exits() {
    let env = TestEnv::new().await;

    // No JWT_SECRET: the release step issues no tokens and must not need one.
    let out = Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("migrate")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", &env.database_url)
        .env("NATS_URL", nats_url())
        .env("NATS_NAMESPACE", &env.namespace)
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
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
    for stream in ["ORDERS_CMD", "INVENTORY_CMD", "EVENTS", "DEAD_LETTERS"] {
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: api [migrate]"));
}

/// A stand-in OTLP/HTTP collector: answers 200 to every request and hands back (path, body).
async fn fake_collector() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if data.len() < end + 4 + length {
                        continue;
                    }
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let body = data[end + 4..end + 4 + length].to_vec();
                    let _ = tx.send((path, body));
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    data.clear();
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn spans_are_exported_over_otlp_when_an_endpoint_is_configured() {
    let env = TestEnv::new().await;
    let (collector, mut received) = fake_collector().await;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("migrate")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", &env.database_url)
        .env("NATS_URL", nats_url())
        .env("NATS_NAMESPACE", &env.namespace)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .stdout(std::process::Stdio::null())
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
