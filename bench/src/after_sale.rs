//! The fault drill's steps after the sale: while the load runs and the faults strike, staff
//! take some of the accepted orders through payment, a shipment of one unit, cancelling what is
//! left, its delivery, a return of that unit and its receipt into stock. Each request is sent
//! again under its `Idempotency-Key` until it is answered (a 503 while a dependency is down, a
//! 202 while the order worker is), as a careful client does; the checks then find each step
//! made exactly once ([`crate::verify::check_after_sale`]).

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long one step is retried before the drill counts it lost.
const STEP_DEADLINE: Duration = Duration::from_secs(120);

/// Staff at the api.
#[derive(Clone)]
pub struct Staff {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl Staff {
    /// Sends one step until it is answered `expected`; a `409` or the deadline is an error.
    async fn step(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Value,
        expected: u16,
    ) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let res = self
                .http
                .request(method.clone(), format!("{}/api/v1{path}", self.base))
                .bearer_auth(&self.token)
                .header("idempotency-key", key)
                .header("prefer", "wait=5")
                .json(&body)
                .send()
                .await;
            match res {
                Ok(res) if res.status().as_u16() == expected => {
                    return res.json().await.map_err(|e| format!("{path}: {e}"));
                }
                Ok(res) if res.status().as_u16() == 409 => {
                    let said = res.text().await.unwrap_or_default();
                    return Err(format!("{path} refused: {said}"));
                }
                _ if started.elapsed() > STEP_DEADLINE => {
                    return Err(format!("{path} never answered {expected}"));
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// The order as staff read it, retried while the api cannot answer.
    async fn order(&self, id: Uuid) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let res = self
                .http
                .get(format!("{}/api/v1/orders/{id}", self.base))
                .bearer_auth(&self.token)
                .send()
                .await;
            if let Ok(res) = res
                && res.status().is_success()
                && let Ok(order) = res.json::<Value>().await
                && order["status"] != "PENDING"
            {
                return Ok(order);
            }
            if started.elapsed() > STEP_DEADLINE {
                return Err(format!("order {id} never settled"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Takes a confirmed order through every step; `Ok(false)` when it was rejected.
    pub async fn take(&self, id: Uuid) -> Result<bool, String> {
        let order = self.order(id).await?;
        if order["status"] != "CONFIRMED" {
            return Ok(false);
        }
        let product = order["items"][0]["product_id"].clone();
        let one = json!([{"product_id": product, "quantity": 1}]);
        let path = |rest: &str| format!("/orders/{id}{rest}");
        let key = |step: &str| format!("drill-{step}-{id}");
        use reqwest::Method;
        self.step(
            Method::PATCH,
            &path("/status"),
            &key("pay"),
            json!({"status": "PAID"}),
            200,
        )
        .await?;
        let shipment = json!({"lines": one, "carrier": "Drill", "tracking_number": "D-1"});
        let shipped = self
            .step(
                Method::POST,
                &path("/fulfilments"),
                &key("ship"),
                shipment,
                201,
            )
            .await?;
        let fulfilment = shipped["fulfilments"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let rest = json!({"reason": "the rest is not coming"});
        self.step(
            Method::POST,
            &path("/cancel-remaining"),
            &key("rest"),
            rest,
            200,
        )
        .await?;
        let delivered = path(&format!("/fulfilments/{fulfilment}/delivered"));
        self.step(Method::POST, &delivered, &key("deliver"), json!({}), 200)
            .await?;
        let ask = json!({"lines": one, "reason": "drill return"});
        let asked = self
            .step(Method::POST, &path("/returns"), &key("return"), ask, 201)
            .await?;
        let ret = asked["returns"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let restock = json!({"lines": [{"product_id": product, "restock": true}]});
        self.step(
            Method::POST,
            &path(&format!("/returns/{ret}/receive")),
            &key("receive"),
            restock,
            200,
        )
        .await?;
        Ok(true)
    }
}

/// What the drill's staff did: the orders taken through every step, and the steps that were
/// never answered as expected (each a violation).
#[derive(Debug, Default)]
pub struct Taken {
    pub orders: Vec<Uuid>,
    pub failures: Vec<String>,
}

/// Takes every `every`-th accepted order through the steps after the sale, from the list the
/// load fills, until `until` and the list is worked through; `members` of `staff` work at once,
/// each on its own share (member `k` takes the orders at `k * every`, then every
/// `members * every`-th), one order at a time.
pub async fn drive(
    staff: Staff,
    accepted: Arc<Mutex<Vec<Uuid>>>,
    every: usize,
    members: usize,
    until: Instant,
) -> Taken {
    let every = every.max(1);
    let members = members.max(1);
    let shares = (0..members).map(|k| {
        share(
            staff.clone(),
            Arc::clone(&accepted),
            k * every,
            members * every,
            until,
        )
    });
    let mut taken = Taken::default();
    for share in futures::future::join_all(shares).await {
        taken.orders.extend(share.orders);
        taken.failures.extend(share.failures);
    }
    taken
}

/// One member's share: the orders at `first`, then every `stride`-th.
async fn share(
    staff: Staff,
    accepted: Arc<Mutex<Vec<Uuid>>>,
    first: usize,
    stride: usize,
    until: Instant,
) -> Taken {
    let mut taken = Taken::default();
    let mut next = first;
    loop {
        let id = accepted.lock().ok().and_then(|ids| ids.get(next).copied());
        let Some(id) = id else {
            if Instant::now() >= until {
                return taken;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        next += stride;
        match staff.take(id).await {
            Ok(true) => taken.orders.push(id),
            Ok(false) => {}
            Err(failure) => taken.failures.push(failure),
        }
    }
}
