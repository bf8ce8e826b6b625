//! The `workers webhooks` binary as ops run it: killed in the middle of a delivery's retry
//! schedule, it loses no retry: the schedule waits in JetStream, and the next worker makes the
//! attempt when it is due, under the same `webhook-id`.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

use common::config::SecretString;
use common::correlation::CorrelationId;
use common::domain::OrderStatus;
use common::messages::OrderStatusChanged;
use common::messaging::{Bus, Namespace};
use common::testing::{Binary, Receiver, Reply, TEST_WEBHOOK_KEY, TestEnv, eventually, free_port};
use common::webhooks::{SecretBox, SigningSecret};
use std::time::Duration;
use uuid::Uuid;

/// The webhooks worker binary on `env`, with a retry schedule of `schedule`.
fn webhooks_worker(env: &TestEnv, schedule: &str) -> Binary {
    Binary::spawn(
        env.command(env!("CARGO_BIN_EXE_workers"))
            .arg("webhooks")
            .env("WORKER_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("WEBHOOK_ENCRYPTION_KEY", TEST_WEBHOOK_KEY)
            .env("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
            .env("WEBHOOK_RETRY_SCHEDULE", schedule)
            .env("NATS_STREAM_LIMITS", "EVENTS=16MiB/100000,WEBHOOKS=16MiB/100000,DEAD_LETTERS=16MiB/100000,ORDERS_CMD=16MiB/100000,INVENTORY_CMD=16MiB/100000,PAYMENTS_CMD=16MiB/100000"),
    )
}

/// Registers an endpoint for every event at `url` straight in the database, its secret sealed
/// as the api seals it; returns its secret.
async fn register(db: &sqlx::PgPool, url: &str) -> SigningSecret {
    let secrets = SecretBox::new(&SecretString::from(TEST_WEBHOOK_KEY)).unwrap();
    let (id, secret) = (Uuid::new_v4(), SigningSecret::generate());
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, events, secret) VALUES ($1, $2, '{*}', $3)",
    )
    .bind(id)
    .bind(url)
    .bind(secrets.seal(id, &secret))
    .execute(db)
    .await
    .unwrap();
    secret
}

#[tokio::test]
async fn killing_the_webhooks_worker_in_the_middle_of_a_schedule_loses_no_retry() {
    let env = TestEnv::new().await;
    let receiver = Receiver::start().await;
    receiver.script(&[Reply::Status(500)]);
    // The first worker migrates the database and provisions the streams.
    let first = webhooks_worker(&env, "0,3s");
    let db = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    eventually(Duration::from_secs(60), "the database migrated", || async {
        sqlx::query("SELECT 1 FROM webhook_endpoints LIMIT 1")
            .execute(&db)
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let secret = register(&db, &receiver.url).await;
    receiver.verify_with(&[secret.expose()]);
    let client = async_nats::connect(common::testing::nats_url())
        .await
        .unwrap();
    let bus = Bus::new(
        async_nats::jetstream::new(client),
        Namespace::new(env.namespace.clone()),
    );
    eventually(Duration::from_secs(60), "the EVENTS stream", || async {
        bus.jetstream()
            .get_stream(bus.namespace().name("EVENTS"))
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let event = OrderStatusChanged {
        order_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        from: None,
        to: OrderStatus::Confirmed,
        at: chrono::Utc::now(),
        actor: "system:inventory".into(),
        reason: None,
        entry_id: Some(1),
        shipment: None,
    };
    bus.publish(event, &CorrelationId::generate())
        .await
        .unwrap();
    let failed = receiver
        .wait_for(1, Duration::from_secs(30))
        .await
        .remove(0);
    // The failure is recorded, and its retry scheduled in the stream, before the kill.
    eventually(Duration::from_secs(10), "the first attempt recorded", || async {
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING' AND attempt_count = 1",
        )
        .fetch_one(&db)
        .await
        .ok();
        (pending == Some(1)).then_some(())
    })
    .await;
    drop(first); // SIGKILL: nothing is drained, acknowledged or flushed.
    let _second = webhooks_worker(&env, "0,3s");

    let retried = receiver
        .wait_for(2, Duration::from_secs(60))
        .await
        .remove(1);
    assert_eq!(retried.webhook_id, failed.webhook_id);
    assert_eq!(retried.raw, failed.raw);
    assert_eq!(retried.verified_by, [0]);
    eventually(
        Duration::from_secs(10),
        "the delivery recorded as succeeded",
        || async {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status::text FROM webhook_deliveries")
                    .fetch_one(&db)
                    .await
                    .ok();
            (status.as_deref() == Some("SUCCEEDED")).then_some(())
        },
    )
    .await;
}

#[test]
fn the_webhooks_kind_refuses_to_start_without_its_encryption_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_workers"))
        .arg("webhooks")
        .env_clear()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WEBHOOK_ENCRYPTION_KEY"), "{stderr}");
}
