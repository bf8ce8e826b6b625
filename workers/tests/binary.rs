//! The `workers` binary as ops run it: one kind or all, ready, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::testing::{Binary, TestEnv, free_port};
use std::process::Command;
use std::time::Duration;

/// Starts the `workers` binary with `args`, waits until it is ready and serves its metrics,
/// then checks that SIGTERM stops it cleanly.
async fn assert_runs_until_ready_and_stops_on_sigterm(args: &[&str]) {
    let env = TestEnv::new().await;
    let port = free_port();
    let workers = Binary::spawn(
        env.command(env!("CARGO_BIN_EXE_workers"))
            .args(args)
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
