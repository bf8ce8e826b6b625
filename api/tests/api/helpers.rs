//! The tests' vocabulary: spawning a real api (real PostgreSQL, real JetStream) on a free port
//! for each test, and one [`TestApp`] with every request and set-up helper the tests share.

use common::testing::{TcpProxy, TestEnv, socket_addr_of};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod logs;
mod products;
mod requests;
mod sessions;
pub use logs::*;
pub use products::*;
pub use sessions::*;

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

    /// An idempotency key of `user` created `age` ago.
    pub async fn idempotency_key_aged(&self, user: Uuid, age: &str) -> String {
        let key = Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, items, state, created_at)
             VALUES ($1, $2, '\\x00', $3, '[]', 'published', now() - $4::interval)",
        )
        .bind(user)
        .bind(&key)
        .bind(Uuid::new_v4())
        .bind(age)
        .execute(&self.state.db)
        .await
        .unwrap();
        key
    }

    /// A session of `user` with one refresh token used `used` ago (or unused), the session
    /// revoked `revoked` ago (or live).
    pub async fn session_with_token(
        &self,
        user: Uuid,
        used: Option<&str>,
        revoked: Option<&str>,
    ) -> Uuid {
        let session = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, expires_at, revoked_at)
             VALUES ($1, $2, now() + interval '1 day', now() - $3::interval)",
        )
        .bind(session)
        .bind(user)
        .bind(revoked)
        .execute(&self.state.db)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, used_at)
             VALUES (sha256($1::text::bytea), $2, now() - $3::interval)",
        )
        .bind(session.to_string())
        .bind(session)
        .bind(used)
        .execute(&self.state.db)
        .await
        .unwrap();
        session
    }

    // --- the catalogue through the api ----------------------------------------------------------

    /// Creates a product through the api and returns it.
    pub async fn create_product_via_api(&self, admin: &TestUser, body: Value) -> Value {
        let res = self.post_as(admin, "/api/v1/products", &body, &[]).await;
        assert_eq!(res.status(), 201, "create {body}");
        res.json().await.unwrap()
    }

    /// Asks the api for a stock adjustment of `delta` on product `id`.
    pub async fn adjust(
        &self,
        admin: &TestUser,
        id: &str,
        delta: i64,
        reason: &str,
    ) -> reqwest::Response {
        self.post_as(
            admin,
            &format!("/api/v1/products/{id}/stock-adjustments"),
            &json!({"delta": delta, "reason": reason}),
            &[],
        )
        .await
    }

    /// Follows `next_cursor` from the first page to the last, returning every item.
    pub async fn list_all(&self, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut url = format!("/api/v1/products?{query}");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let res = self.get(&url).await;
            assert_eq!(res.status(), 200, "{url}");
            let page: Value = res.json().await.unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
        panic!("paging never ended");
    }

    // --- reading the state back ---------------------------------------------------------------

    /// How many users there are.
    pub async fn user_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.state.db)
            .await
            .unwrap()
    }

    /// The count a `SELECT count(*) …` statement returns.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.state.db)
            .await
            .unwrap()
    }
}

/// Another api replica: same database and NATS namespace as the [`TestApp`] that started it,
/// its own process state (caches, limits), stopped with that app.
pub struct Replica {
    pub address: String,
    pub state: api::state::AppState,
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GET with a Bearer token.
    pub async fn get_as(&self, user: &TestUser, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request")
    }

    /// GET without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.url(path)).await.expect("request")
    }
}

/// A client that keeps cookies, like a browser.
pub fn client() -> reqwest::Client {
    // The process's TLS provider, as the binaries install it (some tests need no TestEnv).
    common::startup::install_tls_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// An app whose configuration has some variables overridden (e.g. `ADMIN_EMAIL`).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let env = TestEnv::new().await;
    let config = env.config_with(overrides);
    start(env, config).await
}

/// The api and every worker kind, sharing one database and namespace.
pub async fn spawn_system() -> TestApp {
    let app = spawn_app().await;
    let config = app.env.config();
    app.start_workers(config).await;
    app
}

/// The api and every worker kind, with `overrides` on top of the test configuration.
pub async fn spawn_system_with(overrides: &[(&str, &str)]) -> TestApp {
    let app = spawn_app_with(overrides).await;
    let config = app.env.config_with(overrides);
    app.start_workers(config).await;
    app
}

/// Like [`spawn_system`], also returning the base URL of the workers' HTTP endpoints.
pub async fn spawn_system_with_workers_url() -> (TestApp, String) {
    let app = spawn_app().await;
    let config = app.env.config();
    let workers = app.start_workers(config).await;
    (app, workers)
}

/// An app whose PostgreSQL and NATS connections go through proxies the test can cut.
pub async fn spawn_app_behind_proxies() -> (TestApp, TcpProxy, TcpProxy) {
    let env = TestEnv::new().await;
    let pg_proxy = TcpProxy::start(socket_addr_of(&env.database_url)).await;
    let nats_proxy = TcpProxy::start(socket_addr_of(&common::testing::nats_url())).await;
    let db_url = format!(
        "postgres://postgres@{}/{}",
        pg_proxy.addr, env.database_name
    );
    let nats_url = format!("nats://{}", nats_proxy.addr);
    let config = env.config_with(&[("DATABASE_URL", &db_url), ("NATS_URL", &nats_url)]);
    (start(env, config).await, pg_proxy, nats_proxy)
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

/// A user created directly in the database, with a valid access token.
#[allow(dead_code)]
pub struct TestUser {
    pub id: uuid::Uuid,
    pub email: String,
    pub token: String,
    pub session_id: uuid::Uuid,
}

mod after_sale;
mod bus;
mod payments;
mod shop;
mod sse;
mod webhooks;
pub use after_sale::*;
pub use payments::*;
pub use shop::*;
pub use sse::*;
pub use webhooks::*;
