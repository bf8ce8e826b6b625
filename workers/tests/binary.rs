//! The `workers` binary as ops run it: one kind or all, ready, a clean stop on SIGTERM, and an
//! HTTP port that closes connections that never finish their request's headers.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::testing::{Binary, TestEnv, free_port};
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts the `workers` binary with `args` and `vars` on a free port; returns it and the port
/// once it is ready.
async fn ready_workers(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> (Binary, u16) {
    let port = free_port();
    let workers = Binary::spawn(
        env.command(env!("CARGO_BIN_EXE_workers"))
            .args(args)
            .envs(vars.iter().copied())
            .env("WORKER_HTTP_ADDR", format!("127.0.0.1:{port}")),
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    common::testing::eventually(Duration::from_secs(60), "workers ready", || async {
        client
            .get(&url)
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
    (workers, port)
}

/// Starts the `workers` binary with `args`, waits until it is ready (with transparent huge
/// pages off) and serves its metrics, then checks that SIGTERM stops it cleanly.
async fn assert_runs_until_ready_and_stops_on_sigterm(args: &[&str]) {
    let env = TestEnv::new().await;
    let (workers, port) = ready_workers(&env, args, &[]).await;
    workers.assert_huge_pages_off();
    let client = reqwest::Client::new();
    let metrics = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    let exit = workers.terminate(Duration::from_secs(20)).await;
    assert!(exit.success(), "clean exit, got {exit}");
}

#[tokio::test]
async fn all_worker_kinds_run_and_stop_cleanly_on_sigterm() {
    assert_runs_until_ready_and_stops_on_sigterm(&[]).await;
}

#[tokio::test]
async fn one_worker_kind_runs_alone() {
    assert_runs_until_ready_and_stops_on_sigterm(&["inventory"]).await;
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_headers_is_closed() {
    let env = TestEnv::new().await;
    let (workers, port) = ready_workers(
        &env,
        &["inventory"],
        &[("HTTP_HEADER_READ_TIMEOUT_SECS", "1")],
    )
    .await;
    let mut half_sent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    half_sent.write_all(b"GET /metr").await.unwrap();

    // Closed by the server without an answer (an end of stream or a reset); without the
    // bound it would wait for ever.
    let mut received = Vec::new();
    let _closed = tokio::time::timeout(
        Duration::from_secs(30),
        half_sent.read_to_end(&mut received),
    )
    .await
    .expect("the half-sent request's connection is closed");
    assert!(
        !String::from_utf8_lossy(&received).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&received)
    );

    let exit = workers.terminate(Duration::from_secs(20)).await;
    assert!(exit.success(), "clean exit, got {exit}");
}

#[test]
fn an_unknown_worker_kind_is_refused_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_workers"))
        .arg("payments")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown worker kind") && stderr.contains("usage"),
        "{stderr}"
    );
}
