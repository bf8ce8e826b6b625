//! The `api` binary as ops run it: it starts with transparent huge pages off, becomes ready,
//! and stops cleanly on SIGTERM; a burst of password work leaves its memory bounded.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::testing::{Binary, TestEnv, free_port};
use std::process::Command;
use std::time::Duration;

/// The `api` binary against `env`, listening on `port` (its metrics on any free port).
fn api(env: &TestEnv, port: u16) -> Command {
    let mut command = env.command(env!("CARGO_BIN_EXE_api"));
    command
        .env("JWT_SECRET", common::testing::TEST_JWT_SECRET)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", "127.0.0.1:0");
    command
}

/// Waits (at most a minute) until the api on `port` answers ready; its readiness report.
async fn ready(client: &reqwest::Client, port: u16) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}/health/ready");
    common::testing::eventually(Duration::from_secs(60), "api ready", || async {
        let res = client.get(&url).send().await.ok()?;
        if res.status() != 200 {
            return None;
        }
        res.json().await.ok()
    })
    .await
}

#[tokio::test]
async fn the_api_binary_becomes_ready_and_exits_cleanly_on_sigterm() {
    let env = TestEnv::new().await;
    let port = free_port();
    let server = Binary::spawn(api(&env, port).env("LOG_FORMAT", "json"));

    let readiness = ready(&reqwest::Client::new(), port).await;
    // Ready means both dependencies were checked and answered.
    assert_eq!(readiness["status"], "ok", "{readiness}");
    assert_eq!(readiness["checks"]["postgres"], "ok", "{readiness}");
    assert_eq!(readiness["checks"]["nats"], "ok", "{readiness}");
    // Freed memory stays given back (common::startup).
    server.assert_huge_pages_off();

    let exit = server.terminate(Duration::from_secs(20)).await;
    assert!(exit.success(), "clean exit, got {exit}");
}

/// Peak resident memory of process `pid` (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test]
async fn two_hundred_concurrent_registrations_and_logins_leave_the_api_under_128_mib() {
    let env = TestEnv::new().await;
    let port = free_port();
    // Registrations are not limited here, so every request reaches password hashing.
    let child = Binary::spawn(
        api(&env, port)
            .env("REGISTER_IP_RATE_PER_MINUTE", "100000")
            .env("COOKIE_SECURE", "false")
            .env("RUST_LOG", "error"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    ready(&client, port).await;
    let password = "correct horse battery staple";
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({"email": "ann@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    let requests = (0..200).flat_map(|n| {
        let register = client
            .post(format!("{base}/api/v1/auth/register"))
            .json(
                &serde_json::json!({"email": format!("user{n}@example.com"), "password": password}),
            )
            .send();
        let login = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "ann@example.com", "password": password}))
            .send();
        [Box::pin(register), Box::pin(login)]
    });
    let answers = futures::future::join_all(requests).await;

    let mut statuses = std::collections::BTreeMap::new();
    for answer in answers {
        let status = answer.expect("every request is answered").status().as_u16();
        *statuses.entry(status).or_insert(0) += 1;
    }
    let peak = peak_rss_mib(child.id());
    eprintln!("answers {statuses:?}, peak RSS {peak} MiB");
    assert!(
        statuses.keys().all(|s| [200, 201, 429, 503].contains(s)),
        "{statuses:?}"
    );
    // Which requests win the few hashing slots is up to the scheduler: some do, of either kind.
    assert!(
        statuses.contains_key(&201) || statuses.contains_key(&200),
        "{statuses:?}"
    );
    assert!(peak < 128, "peak RSS {peak} MiB");
    let after = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ann@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the slots come back after the burst");
}
