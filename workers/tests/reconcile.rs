//! The periodic stock reconciliation: the `stock_drift_products` gauge counts the products
//! that break the conservation rule, initial stock + Σ adjustments = available stock +
//! Σ quantities reserved or committed, and follows the data from one check to the next.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::domain::ReservationState;
use common::testing::{TestEnv, eventually};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

struct Running {
    _env: TestEnv,
    db: PgPool,
    metrics_url: String,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A migrated, empty database; `seed` fills it before the workers start, so their first
/// check already sees the data.
async fn start_after<F, Fut>(seed: F) -> Running
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = ()>,
{
    let env = TestEnv::new().await;
    let config = env.config_with(&[("STOCK_RECONCILIATION_INTERVAL_MS", "100")]);
    let db = common::db::connect(&config).await.unwrap();
    seed(db.clone()).await;
    let workers = workers::Workers::build(config, vec![workers::Kind::Inventory])
        .await
        .unwrap();
    let metrics_url = format!("http://{}/metrics", workers.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(workers.run_until_stopped(shutdown.clone()));
    Running {
        _env: env,
        db,
        metrics_url,
        shutdown,
    }
}

/// The gauge's value in the workers' scrape, once it is there.
async fn drift_gauge(url: &str) -> Option<f64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("stock_drift_products "))
        .and_then(|value| value.trim().parse().ok())
}

async fn product(db: &PgPool, initial: i32, stock: i32) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO products (id, name, price, currency, stock, initial_stock)
         VALUES ($1, 'Mug', 100, 'USD', $2, $3)",
    )
    .bind(id)
    .bind(stock)
    .bind(initial)
    .execute(db)
    .await
    .unwrap();
    id
}

async fn adjustment(db: &PgPool, product: Uuid, delta: i32) {
    sqlx::query(
        "INSERT INTO stock_adjustments (id, product_id, delta, reason, stock_after)
         VALUES ($1, $2, $3, 'delivery', 0)",
    )
    .bind(Uuid::now_v7())
    .bind(product)
    .bind(delta)
    .execute(db)
    .await
    .unwrap();
}

async fn reservation(db: &PgPool, product: Uuid, quantity: i32, state: ReservationState) {
    sqlx::query(
        "INSERT INTO reservations (order_id, product_id, quantity, state) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(product)
    .bind(quantity)
    .bind(state)
    .execute(db)
    .await
    .unwrap();
}

/// 10 at creation, 5 delivered, 3 reserved, 2 sold, 4 reserved then released: 10 available.
async fn conserving_product(db: &PgPool) -> Uuid {
    let id = product(db, 10, 10).await;
    adjustment(db, id, 5).await;
    reservation(db, id, 3, ReservationState::Reserved).await;
    reservation(db, id, 2, ReservationState::Committed).await;
    reservation(db, id, 4, ReservationState::Released).await;
    id
}

#[tokio::test]
async fn only_products_that_break_the_conservation_rule_are_counted() {
    let running = start_after(|db| async move {
        conserving_product(&db).await;
        // 7 at creation, 1 reserved: 6 should be available, 7 are.
        let drifting = product(&db, 7, 7).await;
        reservation(&db, drifting, 1, ReservationState::Reserved).await;
    })
    .await;

    let drift = eventually(WAIT, "the first check", || {
        drift_gauge(&running.metrics_url)
    })
    .await;

    assert_eq!(drift, 1.0);
}

#[tokio::test]
async fn a_drift_that_appears_later_is_reported_by_the_next_check() {
    let mut conserving = None;
    let running = start_after(|db| {
        let conserving = &mut conserving;
        async move {
            *conserving = Some(conserving_product(&db).await);
        }
    })
    .await;
    let first = eventually(WAIT, "the first check", || {
        drift_gauge(&running.metrics_url)
    })
    .await;
    assert_eq!(first, 0.0);

    sqlx::query("UPDATE products SET stock = stock - 1 WHERE id = $1")
        .bind(conserving.unwrap())
        .execute(&running.db)
        .await
        .unwrap();

    eventually(WAIT, "the drift reported", || async {
        (drift_gauge(&running.metrics_url).await? == 1.0).then_some(())
    })
    .await;
}
