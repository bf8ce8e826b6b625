//! The `api` binary as ops run it: it starts, becomes ready, and stops cleanly on SIGTERM.

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

#[tokio::test]
async fn the_api_binary_becomes_ready_and_exits_cleanly_on_sigterm() {
    let env = TestEnv::new().await;
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .env("DATABASE_URL", &env.database_url)
        .env("NATS_URL", nats_url())
        .env("NATS_NAMESPACE", &env.namespace)
        .env("JWT_SECRET", common::testing::TEST_JWT_SECRET)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let ready = common::testing::eventually(Duration::from_secs(60), "api ready", || async {
        client
            .get(&url)
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
    assert_eq!(ready, ());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "api did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit, got {exit}");
}
