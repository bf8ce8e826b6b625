//! How a waiting placement learns its outcome: from the reply the inventory worker sends
//! straight to the replica that waits, or, should that reply be lost, from the status event;
//! and how an order accepted by one replica reads on another before it is recorded.

use crate::helpers::{Shop, TestUser, id_of, order_of, place_command, spawn_app};
use chrono::Utc;
use common::domain::OrderStatus;
use common::messages::{OrderStatusChanged, OutcomeLine, PlaceOrder, PlacedOutcome};
use common::messaging::{Message, OUTCOME_REPLY_HEADER, RawEnvelope};
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;
use workers::dispatch::Incoming;

/// A place command as the api published it, with the reply subject it named, heard on a core
/// subscription of the test's own (no worker runs: the test plays the inventory worker).
async fn commands(shop: &Shop) -> async_nats::Subscriber {
    let nats = async_nats::connect(common::testing::nats_url())
        .await
        .expect("NATS");
    let subject = shop.state.bus.namespace().subject(PlaceOrder::SUBJECT);
    let commands = nats.subscribe(subject).await.expect("subscribed");
    nats.flush().await.expect("flushed");
    commands
}

async fn next_command(commands: &mut async_nats::Subscriber) -> (PlaceOrder, Option<String>) {
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), commands.next())
        .await
        .expect("a place command in time")
        .expect("subscription open");
    let command = RawEnvelope::parse(&message.payload)
        .and_then(|e| e.data_as::<PlaceOrder>())
        .expect("a place command");
    let reply_to = message
        .headers
        .as_ref()
        .and_then(|h| h.get(OUTCOME_REPLY_HEADER))
        .map(|v| v.as_str().to_owned());
    (command, reply_to)
}

#[tokio::test]
async fn a_waiting_placement_is_answered_from_the_outcome_sent_straight_to_its_replica() {
    let shop = Shop::around(spawn_app().await).await;
    let mut commands = commands(&shop).await;
    let product = Uuid::now_v7();

    let body = order_of(&[(product, 2)]);
    let placing = shop
        .orders()
        .place(&shop.customer, &body, &[("prefer", "wait=10")]);
    let worker = async {
        let (command, reply_to) = next_command(&mut commands).await;
        let reply_to = reply_to.expect("a waiting placement names a reply subject");
        // Only the reply: nothing recorded, no status event.
        let outcome = PlacedOutcome {
            event: OrderStatusChanged {
                order_id: command.order_id,
                user_id: command.user_id,
                from: None,
                to: OrderStatus::Confirmed,
                at: Utc::now(),
                actor: "system:inventory".into(),
                reason: Some("stock reserved".into()),
                entry_id: Some(1),
                shipment: None,
            },
            items: vec![OutcomeLine {
                product_id: product,
                name: Some("Mug".into()),
                unit_price: Some(1250),
                quantity: common::money::Quantity::new(2).expect("quantity"),
                subtotal: Some(2500),
            }],
            total: 2500,
            currency: shop.state.config.store_currency.to_string(),
            rejection_reason: None,
            shipping_address: None,
        };
        let nats = async_nats::connect(common::testing::nats_url())
            .await
            .expect("NATS");
        nats.publish(reply_to, serde_json::to_vec(&outcome).expect("json").into())
            .await
            .expect("replied");
        nats.flush().await.expect("flushed");
    };
    let (res, ()) = tokio::join!(placing, worker);

    assert_eq!(res.status(), 201);
    let placed: Value = res.json().await.expect("json");
    assert_eq!(placed["status"], "CONFIRMED");
    assert_eq!(placed["items"][0]["name"], "Mug");
    assert_eq!(placed["total"], 2500);
    assert_eq!(placed["timeline"][0]["to"], "CONFIRMED");
    assert_eq!(placed["timeline"][0]["actor"], "system:inventory");
    assert_eq!(placed["payment_status"], "UNPAID");
}

#[tokio::test]
async fn a_waiting_placement_whose_outcome_reply_is_lost_is_answered_from_the_status_event() {
    let shop = Shop::around(spawn_app().await).await;
    let mug = shop.products().create("Mug", 1250, 10).await;
    let mut commands = commands(&shop).await;
    let ctx = shop.bus().worker_context();

    let body = order_of(&[(mug, 2)]);
    let placing = shop
        .orders()
        .place(&shop.customer, &body, &[("prefer", "wait=10")]);
    let worker = async {
        let (command, reply_to) = next_command(&mut commands).await;
        assert!(reply_to.is_some());
        // The inventory worker's own handler, recording the order and publishing its event;
        // the reply it would send is lost (the command reaches it without a reply subject).
        let handled =
            workers::placing::place(ctx, vec![Incoming::new(command, "lost-reply")]).await;
        assert!(handled.iter().all(Result::is_ok));
    };
    let (res, ()) = tokio::join!(placing, worker);

    assert_eq!(res.status(), 201);
    let placed: Value = res.json().await.expect("json");
    assert_eq!(placed["status"], "CONFIRMED");
    assert_eq!(
        shop.orders().read(&shop.customer, &id_of(&placed)).await,
        placed
    );
}

#[tokio::test]
async fn a_waiting_placement_answers_exactly_what_a_read_of_the_order_shows() {
    let shop = Shop::open().await;
    let mug = shop.products().create("Mug", 1250, 10).await;
    let tea = shop.products().create("Tea", 399, 0).await;

    // Confirmed, then rejected for the tea out of stock.
    for lines in [vec![(mug, 2)], vec![(tea, 1), (mug, 1)]] {
        let res = shop
            .orders()
            .place(&shop.customer, &order_of(&lines), &[("prefer", "wait=10")])
            .await;
        assert_eq!(res.status(), 201);
        let placed: Value = res.json().await.expect("json");

        assert_eq!(
            shop.orders().read(&shop.customer, &id_of(&placed)).await,
            placed
        );
    }
}

async fn read_on(
    replica: &crate::helpers::Replica,
    user: &TestUser,
    id: impl std::fmt::Display,
) -> (u16, Value) {
    let res = replica.get_as(user, &format!("/api/v1/orders/{id}")).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_order_accepted_by_one_replica_reads_pending_on_another_until_recorded() {
    // No worker: accepted orders stay unrecorded.
    let shop = Shop::around(spawn_app().await).await;
    let other = shop.replica(&[]).await;
    let stranger = shop.create_user(common::domain::Role::Client).await;
    let mug = shop.products().create("Mug", 1250, 10).await;

    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(mug, 2)]), &[])
        .await;
    assert_eq!(res.status(), 202);
    let id = id_of(&res.json::<Value>().await.expect("json"));

    let (status, order) = read_on(&other, &shop.customer, &id).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["items"][0]["quantity"], 2);
    // Another customer's pending order, and an order nobody accepted, are not found.
    assert_eq!(read_on(&other, &stranger, &id).await.0, 404);
    assert_eq!(read_on(&other, &shop.customer, Uuid::now_v7()).await.0, 404);
    // The replica that accepted it answers for it only while it is not recorded.
    let command = place_command(id.parse().expect("uuid"), shop.customer.id, mug, 2);
    assert_eq!(command.message_id(), format!("order:{id}:place"));
    let handled = workers::placing::place(
        shop.bus().worker_context(),
        vec![Incoming::new(command, "record")],
    )
    .await;
    assert!(handled.iter().all(Result::is_ok));
    let recorded = shop
        .orders()
        .when(&shop.customer, &id, |o| o["status"] != "PENDING")
        .await;
    assert_eq!(read_on(&other, &shop.customer, &id).await, (200, recorded));
}

#[tokio::test]
async fn an_order_placed_under_an_idempotency_key_reads_pending_on_another_replica() {
    // Its id is derived from the key, the same on every replica: it is answered for on a
    // subject of its own, not through the accepting replica's tagged subscription.
    let shop = Shop::around(spawn_app().await).await;
    let other = shop.replica(&[]).await;
    let mug = shop.products().create("Mug", 1250, 10).await;

    let res = shop
        .orders()
        .place(
            &shop.customer,
            &order_of(&[(mug, 3)]),
            &[("idempotency-key", "pending-elsewhere")],
        )
        .await;
    assert_eq!(res.status(), 202);
    let id = id_of(&res.json::<Value>().await.expect("json"));
    assert_eq!(
        id.parse::<Uuid>().expect("uuid").get_version(),
        Some(uuid::Version::Sha1)
    );

    let (status, order) = read_on(&other, &shop.customer, &id).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["items"][0]["quantity"], 3);
    // The ids without a key are v7, answered through the replica's one subscription.
    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(mug, 1)]), &[])
        .await;
    let id = id_of(&res.json::<Value>().await.expect("json"));
    assert_eq!(
        id.parse::<Uuid>().expect("uuid").get_version(),
        Some(uuid::Version::SortRand)
    );
    assert_eq!(read_on(&other, &shop.customer, &id).await.0, 200);
}
