//! A private nats-server running deploy/nats/auth.conf, and the order service on it with each
//! process logged in as its own user, after the release step (`api migrate`, as `migrate`) has
//! created the streams.

use crate::helpers::{TestApp, TestUser, start};
use async_nats::jetstream::consumer::PullConsumer;
use common::domain::Role;
use common::messages::PaymentSucceeded;
use common::messaging::{Bus, Namespace};
use common::testing::TestEnv;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const USERS: [(&str, &str, &str); 9] = [
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
    ("carrier", "NATS_CARRIER_PASSWORD", "carrier-password"),
    (
        "webhooks-worker",
        "NATS_WEBHOOKS_WORKER_PASSWORD",
        "webhooks-password",
    ),
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
    pub async fn user(&self, user: &str) -> NatsUser {
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
        let js = jetstream(&client);
        NatsUser { client, js, errors }
    }

    /// A new test environment on which the release step has created the streams.
    pub async fn migrated_env(&self) -> TestEnv {
        let env = TestEnv::new().await;
        migrate(&env, self).await;
        env
    }

    /// Asserts the server refused nothing to any of `users`.
    pub fn assert_not_refused(&self, users: &[&str]) {
        let log = self.log();
        for user in users {
            assert!(!refused(&log, user), "{user} was refused something:\n{log}");
        }
    }
}

/// The users the api and the workers run as.
pub const SERVICE_USERS: [&str; 4] = [
    "api",
    "orders-worker",
    "inventory-worker",
    "webhooks-worker",
];

/// A client of a [`PrivateNats`] logged in as one user, and the errors the server sent it.
pub struct NatsUser {
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    errors: Arc<Mutex<Vec<String>>>,
}

impl NatsUser {
    /// Waits until the server has told this user of a permission violation containing `what`.
    pub async fn told(&self, what: &str) {
        common::testing::eventually(Duration::from_secs(5), what, || async {
            self.errors
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.contains("Permissions Violation") && e.contains(what))
                .then_some(())
        })
        .await;
    }

    /// Publishes `{}` to `subject` through JetStream; whether a stream stored it.
    pub async fn publish(&self, subject: &str) -> bool {
        match self.js.publish(subject.to_owned(), "{}".into()).await {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        }
    }

    /// Asserts a JetStream publish to `subject` is refused, and the server says so.
    pub async fn assert_cannot_publish(&self, subject: &str) {
        assert!(!self.publish(subject).await, "published to {subject}");
        self.told(&format!("Publish to \"{subject}\"")).await;
    }

    /// The bus with this user's rights, in the default namespace.
    pub fn bus(&self) -> Bus {
        Bus::new(self.js.clone(), Namespace::default())
    }

    /// A durable pull consumer named `name` of `stream`, created as this user.
    pub async fn durable(&self, stream: &str, name: &str) -> PullConsumer {
        self.js
            .get_stream(stream)
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"))
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(name.into()),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("a consumer of {stream}: {e}"))
    }
}

/// A payment provider's report that `order_id` was paid `amount` cents in USD.
pub fn payment(order_id: uuid::Uuid, amount: i64, reference: &str) -> PaymentSucceeded {
    PaymentSucceeded {
        order_id,
        amount: common::money::Money::new(amount).unwrap(),
        currency: common::money::Currency::new("USD").unwrap(),
        provider_reference: common::domain::Reference::new(reference).unwrap(),
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

/// The NATS variables of a process logged in to `nats` as `user`, then `overrides`.
pub fn nats_vars(
    nats: &PrivateNats,
    user: &str,
    overrides: &[(&str, &str)],
) -> Vec<(String, String)> {
    let inbox = inbox_of(user);
    [
        ("NATS_URL", nats.url.as_str()),
        ("NATS_NAMESPACE", ""),
        ("NATS_USER", user),
        ("NATS_PASSWORD", password_of(user)),
        ("NATS_INBOX_PREFIX", inbox.as_str()),
    ]
    .iter()
    .chain(overrides)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// `vars` as the `(name, value)` pairs a configuration takes.
pub fn as_pairs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The test configuration of `env` for a process logged in to `nats` as `user`.
pub fn config_as(
    env: &TestEnv,
    nats: &PrivateNats,
    user: &str,
    overrides: &[(&str, &str)],
) -> common::Config {
    env.config_with(&as_pairs(&nats_vars(nats, user, overrides)))
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
    let (api_config, orders_config, inventory_config, webhooks_config) = (
        config_as("api"),
        config_as("orders-worker"),
        config_as("inventory-worker"),
        config_as("webhooks-worker"),
    );
    let app = start(env, api_config).await;
    app.start_worker_kinds(orders_config, &[workers::Kind::Orders])
        .await;
    app.start_worker_kinds(inventory_config, &[workers::Kind::Inventory])
        .await;
    app.start_worker_kinds(webhooks_config, &[workers::Kind::Webhooks])
        .await;
    app
}

/// Whether the server refused anything to `user`.
pub fn refused(log: &str, user: &str) -> bool {
    log.lines()
        .any(|l| l.contains("Violation") && l.contains(&format!("User \"{user}\"")))
}

/// Waits up to ten seconds for an order's outcome.
pub const WAIT: [(&str, &str); 1] = [("prefer", "wait=10")];

/// The system on a [`PrivateNats`] with a client and a product of ten mugs at 12.50.
pub struct MugShop {
    pub app: TestApp,
    pub client: TestUser,
    pub mug: uuid::Uuid,
}

/// [`system_on`] `nats`, with a client and ten mugs.
pub async fn shop_on(nats: &PrivateNats, overrides: &[(&str, &str)]) -> MugShop {
    let app = system_on(nats, overrides).await;
    let client = app.create_user(Role::Client).await;
    let mug = app.products().create("Mug", 1250, 10).await;
    MugShop { app, client, mug }
}

impl MugShop {
    /// Places an order of `quantity` mugs and waits for its answer, which must be a
    /// confirmation; returns the order's id.
    pub async fn confirmed_order(&self, nats: &PrivateNats, quantity: i32) -> uuid::Uuid {
        let body = json!({"items": [{"product_id": self.mug, "quantity": quantity}]});
        let order: Value = self
            .app
            .post_as(&self.client, "/api/v1/orders", &body, &WAIT)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(order["status"], "CONFIRMED", "{}", nats.log());
        order["id"].as_str().unwrap().parse().unwrap()
    }

    /// Waits until order `id` satisfies `done`.
    pub async fn order_when(&self, id: uuid::Uuid, done: impl Fn(&Value) -> bool) -> Value {
        self.app
            .orders()
            .when(&self.client, &id.to_string(), done)
            .await
    }

    /// Waits until the mugs' stock is `stock` (deadline 10 s).
    pub async fn stock_becomes(&self, stock: i32) {
        common::testing::eventually(Duration::from_secs(10), "the mugs' stock", || async {
            (self.app.products().stock_of(self.mug).await == stock).then_some(())
        })
        .await;
    }

    /// A confirmed order paid by the payment provider, as `provider`; returns its id.
    pub async fn paid_order(&self, nats: &PrivateNats, provider: &NatsUser) -> uuid::Uuid {
        let id = self.confirmed_order(nats, 1).await;
        provider
            .bus()
            .publish(
                payment(id, 1250, "psp-1"),
                &common::correlation::CorrelationId::bounded("psp-corr-1"),
            )
            .await
            .expect("the payment provider publishes payment events");
        self.order_when(id, |o| o["status"] == "PAID").await;
        id
    }
}
