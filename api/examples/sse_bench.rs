//! Measures the order event streams (SSE) of a running api: how much memory idle streams cost
//! (so how many one api holds within 64 MiB), the delay from a status change's commit to its
//! event on a stream, and how soon the memory is back once the streams close. `scripts/sse-bench` builds and starts everything and runs this; it is
//! not a test.
//!
//! Environment: `API_URL`, `API_PID` (whose resident memory is read from /proc), `DATABASE_URL`
//! (the api's database, to create accounts and sessions), `JWT_SECRET` (the api's, to sign
//! their tokens), `STREAMS` (idle streams to open, default 19 000: each costs a descriptor on
//! both sides) and `CHANGES` (status changes timed, default 200).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement: fail loudly

use api::auth::token::TokenKeys;
use common::config::SecretString;
use common::domain::Role;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

const BUDGET_MIB: f64 = 64.0;
/// Streams held by one account (the api runs with `SSE_STREAMS_PER_USER` above this).
const PER_ACCOUNT: usize = 1000;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is required"))
}

fn rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("api process");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// Creates an account with a live session and returns its id and an access token.
async fn account(db: &sqlx::PgPool, keys: &TokenKeys, role: Role) -> (Uuid, String) {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, 'Bench', $3::user_role, 'none')",
    )
    .bind(id)
    .bind(format!("{}@bench.example", id.simple()))
    .bind(role.as_str())
    .execute(db)
    .await
    .unwrap();
    let session = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, now() + interval '1 day')",
    )
    .bind(session)
    .bind(id)
    .execute(db)
    .await
    .unwrap();
    (id, keys.issue(id, role, session).unwrap())
}

/// Opens `GET path` as a raw HTTP/1.1 stream and waits for the stream's first bytes.
async fn open_idle(addr: &str, token: &str, path: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("retry:") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    conn
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    common::startup::install_tls_provider();
    let api_url = var("API_URL");
    let addr = api_url.trim_start_matches("http://").to_owned();
    let pid = var("API_PID");
    let db = sqlx::PgPool::connect(&var("DATABASE_URL")).await.unwrap();
    let keys = TokenKeys::new(&SecretString::from(var("JWT_SECRET")));
    let streams: usize = std::env::var("STREAMS").map_or(19_000, |v| v.parse().unwrap());
    let changes: usize = std::env::var("CHANGES").map_or(200, |v| v.parse().unwrap());

    // 1. Idle streams: resident memory of the api as they are opened.
    let baseline = rss_mib(&pid);
    println!("api resident memory before any stream: {baseline:.1} MiB");
    let mut held = Vec::with_capacity(streams);
    let mut token = String::new();
    let started = Instant::now();
    while held.len() < streams {
        if held.len() % PER_ACCOUNT == 0 {
            token = account(&db, &keys, Role::Client).await.1;
        }
        let batch = (streams - held.len()).min(PER_ACCOUNT - held.len() % PER_ACCOUNT);
        let opened = futures::stream::iter(0..batch)
            .map(|_| open_idle(&addr, &token, "/api/v1/orders/events"))
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        held.extend(opened);
        if held.len() % 5000 == 0 || held.len() == streams {
            println!(
                "{:>6} idle streams: {:.1} MiB resident",
                held.len(),
                rss_mib(&pid)
            );
        }
    }
    let with_streams = rss_mib(&pid);
    let per_stream_kib = (with_streams - baseline) * 1024.0 / held.len() as f64;
    let within_budget = ((BUDGET_MIB - baseline) * 1024.0 / per_stream_kib).floor();
    println!(
        "{} streams opened in {:.1} s; {per_stream_kib:.1} KiB each; within {BUDGET_MIB} MiB \
         resident the api holds about {within_budget:.0} idle streams",
        held.len(),
        started.elapsed().as_secs_f64()
    );

    // 2. Delay from a change's commit to its event, with the idle streams still open.
    let client = reqwest::Client::new();
    let (_, admin) = account(&db, &keys, Role::Admin).await;
    let (_, customer) = account(&db, &keys, Role::Client).await;
    let product = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO products (id, name, description, price, currency, stock, initial_stock)
         VALUES ($1, 'Bench lamp', '', 100, 'USD', 1000000, 1000000)",
    )
    .bind(product)
    .execute(&db)
    .await
    .unwrap();
    let mut from_commit = Vec::with_capacity(changes);
    let mut from_request = Vec::with_capacity(changes);
    for _ in 0..changes {
        let order: Value = client
            .post(format!("{api_url}/api/v1/orders"))
            .bearer_auth(&customer)
            .header("prefer", "wait=10")
            .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(order["status"], "CONFIRMED", "{order}");
        let id = order["id"].as_str().unwrap().to_owned();
        let res = client
            .get(format!("{api_url}/api/v1/orders/{id}/events"))
            .bearer_auth(&customer)
            .send()
            .await
            .unwrap();
        let mut body = res.bytes_stream();
        let mut text = String::new();
        // The opening `order` event.
        while !text.contains("event: order") || !text.ends_with("\n\n") {
            text.push_str(&String::from_utf8_lossy(
                &body.next().await.unwrap().unwrap(),
            ));
        }
        let asked = Instant::now();
        let patch = client
            .patch(format!("{api_url}/api/v1/orders/{id}/status"))
            .bearer_auth(&admin)
            .json(&json!({"status": "PAID"}))
            .send();
        let (_, event) = tokio::join!(patch, async {
            let mut text = String::new();
            while !text.contains("event: status_changed") || !text.ends_with("\n\n") {
                text.push_str(&String::from_utf8_lossy(
                    &body.next().await.unwrap().unwrap(),
                ));
            }
            (chrono::Utc::now(), Instant::now(), text)
        });
        let (heard_at, heard, text) = event;
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("data line");
        let change: Value = serde_json::from_str(data).unwrap();
        let at: chrono::DateTime<chrono::Utc> = change["at"].as_str().unwrap().parse().unwrap();
        from_commit.push((heard_at - at).num_microseconds().unwrap() as f64 / 1000.0);
        from_request.push(heard.duration_since(asked).as_secs_f64() * 1000.0);
    }
    for (what, mut samples) in [
        (
            "timeline entry written (in the worker's transaction) -> event on the stream",
            from_commit,
        ),
        ("PATCH sent -> event on the stream", from_request),
    ] {
        samples.sort_by(f64::total_cmp);
        println!(
            "{what} ({} changes, {} idle streams open): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            samples.len(),
            held.len(),
            percentile(&samples, 0.5),
            percentile(&samples, 0.95),
            percentile(&samples, 0.99),
            samples.last().copied().unwrap_or_default(),
        );
    }
    // 3. Memory after the streams close: how soon the api's resident memory is back near its
    // level before them.
    let open = rss_mib(&pid);
    drop(held);
    let closed = Instant::now();
    let mut back_after = None;
    let mut line = Vec::new();
    for second in 1..=90u64 {
        tokio::time::sleep_until((closed + Duration::from_secs(second)).into()).await;
        let now = rss_mib(&pid);
        if back_after.is_none() && now <= baseline * 1.2 {
            back_after = Some(second);
        }
        if [1, 5, 10, 30, 60, 90].contains(&second) {
            line.push(format!("{second} s {now:.1} MiB"));
        }
    }
    println!(
        "after the {} streams closed (before them {baseline:.1} MiB, open {open:.1} MiB): {}; \
         within 20% of before {}",
        streams,
        line.join(", "),
        back_after.map_or("not within 90 s".to_owned(), |s| format!("after {s} s")),
    );
}
