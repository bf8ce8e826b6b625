//! The ordering scenarios: `place`, `flash-sale` and the fault drill's `load` (`browse` is in
//! [`crate::browse`]).

use crate::driver::{self, Outcome, Plan, Ran};
use crate::setup::{Api, Customer};
use crate::stats::{Recorder, Snapshot};
use rand::Rng;
use reqwest::header::HeaderValue;
use serde_json::json;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What a scenario measured.
pub struct Measured {
    pub ran: Ran,
    pub stats: Snapshot,
    /// From the first request until no order of the scenario is `PENDING` (None: not settled
    /// within the wait, or not an ordering scenario).
    pub settled_after: Option<Duration>,
    pub settled: i64,
    pub confirmed: i64,
    /// PostgreSQL's CPU milliseconds per accepted request, where measured.
    pub postgres_ms: Option<f64>,
}

impl Measured {
    pub fn accepted_per_sec(&self) -> f64 {
        self.stats.accepted as f64 / self.ran.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn settled_per_sec(&self) -> Option<f64> {
        self.settled_after
            .map(|d| self.settled as f64 / d.as_secs_f64().max(1e-9))
    }
}

/// Two distinct products of the catalogue, chosen at random.
pub fn two_lines(products: &[Uuid]) -> serde_json::Value {
    let mut rng = rand::rng();
    let n = products.len();
    let a = rng.random_range(0..n);
    let b = (a + 1 + rng.random_range(0..n.saturating_sub(1).max(1))) % n;
    json!({"items": [
        {"product_id": products[a], "quantity": 1},
        {"product_id": products[b], "quantity": 1},
    ]})
}

/// Sends one order and reads the whole answer (so the connection is reused); an accepted
/// order's id comes from its `Location`.
pub async fn post_order(
    api: &Api,
    customer: &Customer,
    body: &serde_json::Value,
    wait: Option<u64>,
) -> (Outcome, Option<Uuid>) {
    let mut req = api
        .http
        .post(api.url("/orders"))
        .bearer_auth(&customer.token)
        .json(body);
    if let Some(wait) = wait
        && let Ok(v) = HeaderValue::from_str(&format!("wait={wait}"))
    {
        req = req.header("prefer", v);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let id: Option<Uuid> = res
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .and_then(|s| s.parse().ok());
            let accepted = status == 201 || status == 202;
            // A 201/202 is final once its status line arrived, even if the body is cut off.
            let _ = res.bytes().await;
            (Outcome::http(status, accepted), id.filter(|_| accepted))
        }
        Err(e) => (Outcome::error(&e), None),
    }
}

/// Settled orders of `customers` so far (`status` other than `PENDING`), and how many of them
/// are `CONFIRMED`.
pub async fn settled_of(db: &sqlx::PgPool, customers: &[Customer]) -> anyhow::Result<(i64, i64)> {
    let users: Vec<Uuid> = customers.iter().map(|c| c.id).collect();
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status <> 'PENDING'),
                count(*) FILTER (WHERE status = 'CONFIRMED')
           FROM orders WHERE user_id = ANY($1)",
    )
    .bind(&users)
    .fetch_one(db)
    .await?)
}

/// Waits until the orders `customers` placed since `before` was counted are all settled (or
/// `timeout`); returns when, how many settled and how many of them were confirmed.
pub async fn wait_settled(
    db: &sqlx::PgPool,
    customers: &[Customer],
    before: (i64, i64),
    accepted: u64,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<(Option<Duration>, i64, i64)> {
    let deadline = Instant::now() + timeout;
    loop {
        let (settled, confirmed) = settled_of(db, customers).await?;
        let (settled, confirmed) = (settled - before.0, confirmed - before.1);
        if u64::try_from(settled).unwrap_or(0) >= accepted {
            return Ok((Some(started.elapsed()), settled, confirmed));
        }
        if Instant::now() > deadline {
            return Ok((None, settled, confirmed));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What an ordering scenario measured, once every order it had accepted settled (or a minute
/// passed); `before` is [`settled_of`] the customers before it started.
async fn settled_measure(
    db: &sqlx::PgPool,
    customers: &[Customer],
    before: (i64, i64),
    recorder: &Recorder,
    ran: Ran,
) -> anyhow::Result<Measured> {
    let stats = recorder.snapshot();
    let (settled_after, settled, confirmed) = wait_settled(
        db,
        customers,
        before,
        stats.accepted,
        ran.started,
        Duration::from_secs(60),
    )
    .await?;
    Ok(Measured {
        ran,
        stats,
        settled_after,
        settled,
        confirmed,
        postgres_ms: None,
    })
}

/// Who orders what, through which api.
#[derive(Clone)]
pub struct Shop {
    pub api: Arc<Api>,
    pub customers: Arc<Vec<Customer>>,
    pub products: Arc<Vec<Uuid>>,
}

/// What a load orders: the body of each order, made from the catalogue, and the `Prefer: wait`
/// sent with it, if any.
#[derive(Clone, Copy)]
pub struct Order {
    pub basket: fn(&[Uuid]) -> serde_json::Value,
    pub wait: Option<u64>,
}

impl Order {
    /// Two lines of the catalogue, chosen at random ([`two_lines`]).
    pub fn two_lines(wait: Option<u64>) -> Self {
        Order {
            basket: two_lines,
            wait,
        }
    }

    /// One unit of the catalogue's first product, answered 202 at once.
    pub fn one_unit() -> Self {
        Order {
            basket: |products| json!({"items": [{"product_id": products.first(), "quantity": 1}]}),
            wait: None,
        }
    }
}

/// An order a client placed: its outcome, an accepted order's id, and when it was sent.
pub struct Placed {
    pub outcome: Outcome,
    pub id: Option<Uuid>,
    pub sent: Instant,
}

impl Shop {
    /// Runs `plan` from `clients` clients, client `c` placing `order` as customer `c` (modulo
    /// their number); what they recorded.
    pub async fn order(
        &self,
        label: &str,
        clients: usize,
        plan: Plan,
        order: Order,
    ) -> (Ran, Arc<Recorder>) {
        self.order_then(label, clients, plan, order, |placed| {
            std::future::ready(placed.outcome)
        })
        .await
    }

    /// Like [`Shop::order`]; `then` sees each order placed and gives back the outcome to record.
    pub async fn order_then<F, Fut>(
        &self,
        label: &str,
        clients: usize,
        plan: Plan,
        order: Order,
        then: F,
    ) -> (Ran, Arc<Recorder>)
    where
        F: Fn(Placed) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send,
    {
        let recorder = Arc::new(Recorder::new());
        let (shop, then) = (self.clone(), Arc::new(then));
        let ran = driver::drive(label, clients, plan, Arc::clone(&recorder), move |_, c| {
            let (shop, then) = (shop.clone(), Arc::clone(&then));
            async move {
                let sent = Instant::now();
                let body = (order.basket)(&shop.products);
                let customer = &shop.customers[c % shop.customers.len()];
                let (outcome, id) = post_order(&shop.api, customer, &body, order.wait).await;
                then(Placed { outcome, id, sent }).await
            }
        })
        .await;
        (ran, recorder)
    }
}

/// `place`: every client orders two lines of the catalogue, waiting for the outcome.
pub async fn place(
    shop: &Shop,
    db: &sqlx::PgPool,
    clients: usize,
    plan: Plan,
    wait: u64,
    label: &str,
) -> anyhow::Result<Measured> {
    let before = settled_of(db, &shop.customers).await?;
    let (ran, recorder) = shop
        .order(label, clients, plan, Order::two_lines(Some(wait)))
        .await;
    settled_measure(db, &shop.customers, before, &recorder, ran).await
}

/// `flash-sale`: `orders` one-unit orders for one product, answered 202 at once (or 409 once
/// the api knows the product sold out).
pub async fn flash_sale(
    api: Arc<Api>,
    db: &sqlx::PgPool,
    customers: Arc<Vec<Customer>>,
    product: Uuid,
    clients: usize,
    orders: u64,
) -> anyhow::Result<Measured> {
    let before = settled_of(db, &customers).await?;
    let shop = Shop {
        api,
        customers,
        products: Arc::new(vec![product]),
    };
    let plan = Plan::Count {
        n: orders,
        limit: Duration::from_secs(60),
    };
    let (ran, recorder) = shop
        .order("flash-sale", clients, plan, Order::one_unit())
        .await;
    settled_measure(db, &shop.customers, before, &recorder, ran).await
}

pub fn measured(ran: Ran, recorder: &Recorder) -> Measured {
    Measured {
        ran,
        stats: recorder.snapshot(),
        settled_after: None,
        settled: 0,
        confirmed: 0,
        postgres_ms: None,
    }
}

/// The fault drill's load: two-line orders answered 202 at once; returns every accepted id.
pub async fn drill_load(
    shop: &Shop,
    clients: usize,
    duration: Duration,
    ids: Arc<Mutex<Vec<Uuid>>>,
) -> (Measured, Vec<Uuid>) {
    let (ran, recorder) = {
        let ids = Arc::clone(&ids);
        let plan = Plan::For(duration);
        shop.order_then(
            "drill load",
            clients,
            plan,
            Order::two_lines(None),
            move |placed| {
                let ids = Arc::clone(&ids);
                async move {
                    // Back off a little while a dependency is down (not for a product sold
                    // out, refused at once: the load goes on as before).
                    if !placed.outcome.accepted && placed.outcome.status != "409" {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(id) = placed.id
                        && let Ok(mut ids) = ids.lock()
                    {
                        ids.push(id);
                    }
                    placed.outcome
                }
            },
        )
        .await
    };
    let accepted = ids.lock().map(|ids| ids.clone()).unwrap_or_default();
    (measured(ran, &recorder), accepted)
}
