//! The ceiling: the least database work any correct implementation must do per order, driven
//! directly against the same PostgreSQL with the same concurrency as `place`.
//!
//! One transaction per order: a guarded decrement of the two lines' stock (rows locked in id
//! order, so concurrent orders cannot deadlock), the order row, commit. That is four round
//! trips (BEGIN, UPDATE, INSERT, COMMIT) and one WAL flush at commit. It runs on its own
//! scratch tables, created and dropped here.

use crate::driver::{self, Outcome, Plan, Ran};
use crate::stats::Recorder;
use rand::Rng;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use uuid::Uuid;

pub struct Ceiling {
    pub ran: Ran,
    pub recorder: Arc<Recorder>,
    /// CPU used by PostgreSQL and the driver, read before the pool's backends exit.
    pub cpu: String,
    /// PostgreSQL's CPU milliseconds per committed order.
    pub postgres_ms: f64,
}

pub async fn run(
    database_url: &str,
    products: usize,
    concurrency: usize,
    plan: Plan,
) -> anyhow::Result<Ceiling> {
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency).unwrap_or(u32::MAX).max(1))
        .connect(database_url)
        .await?;
    let ids = Arc::new(create_tables(&pool, products).await?);
    let recorder = Arc::new(Recorder::new());
    let meter = crate::rss::CpuMeter::start(&[]);
    let ran = {
        let pool = pool.clone();
        driver::drive(
            "ceiling",
            concurrency,
            plan,
            Arc::clone(&recorder),
            move |_, _| {
                let (pool, ids) = (pool.clone(), Arc::clone(&ids));
                async move {
                    let (a, b) = two_of(&ids);
                    match one_order(&pool, &[a, b]).await {
                        Ok(true) => Outcome {
                            status: "committed".into(),
                            accepted: true,
                        },
                        Ok(false) => Outcome {
                            status: "out_of_stock".into(),
                            accepted: false,
                        },
                        Err(_) => Outcome {
                            status: "db_error".into(),
                            accepted: false,
                        },
                    }
                }
            },
        )
        .await
    };
    let accepted = recorder.accepted.load(std::sync::atomic::Ordering::Relaxed);
    let cpu = meter.report(ran.elapsed, accepted);
    let postgres_ms = meter.ms_per("postgres", accepted);
    drop_tables(&pool).await?;
    pool.close().await;
    Ok(Ceiling {
        ran,
        recorder,
        cpu,
        postgres_ms,
    })
}

/// Creates the scratch tables with `products` products of ample stock; returns their ids.
pub async fn create_tables(pool: &sqlx::PgPool, products: usize) -> anyhow::Result<Vec<Uuid>> {
    drop_tables(pool).await?;
    sqlx::raw_sql(
        "CREATE TABLE bench_ceiling_products (
             id uuid PRIMARY KEY, stock integer NOT NULL CHECK (stock >= 0), price bigint NOT NULL);
         CREATE TABLE bench_ceiling_orders (
             id uuid PRIMARY KEY, user_id uuid NOT NULL, status text NOT NULL, total bigint NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now());",
    )
    .execute(pool)
    .await?;
    let ids: Vec<Uuid> = (0..products).map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO bench_ceiling_products (id, stock, price)
         SELECT id, 1000000000, 100 FROM unnest($1::uuid[]) AS id",
    )
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(ids)
}

/// Two distinct products, lowest id first.
fn two_of(ids: &[Uuid]) -> (Uuid, Uuid) {
    let mut rng = rand::rng();
    let a = rng.random_range(0..ids.len());
    let mut b = rng.random_range(0..ids.len().saturating_sub(1).max(1));
    if b >= a {
        b += 1;
    }
    let (a, b) = (ids[a], ids[b.min(ids.len() - 1)]);
    if a < b { (a, b) } else { (b, a) }
}

/// The ceiling's transaction for one order of one unit of each product (distinct ids, in id
/// order): a guarded decrement of every line, all or none, and the order row. `Ok(false)` when
/// a line is short.
pub async fn one_order(pool: &sqlx::PgPool, products: &[Uuid]) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let total: Option<i64> = sqlx::query_scalar(
        "WITH d AS (
             UPDATE bench_ceiling_products SET stock = stock - 1
              WHERE id = ANY($1) AND stock >= 1
          RETURNING price)
         SELECT sum(price)::int8 FROM d HAVING count(*) = cardinality($1)",
    )
    .bind(products)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(total) = total else {
        tx.rollback().await?;
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO bench_ceiling_orders (id, user_id, status, total) VALUES ($1, $2, 'CONFIRMED', $3)",
    )
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .bind(total)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn drop_tables(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_ceiling_orders; DROP TABLE IF EXISTS bench_ceiling_products;",
    )
    .execute(pool)
    .await?;
    Ok(())
}
