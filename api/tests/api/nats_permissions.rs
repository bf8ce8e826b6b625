//! The least-privilege NATS users of deploy/nats/auth.conf on a real nats-server: the api and
//! each worker kind run an order end to end under their own users, a payment provider may
//! publish payment events only, and the read-only event consumer may read events and publish
//! nothing.

use crate::private_nats::{
    PrivateNats, SERVICE_USERS, USERS, WAIT, as_pairs, last_sequence, nats_server_binary,
    nats_vars, refused, shop_on,
};
use common::domain::Role;
use common::messages::RefundSucceeded;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

// --- the services ---------------------------------------------------------------------------

#[tokio::test]
async fn the_order_worker_expires_reservations_under_its_own_user() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(
        &nats,
        &[
            ("RESERVATION_TTL_SECS", "1"),
            ("EXPIRY_SWEEP_INTERVAL_MS", "200"),
        ],
    )
    .await;

    let id = shop.confirmed_order(&nats, 3).await;

    shop.order_when(id, |o| o["status"] == "CANCELLED").await;
    shop.stock_becomes(10).await;
    nats.assert_not_refused(&SERVICE_USERS);
}

#[tokio::test]
async fn the_api_and_the_workers_confirm_and_cancel_orders_under_their_own_users() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    shop.confirmed_order(&nats, 1).await;
    let cancelled = shop.confirmed_order(&nats, 1).await;

    let res = shop
        .app
        .post_as(
            &shop.client,
            &format!("/api/v1/orders/{cancelled}/cancel"),
            &json!({}),
            &WAIT,
        )
        .await;

    assert!(res.status().is_success(), "{}", res.status());
    shop.order_when(cancelled, |o| o["status"] == "CANCELLED")
        .await;
    shop.stock_becomes(9).await;
    nats.assert_not_refused(&SERVICE_USERS);
}

#[tokio::test]
async fn api_replicas_tell_each_other_what_to_forget_under_the_api_user() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[("SESSION_CACHE_TTL_MS", "60000")]).await;
    let (app, client) = (&shop.app, &shop.client);
    let vars = nats_vars(
        &nats,
        "api",
        &[
            ("SESSION_CACHE_TTL_MS", "60000"),
            ("CATALOGUE_CACHE_TTL_MS", "60000"),
        ],
    );
    let other = app.replica(&as_pairs(&vars)).await;
    let admin = app.create_user(Role::Admin).await;
    let path = format!("/api/v1/products/{}", shop.mug);
    assert_eq!(other.get(&path).await.status(), 200);
    assert_eq!(other.get_as(client, "/api/v1/users/me").await.status(), 200);

    let res = app
        .patch_as(&admin, &path, &json!({"price": 999}), &[])
        .await;
    assert_eq!(res.status(), 200, "{}", nats.log());
    let res = app.post_empty_as(client, "/api/v1/auth/logout", &[]).await;
    assert_eq!(res.status(), 204);

    common::testing::eventually(
        Duration::from_secs(10),
        "the other replica told",
        || async {
            let product: Value = other.get(&path).await.json().await.ok()?;
            let me = other.get_as(client, "/api/v1/users/me").await.status();
            (product["price"] == 999 && me == 401).then_some(())
        },
    )
    .await;
    nats.assert_not_refused(&["api"]);
}

#[tokio::test]
async fn the_webhooks_worker_delivers_and_the_api_replays_under_their_own_users() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let admin = shop.app.create_user(Role::Admin).await;
    let receiver = common::testing::Receiver::start().await;
    let endpoint = shop
        .app
        .webhooks()
        .create(&admin, &receiver.url, &["*"])
        .await;
    receiver.verify_with(&[endpoint["secret"].as_str().unwrap()]);
    let since = chrono::Utc::now();

    shop.confirmed_order(&nats, 1).await;
    let delivered = receiver
        .wait_for(1, Duration::from_secs(20))
        .await
        .remove(0);
    let res = shop
        .app
        .post_as(
            &admin,
            &format!(
                "/api/v1/webhooks/{}/replay",
                endpoint["id"].as_str().unwrap()
            ),
            &json!({"since": since}),
            &[],
        )
        .await;

    assert_eq!(res.status(), 202, "{}", nats.log());
    let replayed = receiver
        .wait_for(2, Duration::from_secs(20))
        .await
        .remove(1);
    assert_eq!(replayed.webhook_id, delivered.webhook_id);
    assert_eq!(replayed.verified_by, [0]);
    nats.assert_not_refused(&SERVICE_USERS);
}

#[tokio::test]
async fn the_webhooks_worker_cannot_publish_order_events_or_commands() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let worker = nats.user("webhooks-worker").await;

    worker
        .assert_cannot_publish("orders.evt.status_changed")
        .await;
    worker.assert_cannot_publish("orders.cmd.transition").await;
}

// --- the payment provider -------------------------------------------------------------------

#[tokio::test]
async fn a_payment_provider_pays_an_order_under_its_own_user() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let provider = nats.user("payments").await;

    shop.paid_order(&nats, &provider).await;

    assert_eq!(shop.app.products().stock_of(shop.mug).await, 9);
    nats.assert_not_refused(&SERVICE_USERS);
}

#[tokio::test]
async fn a_payment_event_no_worker_understands_is_dead_lettered_and_an_admin_redrives_it() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let provider = nats.user("payments").await;
    let admin = shop.app.create_user(Role::Admin).await;

    assert!(
        provider.publish("payments.evt.unknown").await,
        "the provider publishes under payments.evt.>"
    );

    let letters = common::testing::eventually(Duration::from_secs(20), "a dead letter", || async {
        let page: Value = shop
            .app
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
    let res = shop
        .app
        .post_as(
            &admin,
            &format!("/api/v1/admin/dead-letters/{sequence}/redrive"),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(res.status(), 202, "{}", nats.log());
    nats.assert_not_refused(&SERVICE_USERS);
}

#[tokio::test]
async fn a_payment_provider_cannot_send_order_commands() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let provider = nats.user("payments").await;
    let api = nats.user("api").await;
    let before = last_sequence(&api.js, "ORDERS_CMD").await;

    for subject in [
        "orders.cmd.place",
        "orders.cmd.transition",
        "orders.cmd.fulfil",
        "orders.cmd.deliver",
    ] {
        provider.assert_cannot_publish(subject).await;
    }

    assert_eq!(last_sequence(&api.js, "ORDERS_CMD").await, before);
    let log = nats.log();
    assert!(
        refused(&log, "payments"),
        "the server logs refusals:\n{log}"
    );
}

#[tokio::test]
async fn a_payment_system_receives_refund_commands_and_answers_them_under_its_own_user() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let provider = nats.user("payments").await;
    let order_id = shop.paid_order(&nats, &provider).await;
    let admin = shop.app.create_user(Role::Admin).await;

    let res = shop
        .app
        .post_as(
            &admin,
            &format!("/api/v1/orders/{order_id}/refunds"),
            &json!({"amount": 250, "reason": "a chipped handle"}),
            &[("idempotency-key", "refund-1")],
        )
        .await;
    assert_eq!(res.status(), 202, "{}", nats.log());

    // The provider reads the command through its own consumer and answers it.
    let consumer = provider.durable("PAYMENTS_CMD", "payments").await;
    let (command, _) = crate::helpers::next_acked(&consumer, "a refund command").await;
    let refund_id: uuid::Uuid = command["data"]["refund_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    provider
        .bus()
        .publish(
            RefundSucceeded {
                refund_id,
                order_id,
                amount: common::money::Money::new(250).unwrap(),
                currency: common::money::Currency::new("USD").unwrap(),
                provider_reference: common::domain::Reference::new("psp-refund-r-1").unwrap(),
            },
            &common::correlation::CorrelationId::bounded("psp"),
        )
        .await
        .expect("the payment provider publishes refund outcomes");
    shop.order_when(order_id, |o| o["payment_status"] == "PARTIALLY_REFUNDED")
        .await;
    nats.assert_not_refused(&SERVICE_USERS);
}

#[tokio::test]
async fn a_payment_provider_cannot_send_refund_commands() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let provider = nats.user("payments").await;

    provider.assert_cannot_publish("payments.cmd.refund").await;
}

#[tokio::test]
async fn a_payment_provider_cannot_read_the_order_commands() {
    let nats = PrivateNats::start().await;
    let _env = nats.migrated_env().await;
    let provider = nats.user("payments").await;

    let orders = provider.js.get_stream("ORDERS_CMD").await;

    assert!(
        orders.is_err(),
        "the provider read the order commands' stream"
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
