//! Starting apps for a test: an api alone or with every worker, configured or behind proxies,
//! another [`Replica`] of one, and the cookie-keeping client they are asked through.

use super::{TestApp, TestUser, start};
use common::testing::{TcpProxy, TestEnv, socket_addr_of};

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
