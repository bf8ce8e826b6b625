//! Test harness shared by the crates' integration tests: every test gets its own database and
//! its own `NATS_NAMESPACE` on the shared servers, so the suite runs in parallel; a TCP proxy
//! lets a test cut a dependency off and restore it; a binary under test runs as a child process
//! against a test's environment.
//!
//! The servers are found through `TEST_DATABASE_URL` (an administrative connection, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `NATS_URL` (default `nats://127.0.0.1:4222`).

#![allow(clippy::unwrap_used)] // test support: a failed set-up should fail the test loudly

use crate::config::Config;

mod receiver;
pub use receiver::{Received, Receiver, Reply};
use std::collections::HashMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// The tests' `WEBHOOK_ENCRYPTION_KEY` (32 bytes, base64).
pub const TEST_WEBHOOK_KEY: &str = "Baqg6hB4UIKK8gM0sf9i0C9pluWgDSA/usIyGvDNVYA=";

/// The administrative PostgreSQL URL used to create per-test databases.
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A fresh, empty database and a fresh namespace; dropped (best effort) with this value.
pub struct TestEnv {
    pub database_name: String,
    pub namespace: String,
    /// URL of the test database (direct, not through any proxy).
    pub database_url: String,
    cleaned: bool,
}

impl TestEnv {
    pub async fn new() -> Self {
        use sqlx::Connection;
        crate::startup::install_tls_provider();
        let id = uuid::Uuid::new_v4().simple().to_string();
        // The creating process's id is part of the name, so `scripts/test` can tell the
        // databases a killed run left behind from those of a suite still running beside it.
        let database_name = format!("test_{}_{}", std::process::id(), &id[..16]);
        let namespace = format!("t{}", &id[..12]);
        let admin = admin_database_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to PostgreSQL at TEST_DATABASE_URL");
        // The name is generated here from hex digits only.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            r#"CREATE DATABASE "{database_name}""#
        )))
        .execute(&mut conn)
        .await
        .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&database_name);
        TestEnv {
            database_name,
            namespace,
            database_url: url.to_string(),
            cleaned: false,
        }
    }

    /// A configuration for this environment with every listener on a free port.
    pub fn config(&self) -> Config {
        self.config_with(&[])
    }

    /// Like [`TestEnv::config`] with some variables overridden.
    pub fn config_with(&self, overrides: &[(&str, &str)]) -> Config {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), self.database_url.clone()),
            ("NATS_URL".into(), nats_url()),
            ("NATS_NAMESPACE".into(), self.namespace.clone()),
            ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
            ("HTTP_ADDR".into(), "127.0.0.1:0".into()),
            ("WORKER_HTTP_ADDR".into(), "127.0.0.1:0".into()),
            ("COOKIE_SECURE".into(), "false".into()),
            ("RUST_LOG".into(), "warn".into()),
            // JetStream reserves a stream's byte limit on the shared server: keep them small.
            (
                "NATS_STREAM_LIMITS".into(),
                "ORDERS_CMD=16MiB/100000,INVENTORY_CMD=16MiB/100000,PAYMENTS_CMD=16MiB/100000,EVENTS=16MiB/100000,DEAD_LETTERS=16MiB/100000,WEBHOOKS=16MiB/100000".into(),
            ),
            ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
            ("WEBHOOK_ENCRYPTION_KEY".into(), TEST_WEBHOOK_KEY.into()),
            // The tests' receivers listen on 127.0.0.1, over http.
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS".into(), "true".into()),
        ]);
        for (k, v) in overrides {
            vars.insert((*k).into(), (*v).into());
        }
        Config::from_lookup(|k| vars.get(k).cloned()).expect("valid test configuration")
    }

    /// A command running the binary at `program` against this environment: nothing inherited
    /// but its database, NATS server and namespace, `RUST_LOG=warn`, and its output discarded.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env("NATS_URL", nats_url())
            .env("NATS_NAMESPACE", &self.namespace)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }
}

impl Drop for TestEnv {
    /// Deletes the namespace's streams and the database, so repeated runs leave nothing behind.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        self.cleaned = true;
        let namespace = self.namespace.clone();
        let database = self.database_name.clone();
        // Drop runs inside the test's runtime; do the async clean-up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use futures::TryStreamExt;
                use sqlx::Connection;
                if let Ok(client) = async_nats::connect(nats_url()).await {
                    let js = async_nats::jetstream::new(client);
                    let names: Vec<String> =
                        js.stream_names().try_collect().await.unwrap_or_default();
                    for name in names
                        .iter()
                        .filter(|n| n.starts_with(&format!("{namespace}_")))
                    {
                        let _ = js.delete_stream(name).await;
                    }
                }
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_database_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A TCP proxy in front of a real server. `cut()` drops every connection and refuses new ones
/// (as an unreachable server would); `restore()` lets connections through again.
#[derive(Clone)]
pub struct TcpProxy {
    pub addr: std::net::SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

struct ProxyState {
    up: bool,
    connections: Vec<AbortHandle>,
}

impl TcpProxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            up: true,
            connections: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut guard = shared.lock().unwrap();
                if !guard.up {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                guard.connections.retain(|c| !c.is_finished());
                guard.connections.push(task.abort_handle());
            }
        });
        TcpProxy { addr, state }
    }

    pub fn cut(&self) {
        let mut guard = self.state.lock().unwrap();
        guard.up = false;
        for c in guard.connections.drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.state.lock().unwrap().up = true;
    }
}

/// A port of 127.0.0.1 free when asked, for a binary under test to listen on: picked at
/// random below the system's ephemeral range (32768 and up on Linux), where the servers
/// other tests bind to port 0 are put, so one of them cannot take it before the binary
/// binds it (and answer its readiness check in its place).
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new();
    (0u64..)
        .map(|attempt| 20_000 + (random.hash_one(attempt) % 12_000) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap_or(0)
}

/// A binary under test running as a child process; killed when dropped, however the test ends.
pub struct Binary {
    child: Child,
    name: String,
}

impl Binary {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> Self {
        let name = std::path::Path::new(command.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Binary { child, name }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Panics unless the process runs with transparent huge pages off (`THP_enabled: 0` in its
    /// `/proc/<pid>/status`), as every service binary turns them off at start-up.
    pub fn assert_huge_pages_off(&self) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id())).unwrap();
        let enabled = status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(str::trim);
        assert_eq!(enabled, Some("0"), "{} runs with huge pages on", self.name);
    }

    /// Sends SIGTERM and returns the exit status; panics unless the process exits within
    /// `within`.
    pub async fn terminate(mut self, within: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "SIGTERM to {} refused", self.name);
        let what = format!("{} to stop after SIGTERM", self.name);
        let child = &mut self.child;
        eventually(within, &what, || {
            let exit = child.try_wait().unwrap();
            async move { exit }
        })
        .await
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resolves a `host:port` from a URL (for putting a proxy in front of it).
pub fn socket_addr_of(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap().to_owned();
    let port = parsed
        .port_or_known_default()
        .unwrap_or(match parsed.scheme() {
            "nats" => 4222,
            _ => 5432,
        });
    (host.as_str(), port)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
