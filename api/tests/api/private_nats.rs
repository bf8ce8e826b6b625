//! A private nats-server running deploy/nats/auth.conf, and the order service on it with each
//! process logged in as its own user, after the release step (`api migrate`, as `migrate`) has
//! created the streams.

use crate::helpers::start;
use common::testing::TestEnv;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const USERS: [(&str, &str, &str); 7] = [
    ("migrate", "NATS_MIGRATE_PASSWORD", "migrate-password"),
    ("api", "NATS_API_PASSWORD", "api-password"),
    (
        "orders-worker",
        "NATS_ORDERS_WORKER_PASSWORD",
        "orders-password",
    ),
    (
        "inventory-worker",
        "NATS_INVENTORY_WORKER_PASSWORD",
        "inventory-password",
    ),
    ("payments", "NATS_PAYMENTS_PASSWORD", "payments-password"),
    (
        "event-reader",
        "NATS_EVENT_READER_PASSWORD",
        "reader-password",
    ),
    ("warehouse", "NATS_WAREHOUSE_PASSWORD", "warehouse-password"),
];

pub fn password_of(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _, _)| *u == user)
        .map(|(_, _, p)| *p)
        .unwrap()
}

pub fn nats_server_binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")]);
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .expect("nats-server is installed (scripts/test installs it)")
}

/// A private single-node nats-server with the production users, removed when dropped.
pub struct PrivateNats {
    child: Child,
    dir: PathBuf,
    pub url: String,
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl PrivateNats {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("nats-perms-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let auth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/auth.conf");
        std::fs::copy(&auth, dir.join("auth.conf")).unwrap();
        std::fs::write(
            dir.join("server.conf"),
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\ninclude ./auth.conf\n",
                dir.join("js").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut cmd = Command::new(nats_server_binary());
        cmd.arg("-c")
            .arg(dir.join("server.conf"))
            .stdout(Stdio::null())
            .stderr(log);
        for (_, var, password) in USERS {
            cmd.env(var, password);
        }
        let child = cmd.spawn().expect("start nats-server");
        let server = PrivateNats {
            child,
            dir,
            url: format!("nats://127.0.0.1:{port}"),
        };
        common::testing::eventually(Duration::from_secs(10), "nats-server listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A client logged in as `user` with its own inbox prefix, recording the errors the server
    /// sends it.
    pub async fn client(&self, user: &str) -> (async_nats::Client, Arc<Mutex<Vec<String>>>) {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let seen = errors.clone();
        let client = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password_of(user).into())
            .custom_inbox_prefix(inbox_of(user))
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        seen.lock().unwrap().push(e.to_string());
                    }
                }
            })
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{user} logs in: {e}"));
        (client, errors)
    }
}

pub fn jetstream(client: &async_nats::Client) -> async_nats::jetstream::Context {
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(2));
    js
}

pub async fn last_sequence(js: &async_nats::jetstream::Context, stream: &str) -> u64 {
    let mut stream = js.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// The reply subjects' prefix of `user`, as deploy/nats/auth.conf gives it.
pub fn inbox_of(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// The test configuration of `env` for a process logged in to `nats` as `user`.
pub fn config_as(
    env: &TestEnv,
    nats: &PrivateNats,
    user: &str,
    overrides: &[(&str, &str)],
) -> common::Config {
    let inbox = inbox_of(user);
    let mut vars = vec![
        ("NATS_URL", nats.url.as_str()),
        ("NATS_NAMESPACE", ""),
        ("NATS_USER", user),
        ("NATS_PASSWORD", password_of(user)),
        ("NATS_INBOX_PREFIX", inbox.as_str()),
    ];
    vars.extend_from_slice(overrides);
    env.config_with(&vars)
}

/// The release step (`api migrate`) on `nats`, as the `migrate` user.
pub async fn migrate(env: &TestEnv, nats: &PrivateNats) {
    api::release::migrate(&config_as(env, nats, "migrate", &[]))
        .await
        .unwrap_or_else(|e| panic!("api migrate as migrate: {e}\n{}", nats.log()));
}

/// The release step, then the api and each worker kind on `nats`, each logged in as its own
/// user.
pub async fn system_on(nats: &PrivateNats, overrides: &[(&str, &str)]) -> crate::helpers::TestApp {
    let env = TestEnv::new().await;
    migrate(&env, nats).await;
    let config_as = |user: &str| config_as(&env, nats, user, overrides);
    let (api_config, orders_config, inventory_config) = (
        config_as("api"),
        config_as("orders-worker"),
        config_as("inventory-worker"),
    );
    let app = start(env, api_config).await;
    app.start_worker_kinds(orders_config, &[workers::Kind::Orders])
        .await;
    app.start_worker_kinds(inventory_config, &[workers::Kind::Inventory])
        .await;
    app
}

/// Whether the server refused anything to `user`.
pub fn refused(log: &str, user: &str) -> bool {
    log.lines()
        .any(|l| l.contains("Violation") && l.contains(&format!("User \"{user}\"")))
}
