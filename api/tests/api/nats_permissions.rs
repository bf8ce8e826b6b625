//! The least-privilege NATS users of deploy/nats/auth.conf on a real nats-server: the api and
//! each worker kind run an order end to end under their own users, a payment provider may
//! publish payment events only, and the read-only event consumer may read events and publish
//! nothing.

use crate::private_nats::{
    PrivateNats, USERS, jetstream, last_sequence, nats_server_binary, password_of, refused,
    system_on,
};
use common::domain::Role;
use common::messages::{PaymentSucceeded, RefundSucceeded};
use common::messaging::{Bus, Namespace};
use futures::StreamExt;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn the_order_worker_expires_reservations_under_its_own_user() {
    let nats = PrivateNats::start().await;
    let app = system_on(
        &nats,
        &[
            ("RESERVATION_TTL_SECS", "1"),
            ("EXPIRY_SWEEP_INTERVAL_MS", "200"),
        ],
    )
    .await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 4).await;
    let body = json!({"items": [{"product_id": mug, "quantity": 3}]});

    let order: Value = app
        .post_as(&client, "/api/v1/orders", &body, &[("prefer", "wait=10")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{}", nats.log());
    app.order_when(&client, order["id"].as_str().unwrap(), |o| {
        o["status"] == "CANCELLED"
    })
    .await;
    common::testing::eventually(Duration::from_secs(10), "stock released", || async {
        (app.stock_of(mug).await == 4).then_some(())
    })
    .await;
    let log = nats.log();
    for user in ["api", "orders-worker", "inventory-worker"] {
        assert!(!refused(&log, user), "{user} was refused something:\n{log}");
    }
}

#[tokio::test]
async fn each_user_of_the_nats_configuration_can_do_its_job_and_nothing_more() {
    let nats = PrivateNats::start().await;
    let app = system_on(&nats, &[]).await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    let wait = [("prefer", "wait=10")];
    let body = json!({"items": [{"product_id": mug, "quantity": 1}]});

    // An order confirmed, another one cancelled (stock released) through every worker step.
    let paid: Value = app
        .post_as(&client, "/api/v1/orders", &body, &wait)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "CONFIRMED", "{}", nats.log());
    let cancelled: Value = app
        .post_as(&client, "/api/v1/orders", &body, &wait)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "CONFIRMED");
    let cancelled_id = cancelled["id"].as_str().unwrap();
    let res = app
        .post_as(
            &client,
            &format!("/api/v1/orders/{cancelled_id}/cancel"),
            &json!({}),
            &wait,
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    app.order_when(&client, cancelled_id, |o| o["status"] == "CANCELLED")
        .await;

    // The payment provider pays the first order.
    let (provider, provider_errors) = nats.client("payments").await;
    let provider_js = jetstream(&provider);
    let paid_id: uuid::Uuid = paid["id"].as_str().unwrap().parse().unwrap();
    Bus::new(provider_js.clone(), Namespace::default())
        .publish(
            PaymentSucceeded {
                order_id: paid_id,
                amount: common::money::Money::new(1250).unwrap(),
                currency: common::money::Currency::new("USD").unwrap(),
                provider_reference: "psp-1".into(),
            },
            "psp-corr-1",
        )
        .await
        .expect("the payment provider publishes payment events");
    app.order_when(&client, &paid_id.to_string(), |o| o["status"] == "PAID")
        .await;
    assert_eq!(app.stock_of(mug).await, 9);

    // A payment event no worker understands is dead-lettered by the order worker; an ADMIN
    // lists it and re-drives it through the api.
    provider_js
        .publish("payments.evt.unknown", "not an envelope".into())
        .await
        .unwrap()
        .await
        .expect("the provider publishes under payments.evt.>");
    let admin = app.create_user(Role::Admin).await;
    let letters = common::testing::eventually(Duration::from_secs(20), "a dead letter", || async {
        let page: Value = app
            .get_as(&admin, "/api/v1/admin/dead-letters")
            .await
            .json()
            .await
            .ok()?;
        let items = page["items"].as_array()?.clone();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(letters[0]["subject"], "payments.evt.unknown");
    let sequence = letters[0]["sequence"].as_u64().unwrap();
    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/admin/dead-letters/{sequence}/redrive"),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 202, "{}", nats.log());

    // Counted with the api's user, which may read stream state.
    let (api_client, _) = nats.client("api").await;
    let api_js = jetstream(&api_client);
    let commands_before = last_sequence(&api_js, "ORDERS_CMD").await;
    let events_before = last_sequence(&api_js, "EVENTS").await;

    // ... but it may not send commands.
    let forged = provider_js
        .publish("orders.cmd.place", "{}".into())
        .await
        .unwrap()
        .await;
    assert!(forged.is_err(), "a payment provider placed a command");

    // The reader reads the events through its own durable consumer ...
    let (reader, reader_errors) = nats.client("event-reader").await;
    let reader_js = jetstream(&reader);
    let events = reader_js.get_stream("EVENTS").await.unwrap();
    let consumer = events
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("event-reader".into()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("the reader creates its consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut read = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.unwrap();
        message.ack().await.unwrap();
        read.push(message.subject.to_string());
    }
    assert!(
        read.iter().any(|s| s == "orders.evt.status_changed"),
        "{read:?}"
    );
    assert!(
        read.iter().any(|s| s == "payments.evt.succeeded"),
        "{read:?}"
    );
    // ... and publishes nothing: no event, no command, not even through JetStream.
    for subject in ["orders.evt.status_changed", "payments.evt.succeeded"] {
        let published = reader_js.publish(subject, "{}".into()).await.unwrap().await;
        assert!(published.is_err(), "the reader published to {subject}");
    }
    reader
        .publish("orders.cmd.place", "{}".into())
        .await
        .unwrap();
    reader.flush().await.unwrap();
    // Nor may it take over a worker's consumer.
    let stolen = events
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("orders-payment-events")
        .await;
    assert!(stolen.is_err(), "the reader read a worker's consumer");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(last_sequence(&api_js, "ORDERS_CMD").await, commands_before);
    assert_eq!(last_sequence(&api_js, "EVENTS").await, events_before);
    let provider_errors = provider_errors.lock().unwrap().join("\n");
    assert!(
        provider_errors.contains("Permissions Violation for Publish to \"orders.cmd.place\""),
        "{provider_errors}"
    );
    let reader_errors = reader_errors.lock().unwrap().join("\n");
    for subject in [
        "orders.evt.status_changed",
        "payments.evt.succeeded",
        "orders.cmd.place",
    ] {
        assert!(
            reader_errors.contains(&format!(
                "Permissions Violation for Publish to \"{subject}\""
            )),
            "{subject}: {reader_errors}"
        );
    }
    // The application users never hit a permission they lack.
    let log = nats.log();
    assert!(
        refused(&log, "payments"),
        "the server logs refusals:\n{log}"
    );
    for user in ["api", "orders-worker", "inventory-worker"] {
        assert!(!refused(&log, user), "{user} was refused something:\n{log}");
    }
}

#[tokio::test]
async fn a_payment_system_receives_refund_commands_and_answers_them_under_its_own_user() {
    let nats = PrivateNats::start().await;
    let app = system_on(&nats, &[]).await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    let body = json!({"items": [{"product_id": mug, "quantity": 1}]});
    let order: Value = app
        .post_as(&client, "/api/v1/orders", &body, &[("prefer", "wait=10")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{}", nats.log());
    let order_id: uuid::Uuid = order["id"].as_str().unwrap().parse().unwrap();
    let (provider, provider_errors) = nats.client("payments").await;
    let provider_js = jetstream(&provider);
    let provider_bus = Bus::new(provider_js.clone(), Namespace::default());
    provider_bus
        .publish(
            PaymentSucceeded {
                order_id,
                amount: common::money::Money::new(1250).unwrap(),
                currency: common::money::Currency::new("USD").unwrap(),
                provider_reference: "psp-r-1".into(),
            },
            "psp",
        )
        .await
        .unwrap();
    app.order_when(&client, &order_id.to_string(), |o| o["status"] == "PAID")
        .await;

    let res = app
        .post_as(
            &admin,
            &format!("/api/v1/orders/{order_id}/refunds"),
            &json!({"amount": 250, "reason": "a chipped handle"}),
            &[("idempotency-key", "refund-1")],
        )
        .await;
    assert_eq!(res.status(), 202, "{}", nats.log());

    // The provider reads the command through its own consumer and answers it.
    let commands = provider_js.get_stream("PAYMENTS_CMD").await.unwrap();
    let consumer = commands
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("payments".into()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("the provider creates its consumer");
    let command = common::testing::eventually(Duration::from_secs(20), "a refund command", || {
        let consumer = consumer.clone();
        async move {
            let mut batch = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .ok()?;
            let message = batch.next().await?.ok()?;
            message.ack().await.ok()?;
            serde_json::from_slice::<Value>(&message.payload).ok()
        }
    })
    .await;
    let refund_id: uuid::Uuid = command["data"]["refund_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    provider_bus
        .publish(
            RefundSucceeded {
                refund_id,
                order_id,
                amount: common::money::Money::new(250).unwrap(),
                currency: common::money::Currency::new("USD").unwrap(),
                provider_reference: "psp-refund-r-1".into(),
            },
            "psp",
        )
        .await
        .expect("the payment provider publishes refund outcomes");
    app.order_when(&client, &order_id.to_string(), |o| {
        o["payment_status"] == "PARTIALLY_REFUNDED"
    })
    .await;

    // Nothing more: no refund command of its own, no other stream's consumer.
    let forged = provider_js
        .publish("payments.cmd.refund", "{}".into())
        .await
        .unwrap()
        .await;
    assert!(forged.is_err(), "the provider published a refund command");
    let orders = provider_js.get_stream("ORDERS_CMD").await;
    assert!(
        orders.is_err(),
        "the provider read the order commands' stream"
    );
    let errors = provider_errors.lock().unwrap().join("\n");
    assert!(
        errors.contains("Permissions Violation for Publish to \"payments.cmd.refund\""),
        "{errors}"
    );
    let log = nats.log();
    for user in ["api", "orders-worker", "inventory-worker"] {
        assert!(!refused(&log, user), "{user} was refused something:\n{log}");
    }
}

#[tokio::test]
async fn api_replicas_tell_each_other_what_to_forget_under_the_api_user() {
    let nats = PrivateNats::start().await;
    let app = system_on(&nats, &[("SESSION_CACHE_TTL_MS", "60000")]).await;
    let other = app
        .replica(&[
            ("NATS_URL", nats.url.as_str()),
            ("NATS_NAMESPACE", ""),
            ("NATS_USER", "api"),
            ("NATS_PASSWORD", password_of("api")),
            ("NATS_INBOX_PREFIX", "_INBOX_api"),
            ("SESSION_CACHE_TTL_MS", "60000"),
            ("CATALOGUE_CACHE_TTL_MS", "60000"),
        ])
        .await;
    let admin = app.create_user(Role::Admin).await;
    let client = app.create_user(Role::Client).await;
    let mug = app.create_product("Mug", 1250, 10).await;
    let path = format!("/api/v1/products/{mug}");
    assert_eq!(other.get(&path).await.status(), 200);
    assert_eq!(
        other.get_as(&client, "/api/v1/users/me").await.status(),
        200
    );

    let res = app
        .patch_as(&admin, &path, &json!({"price": 999}), &[])
        .await;
    assert_eq!(res.status(), 200, "{}", nats.log());
    let res = app.post_empty_as(&client, "/api/v1/auth/logout", &[]).await;
    assert_eq!(res.status(), 204);

    common::testing::eventually(
        Duration::from_secs(10),
        "the other replica told",
        || async {
            let product: Value = other.get(&path).await.json().await.ok()?;
            let me = other.get_as(&client, "/api/v1/users/me").await.status();
            (product["price"] == 999 && me == 401).then_some(())
        },
    )
    .await;
    let log = nats.log();
    assert!(
        !refused(&log, "api"),
        "the api was refused something:\n{log}"
    );
}

#[test]
fn the_cluster_configuration_is_accepted_by_nats_server() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/cluster.conf");
    let mut cmd = Command::new(nats_server_binary());
    cmd.arg("-t")
        .arg("-c")
        .arg(&config)
        .env("SERVER_NAME", "nats-0");
    for (_, var, password) in USERS {
        cmd.env(var, password);
    }
    let out = cmd.output().expect("run nats-server -t");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("is valid"), "{said}");
}
