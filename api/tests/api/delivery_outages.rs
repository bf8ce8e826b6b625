//! Orders through outages and bad input: PostgreSQL unreachable for the workers, JetStream
//! unreachable for the api, and messages no handler can apply.

use crate::helpers::{
    Shop, assert_problem, order_of, place_command, spawn_app, spawn_app_behind_proxies,
};
use crate::orders_delivery::place_consumer;
use common::messages::PlaceOrder;
use common::messaging::Envelope;
use common::testing::{TcpProxy, eventually, socket_addr_of};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn orders_wait_while_postgres_is_unreachable_for_the_workers_and_settle_afterwards() {
    let shop = Shop::around(spawn_app().await).await;
    let pg = TcpProxy::start(socket_addr_of(&shop.env.database_url)).await;
    let via_proxy = format!("postgres://postgres@{}/{}", pg.addr, shop.env.database_name);
    shop.start_workers(shop.env.config_with(&[("DATABASE_URL", &via_proxy)]))
        .await;
    let product = shop.products().create("P", 100, 10).await;

    pg.cut();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let res = shop
            .orders()
            .place(&shop.customer, &order_of(&[(product, 1)]), &[])
            .await;
        assert_eq!(
            res.status(),
            202,
            "the api accepts while the workers' database is down"
        );
        ids.push(crate::helpers::id_of(&res.json().await.unwrap()));
    }
    // The workers take every command and fail on it meanwhile.
    eventually(Duration::from_secs(20), "every command tried", || async {
        (place_consumer(&shop).await?.delivered.stream_sequence >= 5).then_some(())
    })
    .await;
    assert_eq!(
        shop.count("SELECT count(*) FROM orders").await,
        0,
        "nothing applied while down"
    );

    pg.restore();
    for id in &ids {
        let order = shop.order_in(id, "CONFIRMED").await;
        assert_eq!(order["status"], "CONFIRMED");
    }
    assert_eq!(shop.products().stock_of(product).await, 5);
    assert!(
        shop.bus().dead_letter_reasons().await.is_empty(),
        "nothing was given up"
    );
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_with_their_reason_and_change_nothing() {
    let shop = Shop::open().await;
    let product = shop.products().create("P", 100, 10).await;
    let bad_quantity = json!({
        "id": Uuid::new_v4(), "type": "orders.place", "version": 1,
        "occurred_at": "2026-01-01T00:00:00Z", "correlation_id": "c",
        "data": {"order_id": Uuid::new_v4(), "user_id": shop.customer.id,
                 "items": [{"product_id": product, "quantity": 0}]}
    });
    let unknown_user = Envelope::<PlaceOrder>::new(
        place_command(Uuid::now_v7(), Uuid::new_v4(), product, 1),
        "c",
    );

    for (msg_id, payload) in [
        ("garbage", b"{not json".to_vec()),
        ("bad-quantity", bad_quantity.to_string().into_bytes()),
        ("unknown-user", serde_json::to_vec(&unknown_user).unwrap()),
    ] {
        shop.bus()
            .publish_bytes("orders.cmd.place", msg_id, payload)
            .await;
    }

    let reasons = eventually(Duration::from_secs(20), "three dead letters", || async {
        let reasons = shop.bus().dead_letter_reasons().await;
        (reasons.len() == 3).then_some(reasons)
    })
    .await;
    for expected in ["not a valid envelope", "items[0].quantity", "unknown user"] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }
    assert_eq!(shop.count("SELECT count(*) FROM orders").await, 0);
    assert_eq!(shop.products().stock_of(product).await, 10);
}

/// An api whose connection to JetStream is cut (and noticed), with an order to place.
struct CutOff {
    shop: Shop,
    nats: TcpProxy,
    /// Kept open: the api's PostgreSQL connections go through it.
    _pg: TcpProxy,
    body: Value,
}

async fn an_api_cut_off_from_jetstream() -> CutOff {
    let (app, pg, nats) = spawn_app_behind_proxies().await;
    let shop = Shop::around(app).await;
    let product = shop.products().create("P", 100, 10).await;
    nats.cut();
    eventually(Duration::from_secs(10), "client notices", || async {
        (shop.state.nats.connection_state() != async_nats::connection::State::Connected)
            .then_some(())
    })
    .await;
    CutOff {
        shop,
        nats,
        _pg: pg,
        body: order_of(&[(product, 1)]),
    }
}

const OUTAGE_KEY: [(&str, &str); 1] = [("idempotency-key", "during-outage")];

#[tokio::test]
async fn placing_an_order_while_jetstream_is_unreachable_is_a_503_that_creates_nothing() {
    // Bound whole: its proxies must outlive the test.
    let cut = an_api_cut_off_from_jetstream().await;
    let shop = &cut.shop;

    let res = shop
        .orders()
        .place(&shop.customer, &cut.body, &OUTAGE_KEY)
        .await;

    assert_problem(res, 503).await;
    assert_eq!(shop.count("SELECT count(*) FROM idempotency_keys").await, 0);
}

#[tokio::test]
async fn a_key_refused_while_jetstream_was_unreachable_works_once_it_is_back() {
    let cut = an_api_cut_off_from_jetstream().await;
    let shop = &cut.shop;
    assert_problem(
        shop.orders()
            .place(&shop.customer, &cut.body, &OUTAGE_KEY)
            .await,
        503,
    )
    .await;

    cut.nats.restore();
    eventually(Duration::from_secs(30), "client reconnects", || async {
        (shop.state.nats.connection_state() == async_nats::connection::State::Connected)
            .then_some(())
    })
    .await;
    let res = shop
        .orders()
        .place(&shop.customer, &cut.body, &OUTAGE_KEY)
        .await;

    assert_eq!(
        res.status(),
        202,
        "the same key works once the broker is back"
    );
}
