//! The fault drill's client side: load (and staff taking some orders through the steps after
//! the sale) while the script breaks things, then the checks.

use crate::after_sale;
use crate::scenarios;
use crate::setup::Deployment;
use crate::verify::{self, Verdict};
use sqlx::postgres::PgPoolOptions;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Options {
    pub deployment: Deployment,
    pub concurrency: usize,
    pub duration: Duration,
    pub products: usize,
    pub stock: i64,
    pub settle_timeout: Duration,
}

/// How many staff members take orders through the steps after the sale at once.
const STAFF: usize = 24;

/// Places orders for `duration` (answers 202), then waits for them to settle and checks.
pub async fn run(o: &Options) -> anyhow::Result<(String, Verdict)> {
    let (api, admin) = o.deployment.sign_in(o.concurrency).await?;
    let shop = scenarios::Shop {
        customers: Arc::new(api.register_customers(o.concurrency, "drill").await?),
        products: Arc::new(
            api.create_products(&admin, o.products, o.stock, "drill")
                .await?,
        ),
        api,
    };
    eprintln!(
        "drill: load for {} s from {} clients",
        o.duration.as_secs(),
        o.concurrency
    );
    // Staff take every tenth accepted order through the steps after the sale meanwhile, many
    // of them at once (each step waits for the order worker), so most of it happens while the
    // faults strike instead of in a backlog after them.
    let ids = Arc::new(Mutex::new(Vec::new()));
    let staff = after_sale::Staff {
        base: shop.api.base.clone(),
        http: shop.api.http.clone(),
        token: admin.clone(),
    };
    let until = Instant::now() + o.duration;
    let ((load, accepted), taken) = tokio::join!(
        scenarios::drill_load(&shop, o.concurrency, o.duration, Arc::clone(&ids)),
        after_sale::drive(staff, Arc::clone(&ids), 10, STAFF, until),
    );
    eprintln!(
        "drill: load done, {} orders accepted; checking",
        accepted.len()
    );
    let summary = format!(
        "load                 {} requests in {:.1} s, {} accepted; by status {}",
        load.stats.sent,
        load.ran.elapsed.as_secs_f64(),
        load.stats.accepted,
        load.stats.by_status()
    );
    // The database may just have been restarted: retry connecting for a while.
    let mut attempts = 0;
    let db = loop {
        match PgPoolOptions::new()
            .max_connections(2)
            .connect(&o.deployment.database_url)
            .await
        {
            Ok(db) => break db,
            Err(e) if attempts < 60 => {
                attempts += 1;
                eprintln!("drill: database not reachable yet ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut verdict = verify::check(&db, &accepted, o.settle_timeout).await?;
    verify::check_after_sale(&db, &mut verdict, &taken.orders, &taken.failures).await?;
    db.close().await;
    Ok((summary, verdict))
}
