//! The `workers` binary as ops run it: one kind or all, ready, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::testing::{TestEnv, nats_url};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn run_until_ready_then_terminate(args: &[&str]) {
    let env = TestEnv::new().await;
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_workers"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &env.database_url)
        .env("NATS_URL", nats_url())
        .env("NATS_NAMESPACE", &env.namespace)
        .env("WORKER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "workers did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit, got {exit}");
}

#[tokio::test]
async fn all_worker_kinds_run_and_stop_cleanly_on_sigterm() {
    run_until_ready_then_terminate(&[]).await;
}

#[tokio::test]
async fn one_worker_kind_runs_alone() {
    run_until_ready_then_terminate(&["inventory"]).await;
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
