//! The short fault drill: orders placed over HTTP while the workers are killed and restarted
//! and their PostgreSQL and NATS connections are cut, while staff take some of them through
//! the steps after the sale, then the same checks as scripts/chaos.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::domain::Role;
use common::testing::{TcpProxy, TestEnv, nats_url, socket_addr_of};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A worker process stand-in: every worker kind, running until aborted.
async fn start_workers(config: common::Config) -> JoinHandle<anyhow::Result<()>> {
    let workers = workers::Workers::build(config, workers::Kind::ALL.to_vec())
        .await
        .expect("workers build");
    tokio::spawn(workers.run_until_stopped(CancellationToken::new()))
}

async fn create_customer(state: &api::state::AppState) -> String {
    create_account(state, Role::Client).await
}

/// An account of `role` with a live session; returns its access token.
async fn create_account(state: &api::state::AppState, role: Role) -> String {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, 'Drill', $3::user_role, 'not-a-login')",
    )
    .bind(id)
    .bind(format!("{}@example.com", id.simple()))
    .bind(role.as_str())
    .execute(&state.db)
    .await
    .unwrap();
    let session = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, now() + interval '1 day')",
    )
    .bind(session)
    .bind(id)
    .execute(&state.db)
    .await
    .unwrap();
    state.tokens.issue(id, role, session).unwrap()
}

async fn create_product(state: &api::state::AppState, i: usize, stock: i32) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO products (id, name, description, price, currency, stock, initial_stock)
         VALUES ($1, $2, '', 250, 'USD', $3, $3)",
    )
    .bind(id)
    .bind(format!("drill product {i}"))
    .bind(stock)
    .execute(&state.db)
    .await
    .unwrap();
    id
}

/// Sum of the workers' `message_redeliveries_total` (they share this process's recorder).
fn redeliveries() -> u64 {
    common::metrics::install()
        .render()
        .lines()
        .filter(|l| l.starts_with("message_redeliveries_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_order_settles_exactly_once_while_workers_die_and_connections_drop() {
    // Arrange: the api talks to the servers directly; the workers go through proxies.
    let env = TestEnv::new().await;
    let pg_proxy = TcpProxy::start(socket_addr_of(&env.database_url)).await;
    let nats_proxy = TcpProxy::start(socket_addr_of(&nats_url())).await;
    // Six customers hold every order they place unpaid: no bound on unpaid orders.
    let unbounded = ("MAX_UNPAID_ORDERS_PER_USER", "0");
    let worker_config = env.config_with(&[
        (
            "DATABASE_URL",
            &format!(
                "postgres://postgres@{}/{}",
                pg_proxy.addr, env.database_name
            ),
        ),
        ("NATS_URL", &format!("nats://{}", nats_proxy.addr)),
        unbounded,
    ]);
    let app = api::Application::build(env.config_with(&[unbounded]))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let mut products = Vec::new();
    for i in 0..8 {
        products.push(create_product(&state, i, 40).await);
    }
    let products = Arc::new(products);
    let mut tokens = Vec::new();
    for _ in 0..6 {
        tokens.push(create_customer(&state).await);
    }
    let mut workers = start_workers(worker_config.clone()).await;

    // Act: six clients order two lines at a time for a few seconds while the faults happen,
    // and two staff members take every fifth accepted order through the steps after the sale,
    // each its own share.
    let accepted = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let load_for = Duration::from_secs(6);
    let started = Instant::now();
    let staff = bench::after_sale::Staff {
        base: base.clone(),
        http: reqwest::Client::new(),
        token: create_account(&state, Role::Admin).await,
    };
    let after_sale = tokio::spawn(bench::after_sale::drive(
        staff,
        Arc::clone(&accepted),
        5,
        2,
        started + load_for,
    ));
    let mut clients = Vec::new();
    for (c, token) in tokens.into_iter().enumerate() {
        let (base, products, accepted) =
            (base.clone(), Arc::clone(&products), Arc::clone(&accepted));
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = c;
            while started.elapsed() < load_for {
                i += 7;
                let (a, b) = (i % products.len(), (i / 3 + 1) % products.len());
                let b = if a == b { (b + 1) % products.len() } else { b };
                let body = json!({"items": [
                    {"product_id": products[a], "quantity": 1 + i % 2},
                    {"product_id": products[b], "quantity": 1},
                ]});
                let res = http
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                if let Ok(res) = res
                    && (res.status() == 202 || res.status() == 201)
                {
                    let location = res.headers()["location"].to_str().unwrap().to_owned();
                    let id = location.rsplit('/').next().unwrap().parse().unwrap();
                    accepted.lock().unwrap().push(id);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    pg_proxy.cut(); // every in-flight transaction fails: transient, nacked, redelivered
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg_proxy.restore();
    tokio::time::sleep(Duration::from_millis(700)).await;
    workers.abort(); // a SIGKILL: nothing acked, nothing drained
    let _ = (&mut workers).await;
    workers = start_workers(worker_config.clone()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    nats_proxy.cut();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    nats_proxy.restore();
    for client in clients {
        client.await.unwrap();
    }
    let taken = after_sale.await.unwrap();
    let accepted = accepted.lock().unwrap().clone();

    // Assert
    let mut verdict = bench::verify::check(&state.db, &accepted, Duration::from_secs(45))
        .await
        .unwrap();
    bench::verify::check_after_sale(&state.db, &mut verdict, &taken.orders, &taken.failures)
        .await
        .unwrap();
    println!("{verdict}\nredelivered messages {}", redeliveries());
    assert!(verdict.accepted > 20, "too little load: {verdict}");
    assert!(verdict.ok(), "{verdict}");
    assert!(verdict.rejected > 0, "no order ran out of stock: {verdict}");
    assert!(
        verdict.after_sale_orders > 0,
        "no order went past the sale: {verdict}"
    );
    assert!(
        redeliveries() > 0,
        "no message was redelivered: the faults did not hit in-flight work"
    );
    workers.abort();
    shutdown.cancel();
}
