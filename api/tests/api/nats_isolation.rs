//! What deploy/nats/auth.conf keeps apart, on a real nats-server: no user reads the replies
//! meant for another, the api cannot forge a payment, a worker cannot change a stream, runtime
//! users need the streams of the release step, and a warehouse may only adjust stock, ship and
//! deliver.

use crate::private_nats::{PrivateNats, config_as, last_sequence, migrate, payment};
use common::testing::TestEnv;
use futures::StreamExt;
use std::time::Duration;

#[tokio::test]
async fn no_user_can_read_the_replies_meant_for_another() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let provider = nats.user("payments").await;

    // The provider tries the api's reply subjects and the shared default prefix ...
    let mut spying = provider.client.subscribe("_INBOX_api.>").await.unwrap();
    let _shared = provider.client.subscribe("_INBOX.>").await.unwrap();
    provider.told("Subscription to \"_INBOX_api.>\"").await;
    provider.told("Subscription to \"_INBOX.>\"").await;

    // ... while the api, with its own prefix, gets every answer to its requests.
    let api = nats.user("api").await;
    assert_eq!(last_sequence(&api.js, "EVENTS").await, 0);
    provider.client.flush().await.unwrap();
    let spied = tokio::time::timeout(Duration::from_millis(200), spying.next()).await;
    assert!(
        !matches!(spied, Ok(Some(_))),
        "the payment provider read a reply meant for the api"
    );
}

#[tokio::test]
async fn the_api_user_cannot_publish_a_payment_event() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let api = nats.user("api").await;

    let forged = api
        .bus()
        .publish(
            payment(uuid::Uuid::now_v7(), 1250, "forged"),
            &common::correlation::CorrelationId::bounded("forged"),
        )
        .await;

    assert!(forged.is_err(), "the api published a payment event");
    api.told("Publish to \"payments.evt.succeeded\"").await;
    assert_eq!(last_sequence(&api.js, "EVENTS").await, 0);
}

#[tokio::test]
async fn a_worker_user_cannot_update_a_stream() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let worker = nats.user("orders-worker").await;
    let mut events = worker
        .js
        .get_stream("EVENTS")
        .await
        .expect("stream information is allowed");
    let before = events.info().await.unwrap().config.clone();
    let mut changed = before.clone();
    changed.max_age = Duration::from_secs(60);
    changed.max_bytes = -1;

    let updated = worker.js.update_stream(changed).await;

    assert!(updated.is_err(), "a worker updated EVENTS");
    worker
        .told("Publish to \"$JS.API.STREAM.UPDATE.EVENTS\"")
        .await;
    let after = events.info().await.unwrap().config.clone();
    assert_eq!(after.max_age, before.max_age);
    assert_eq!(after.max_bytes, before.max_bytes);
}

#[tokio::test]
async fn a_worker_user_cannot_create_a_stream() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let worker = nats.user("orders-worker").await;

    let created = worker
        .js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "ELSEWHERE".into(),
            subjects: vec!["elsewhere.>".into()],
            ..Default::default()
        })
        .await;

    assert!(created.is_err(), "a worker created a stream");
}

#[tokio::test]
async fn runtime_users_need_the_streams_of_the_release_step_and_say_so() {
    let nats = PrivateNats::start().await;
    let env = TestEnv::new().await;
    let api_refusals = |log: &str| {
        log.lines()
            .filter(|l| l.contains("Violation") && l.contains("User \"api\""))
            .count()
    };

    let refused = api::Application::build(config_as(&env, &nats, "api", &[])).await;

    let Err(e) = refused else {
        panic!("the api started without streams");
    };
    assert!(e.to_string().contains("api migrate"), "{e}");
    let refusals = api_refusals(&nats.log());
    migrate(&env, &nats).await;
    api::Application::build(config_as(&env, &nats, "api", &[]))
        .await
        .expect("the api starts once the streams exist");
    assert_eq!(
        api_refusals(&nats.log()),
        refusals,
        "the api asked for more than stream information:\n{}",
        nats.log()
    );
}

#[tokio::test]
async fn a_warehouse_may_publish_stock_adjustments_shipments_and_deliveries_only() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let warehouse = nats.user("warehouse").await;

    for subject in [
        "inventory.cmd.adjust",
        "orders.cmd.fulfil",
        "orders.cmd.deliver",
    ] {
        assert!(
            warehouse.publish(subject).await,
            "the warehouse publishes to {subject}"
        );
    }
    warehouse
        .assert_cannot_publish("orders.cmd.transition")
        .await;
}

#[tokio::test]
async fn a_warehouse_cannot_publish_a_payment_event() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let warehouse = nats.user("warehouse").await;

    warehouse
        .assert_cannot_publish("payments.evt.succeeded")
        .await;
}
