//! What deploy/nats/auth.conf keeps apart, on a real nats-server: no user reads the replies
//! meant for another, the api cannot forge a payment, a worker cannot change a stream, runtime
//! users need the streams of the release step, and a warehouse may only adjust stock and move
//! orders.

use crate::private_nats::{PrivateNats, config_as, jetstream, last_sequence, migrate};
use common::messages::PaymentSucceeded;
use common::messaging::{Bus, Namespace};
use common::testing::TestEnv;
use futures::StreamExt;
use std::time::Duration;

/// Waits until the server has told `errors`' client of a permission violation containing
/// `what`.
async fn told(errors: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, what: &str) {
    common::testing::eventually(Duration::from_secs(5), what, || async {
        errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("Permissions Violation") && e.contains(what))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn no_user_can_read_the_replies_meant_for_another() {
    let nats = PrivateNats::start().await;
    let env = TestEnv::new().await;
    migrate(&env, &nats).await;
    let (provider, provider_errors) = nats.client("payments").await;

    // The provider tries the api's reply subjects and the shared default prefix ...
    let mut spying = provider.subscribe("_INBOX_api.>").await.unwrap();
    let _shared = provider.subscribe("_INBOX.>").await.unwrap();
    told(&provider_errors, "Subscription to \"_INBOX_api.>\"").await;
    told(&provider_errors, "Subscription to \"_INBOX.>\"").await;

    // ... while the api, with its own prefix, gets every answer to its requests.
    let (api, _) = nats.client("api").await;
    let api_js = jetstream(&api);
    assert_eq!(last_sequence(&api_js, "EVENTS").await, 0);
    provider.flush().await.unwrap();
    let spied = tokio::time::timeout(Duration::from_millis(200), spying.next()).await;
    assert!(
        !matches!(spied, Ok(Some(_))),
        "the payment provider read a reply meant for the api"
    );
}

#[tokio::test]
async fn the_api_user_cannot_publish_a_payment_event() {
    let nats = PrivateNats::start().await;
    let env = TestEnv::new().await;
    migrate(&env, &nats).await;
    let (api, api_errors) = nats.client("api").await;
    let api_js = jetstream(&api);

    let forged = Bus::new(api_js.clone(), Namespace::default())
        .publish(
            PaymentSucceeded {
                order_id: uuid::Uuid::now_v7(),
                amount: common::money::Money::new(1250).unwrap(),
                currency: common::money::Currency::new("USD").unwrap(),
                provider_reference: "forged".into(),
            },
            "forged",
        )
        .await;

    assert!(forged.is_err(), "the api published a payment event");
    told(&api_errors, "Publish to \"payments.evt.succeeded\"").await;
    assert_eq!(last_sequence(&api_js, "EVENTS").await, 0);
}

#[tokio::test]
async fn a_worker_user_cannot_create_or_update_a_stream() {
    let nats = PrivateNats::start().await;
    let env = TestEnv::new().await;
    migrate(&env, &nats).await;
    let (worker, worker_errors) = nats.client("orders-worker").await;
    let js = jetstream(&worker);
    let mut events = js
        .get_stream("EVENTS")
        .await
        .expect("stream information is allowed");
    let before = events.info().await.unwrap().config.clone();

    let mut changed = before.clone();
    changed.max_age = Duration::from_secs(60);
    changed.max_bytes = -1;
    assert!(
        js.update_stream(changed).await.is_err(),
        "a worker updated EVENTS"
    );
    let created = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "ELSEWHERE".into(),
            subjects: vec!["elsewhere.>".into()],
            ..Default::default()
        })
        .await;
    assert!(created.is_err(), "a worker created a stream");

    told(
        &worker_errors,
        "Publish to \"$JS.API.STREAM.UPDATE.EVENTS\"",
    )
    .await;
    let after = events.info().await.unwrap().config.clone();
    assert_eq!(after.max_age, before.max_age);
    assert_eq!(after.max_bytes, before.max_bytes);
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
async fn a_warehouse_may_publish_stock_adjustments_and_transitions_and_nothing_else() {
    let nats = PrivateNats::start().await;
    let env = TestEnv::new().await;
    migrate(&env, &nats).await;
    let (warehouse, errors) = nats.client("warehouse").await;
    let js = jetstream(&warehouse);

    js.publish("inventory.cmd.adjust", "{}".into())
        .await
        .unwrap()
        .await
        .expect("the warehouse publishes stock adjustments");
    js.publish("orders.cmd.transition", "{}".into())
        .await
        .unwrap()
        .await
        .expect("the warehouse ships orders with tracking");
    let paid = js
        .publish("payments.evt.succeeded", "{}".into())
        .await
        .unwrap()
        .await;

    assert!(paid.is_err(), "the warehouse published a payment event");
    told(&errors, "Publish to \"payments.evt.succeeded\"").await;
}
