//! One order placed with span export on (the api binary, the workers in process): the api's and the workers'
//! spans reach the collector under the trace id of the caller's `traceparent`.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

#[path = "support/otlp.rs"]
mod otlp;

use common::domain::Role;
use common::testing::{TEST_JWT_SECRET, TestEnv, nats_url};
use std::time::Duration;
use tokio::process::{Child, Command};

fn spawn(binary: &str, args: &[&str], vars: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env_clear()
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// SIGTERM, the way Kubernetes stops a pod: the process drains and flushes its spans.
async fn stop(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
    assert!(sent.unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn an_orders_spans_from_api_and_workers_share_the_callers_trace() {
    let env = TestEnv::new().await;
    let (collector, mut received) = otlp::fake_collector().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http_addr = format!("127.0.0.1:{port}");
    let nats = nats_url();
    let common_vars = [
        ("DATABASE_URL", env.database_url.as_str()),
        ("NATS_URL", nats.as_str()),
        ("NATS_NAMESPACE", env.namespace.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ("RUST_LOG", "info"),
    ];
    let mut api_vars = common_vars.to_vec();
    api_vars.extend([
        ("JWT_SECRET", TEST_JWT_SECRET),
        ("HTTP_ADDR", http_addr.as_str()),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("COOKIE_SECURE", "false"),
    ]);
    let api = spawn(env!("CARGO_BIN_EXE_api"), &[], &api_vars);
    let base = format!("http://{http_addr}");
    let http = reqwest::Client::new();
    common::testing::eventually(Duration::from_secs(30), "api ready", || async {
        let res = http.get(format!("{base}/health/ready")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await;
    // The workers run in this process (their binary belongs to another package), exporting
    // to the same collector through the global subscriber, as the `workers` binary does.
    common::telemetry::init_exporting(
        "order-service-workers",
        common::config::LogFormat::Json,
        "info",
        Some(&collector),
    );
    let workers = workers::Workers::build(env.config(), workers::Kind::ALL.to_vec())
        .await
        .unwrap();
    let stop_workers = tokio_util::sync::CancellationToken::new();
    let workers = tokio::spawn(workers.run_until_stopped(stop_workers.clone()));

    // A customer and a product, straight into the database.
    let db = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let (user, session, product) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::now_v7(),
    );
    sqlx::query("INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, 'T', 'CLIENT', 'x')")
        .bind(user)
        .bind(format!("{}@example.com", user.simple()))
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, now() + interval '1 day')",
    )
    .bind(session)
    .bind(user)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO products (id, name, description, price, currency, stock, initial_stock) VALUES ($1, 'Mug', '', 1250, 'USD', 5, 5)")
        .bind(product)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let token =
        api::auth::token::TokenKeys::new(&common::config::SecretString::from(TEST_JWT_SECRET))
            .issue(user, Role::Client, session)
            .unwrap();

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let res = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .header("prefer", "wait=10")
        .json(&serde_json::json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["status"], "CONFIRMED");

    stop_workers.cancel();
    workers.await.unwrap().unwrap();
    tokio::task::spawn_blocking(common::otel::shutdown)
        .await
        .unwrap();
    stop(api).await;
    let mut exports = Vec::new();
    while let Ok(Some((path, body))) =
        tokio::time::timeout(Duration::from_millis(500), received.recv()).await
    {
        assert_eq!(path, "/v1/traces");
        exports.push(body);
    }
    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let has = |body: &[u8], needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    for service in ["order-service-api", "order-service-workers"] {
        assert!(
            exports
                .iter()
                .any(|b| has(b, service.as_bytes()) && has(b, &trace_bytes)),
            "{service} exported no span of the caller's trace ({} exports)",
            exports.len()
        );
    }
}
