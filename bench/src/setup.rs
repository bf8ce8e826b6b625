//! Preparing a run through the public API: the ADMIN's token, customer accounts, a catalogue.

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The deployment a run drives: its api, its database, and the ADMIN who prepares it.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub api_url: String,
    pub database_url: String,
    pub admin_email: String,
    pub admin_password: String,
}

impl Deployment {
    /// The api once it answers ready (within a minute), with connections kept for `clients`
    /// concurrent clients, and the ADMIN's token.
    pub async fn sign_in(&self, clients: usize) -> anyhow::Result<(Arc<Api>, String)> {
        let api = Arc::new(Api::new(&self.api_url, http_client(clients * 2)?));
        api.wait_ready(Duration::from_secs(60)).await?;
        let admin = api.login(&self.admin_email, &self.admin_password).await?;
        Ok((api, admin))
    }
}

/// An HTTP client for load: keep-alive, no cookies (tokens go in `Authorization`).
pub fn http_client(pool: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// The `access_token` cookie of a register or login answer: the Bearer token.
pub fn access_token(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let first = c.split(';').next()?.trim();
            first
                .strip_prefix("access_token=")
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        })
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A customer account and its token.
#[derive(Clone)]
pub struct Customer {
    pub id: Uuid,
    pub token: String,
}

impl Api {
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Waits until `/health/ready` answers 200 (at most `timeout`).
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(res) = self
                .http
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
                && res.status().is_success()
            {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("{} not ready after {timeout:?}", self.base);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let res = self
            .http
            .post(self.url("/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("admin login answered {}", res.status());
        }
        access_token(&res).context("login answer without an access_token cookie")
    }

    /// Registers `n` customers (a few at a time: each costs an argon2 hash on the server).
    pub async fn register_customers(&self, n: usize, tag: &str) -> anyhow::Result<Vec<Customer>> {
        let run = Uuid::new_v4().simple().to_string();
        futures::stream::iter(0..n)
            .map(|i| {
                let email = format!("bench-{tag}-{}-{i}@example.com", &run[..8]);
                async move {
                    let body =
                        json!({"email": email, "password": "bench-password-1", "name": "Bench"});
                    // Password hashing runs a bounded number at a time: a 503 (or a 429) says
                    // when to come back.
                    let mut attempts = 0;
                    let res = loop {
                        let res = self
                            .http
                            .post(self.url("/auth/register"))
                            .json(&body)
                            .send()
                            .await?;
                        let status = res.status().as_u16();
                        attempts += 1;
                        if !matches!(status, 429 | 503) || attempts >= 50 {
                            break res;
                        }
                        let after = res
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .map_or(Duration::from_millis(100), Duration::from_secs);
                        tokio::time::sleep(after.min(Duration::from_secs(2))).await;
                    };
                    if res.status().as_u16() != 201 {
                        bail!("register answered {}", res.status());
                    }
                    let token = access_token(&res).context("register without access_token")?;
                    let user: Value = res.json().await?;
                    let id = user["id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .context("register answer without a user id")?;
                    Ok(Customer { id, token })
                }
            })
            .buffer_unordered(4)
            .try_collect()
            .await
    }

    /// Creates `n` products with `stock` each and returns their ids.
    pub async fn create_products(
        &self,
        admin: &str,
        n: usize,
        stock: i64,
        tag: &str,
    ) -> anyhow::Result<Vec<Uuid>> {
        futures::stream::iter(0..n)
            .map(|i| async move {
                let body = json!({
                    "name": format!("{tag} product {i:04}"),
                    "description": format!("A {tag} benchmark item, number {i}"),
                    "price": 100 + (i as i64 * 37) % 9_900,
                    "stock": stock,
                });
                let res = self
                    .http
                    .post(self.url("/products"))
                    .bearer_auth(admin)
                    .json(&body)
                    .send()
                    .await?;
                if res.status().as_u16() != 201 {
                    bail!("create product answered {}", res.status());
                }
                let product: Value = res.json().await?;
                product["id"]
                    .as_str()
                    .and_then(|s| s.parse::<Uuid>().ok())
                    .context("product without an id")
            })
            .buffer_unordered(16)
            .try_collect()
            .await
    }
}
