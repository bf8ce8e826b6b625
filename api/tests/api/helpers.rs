//! The tests' vocabulary: a real api (real PostgreSQL, real JetStream) on a free port for each
//! test, [`TestApp`], with the requests every test sends it; and the fixtures that see the app
//! domain by domain, each in the helpers file of its domain: [`Accounts`], [`Products`],
//! [`Orders`], [`Payments`], [`TestBus`] and [`Webhooks`].

use common::testing::TestEnv;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod accounts;
mod after_sale;
mod bus;
mod logs;
mod orders;
mod payments;
mod products;
mod shop;
mod spawn;
mod sse;
mod webhooks;
pub use accounts::*;
pub use after_sale::*;
pub use bus::*;
pub use logs::*;
pub use orders::*;
pub use payments::*;
pub use products::*;
pub use shop::*;
pub use spawn::*;
pub use sse::*;
pub use webhooks::*;

/// The password the tests' accounts are registered with.
pub const PASSWORD: &str = "correct horse battery staple";

#[allow(dead_code)] // fields used by some tests only
pub struct TestApp {
    pub address: String,
    /// Base URL of `METRICS_ADDR`.
    pub metrics: String,
    pub client: reqwest::Client,
    pub env: TestEnv,
    pub state: api::state::AppState,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    // --- the app and its neighbours ---------------------------------------------------------

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Where this api serves its Prometheus metrics.
    pub fn metrics_url(&self) -> String {
        self.url("/metrics")
    }

    /// Starts every worker kind with `config` (which may route through proxies); they stop
    /// with the app. Returns the base URL of the workers' HTTP endpoints.
    pub async fn start_workers(&self, config: common::Config) -> String {
        let workers = workers::Workers::build(config, workers::Kind::ALL.to_vec())
            .await
            .expect("workers build");
        let address = format!("http://{}", workers.local_addr().expect("bound"));
        tokio::spawn(workers.run_until_stopped(self.shutdown.clone()));
        address
    }

    /// Starts the chosen worker kinds with `config`; they stop with the app.
    pub async fn start_worker_kinds(&self, config: common::Config, kinds: &[workers::Kind]) {
        let workers = workers::Workers::build(config, kinds.to_vec())
            .await
            .expect("workers build");
        tokio::spawn(workers.run_until_stopped(self.shutdown.clone()));
    }

    /// Starts another api on this app's database and namespace, with `overrides` on top of the
    /// test configuration.
    pub async fn replica(&self, overrides: &[(&str, &str)]) -> Replica {
        let app = api::Application::build(self.env.config_with(overrides))
            .await
            .expect("replica builds");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped(self.shutdown.clone()));
        Replica { address, state }
    }

    // --- the fixtures: the app seen domain by domain ----------------------------------------

    /// Accounts and their sessions, through the api and as stored: [`Accounts`].
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { app: self }
    }

    /// The catalogue and its stock, written directly, through the api or over the bus, and read
    /// back: [`Products`].
    pub fn products(&self) -> Products<'_> {
        Products { app: self }
    }

    /// Orders written directly or placed, moved and cancelled through the api, and read back:
    /// [`Orders`].
    pub fn orders(&self) -> Orders<'_> {
        Orders { app: self }
    }

    /// The payment system's events, refunds asked for, and the money read back: [`Payments`].
    pub fn payments(&self) -> Payments<'_> {
        Payments { app: self }
    }

    /// The bus as other systems and redeliveries use it, and what it holds: [`TestBus`].
    pub fn bus(&self) -> TestBus<'_> {
        TestBus { app: self }
    }

    /// Webhook endpoints, their deliveries, and the order events they deliver: [`Webhooks`].
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks { app: self }
    }

    // --- requests -----------------------------------------------------------------------------

    /// Any request, as `user` (Bearer) or anonymous, with an optional JSON body and extra
    /// headers: every other request helper goes through it.
    pub async fn send(
        &self,
        method: reqwest::Method,
        user: Option<&TestUser>,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(user) = user {
            req = req.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// GET without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, None, path, None, &[]).await
    }

    /// POST JSON without credentials.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, None, path, Some(body), &[])
            .await
    }

    /// PATCH JSON without credentials.
    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, None, path, Some(body), &[])
            .await
    }

    /// DELETE without credentials.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, None, path, None, &[])
            .await
    }

    /// Any request with a Bearer token, an optional JSON body and extra headers.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        user: &TestUser,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send(method, Some(user), path, body, headers).await
    }

    /// GET with a Bearer token.
    pub async fn get_as(&self, user: &TestUser, path: &str) -> reqwest::Response {
        self.send_as(reqwest::Method::GET, user, path, None, &[])
            .await
    }

    /// POST JSON with a Bearer token and extra headers.
    pub async fn post_as(
        &self,
        user: &TestUser,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, user, path, Some(body), headers)
            .await
    }

    /// PATCH JSON with a Bearer token and extra headers.
    pub async fn patch_as(
        &self,
        user: &TestUser,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send_as(reqwest::Method::PATCH, user, path, Some(body), headers)
            .await
    }

    /// POST without a body, with a Bearer token and extra headers.
    pub async fn post_empty_as(
        &self,
        user: &TestUser,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, user, path, None, headers)
            .await
    }

    /// DELETE with a Bearer token.
    pub async fn delete_as(&self, user: &TestUser, path: &str) -> reqwest::Response {
        self.send_as(reqwest::Method::DELETE, user, path, None, &[])
            .await
    }

    /// GET with `token` as the Bearer token (a forged, expired or foreign one, say).
    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// GETs `path` as `user`, which must answer 200; returns the JSON.
    pub async fn read(&self, user: &TestUser, path: &str) -> Value {
        let res = self.get_as(user, path).await;
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.expect("JSON")
    }

    /// Every item of the list at `path` (which has a query), page by page.
    pub async fn every_page(&self, user: &TestUser, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}&cursor={c}"),
                None => path.to_owned(),
            };
            let page = self.read(user, &page_path).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    // --- rows written directly, as other systems (or the past) would --------------------------

    /// Creates a user with `role` and returns it with an access token (sent as a Bearer token)
    /// of a live session. The user has no usable password: log in through the api to test that.
    pub async fn create_user(&self, role: common::domain::Role) -> TestUser {
        let id = uuid::Uuid::new_v4();
        let email = format!("{}@example.com", id.simple());
        sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, 'Test', $3, 'not-a-login')",
        )
        .bind(id)
        .bind(&email)
        .bind(role)
        .execute(&self.state.db)
        .await
        .expect("insert user");
        let session_id = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, now() + interval '1 day')",
        )
        .bind(session_id)
        .bind(id)
        .execute(&self.state.db)
        .await
        .expect("insert session");
        let token = self
            .state
            .tokens
            .issue(id, role, session_id)
            .expect("token");
        TestUser {
            id,
            email,
            token,
            session_id,
        }
    }

    // --- reading the state back ---------------------------------------------------------------

    /// The count a `SELECT count(*) …` statement returns.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.state.db)
            .await
            .unwrap()
    }
}

/// Starts an api with `config` in the test environment `env`.
pub async fn start(env: TestEnv, config: common::Config) -> TestApp {
    let app = api::Application::build(config).await.expect("api builds");
    let address = format!("http://{}", app.local_addr().expect("bound"));
    let metrics = format!("http://{}", app.metrics_addr().expect("bound"));
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        metrics,
        client: client(),
        env,
        state,
        shutdown,
    }
}

/// Asserts a response is an RFC 9457 problem with `status`, and returns its body.
pub async fn assert_problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = res.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string(), "type: {body}");
    assert!(body["title"].is_string(), "title: {body}");
    assert!(body["detail"].is_string(), "detail: {body}");
    body
}

/// Asserts that `holds` comes true within `timeout` (checked every 50 ms); fails naming `what`
/// if it does not.
pub async fn assert_eventually<F, Fut>(timeout: std::time::Duration, what: &str, mut holds: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    common::testing::eventually(timeout, what, || {
        let check = holds();
        async move { check.await.then_some(()) }
    })
    .await;
}

/// A user created directly in the database, with a valid access token.
#[allow(dead_code)]
pub struct TestUser {
    pub id: uuid::Uuid,
    pub email: String,
    pub token: String,
    pub session_id: uuid::Uuid,
}
