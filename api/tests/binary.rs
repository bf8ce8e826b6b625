//! The `api` binary as ops run it: it starts, becomes ready, and stops cleanly on SIGTERM; a
//! burst of password work leaves its memory bounded.

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
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let readiness: serde_json::Value =
        common::testing::eventually(Duration::from_secs(60), "api ready", || async {
            let res = client.get(&url).send().await.ok()?;
            if res.status() != 200 {
                return None;
            }
            res.json().await.ok()
        })
        .await;
    // Ready means both dependencies were checked and answered.
    assert_eq!(readiness["status"], "ok", "{readiness}");
    assert_eq!(readiness["checks"]["postgres"], "ok", "{readiness}");
    assert_eq!(readiness["checks"]["nats"], "ok", "{readiness}");

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

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let child = Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .env("DATABASE_URL", &env.database_url)
        .env("NATS_URL", nats_url())
        .env("NATS_NAMESPACE", &env.namespace)
        .env("JWT_SECRET", common::testing::TEST_JWT_SECRET)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("REGISTER_IP_RATE_PER_MINUTE", "100000")
        .env("COOKIE_SECURE", "false")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    common::testing::eventually(Duration::from_secs(60), "api ready", || async {
        client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
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
    let peak = peak_rss_mib(child.0.id());
    eprintln!("answers {statuses:?}, peak RSS {peak} MiB");
    assert!(
        statuses.keys().all(|s| [200, 201, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains_key(&201) && statuses.contains_key(&200),
        "{statuses:?}"
    );
    assert!(peak < 128, "peak RSS {peak} MiB");
}
