//! Request ids are bounded wherever they enter: a client's `X-Request-Id` is kept only when
//! short and printable, else replaced by a generated one, everywhere it would have gone (the
//! answer, the order, the messages); a correlation id arriving on the bus is bounded the same
//! way by the workers; and the orders table holds no other.

use crate::helpers::{Shop, order_of, place_command};
use common::correlation::{CorrelationId, MAX_LEN};
use common::messages::PlaceOrder;
use common::messaging::{CORRELATION_HEADER, Envelope};
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// The correlation id (header and envelope) of the next status event of `order`.
async fn correlation_of_event(
    events: &mut async_nats::Subscriber,
    order: &str,
) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let message = events.next().await.expect("subscribed");
            let envelope: Value = serde_json::from_slice(&message.payload).unwrap();
            if envelope["data"]["order_id"] == order {
                let header = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(CORRELATION_HEADER))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                let inside = envelope["correlation_id"].as_str().unwrap().to_owned();
                return (header, inside);
            }
        }
    })
    .await
    .expect("a status event of the order")
}

async fn stored_correlation(shop: &Shop, order: &str) -> String {
    sqlx::query_scalar("SELECT correlation_id FROM orders WHERE id = $1::uuid")
        .bind(order)
        .fetch_one(&shop.state.db)
        .await
        .unwrap()
}

/// Places an order sending `request_id`; returns the order's id and the echoed request id.
async fn place_with_request_id(shop: &Shop, request_id: &str) -> (String, String) {
    let mug = shop.products().create("Mug", 1250, 5).await;
    let res = shop
        .client
        .post(shop.url("/api/v1/orders"))
        .bearer_auth(&shop.customer.token)
        .header("x-request-id", request_id)
        .header("prefer", "wait=10")
        .json(&order_of(&[(mug, 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let echoed = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "CONFIRMED");
    (order["id"].as_str().unwrap().to_owned(), echoed)
}

#[tokio::test]
async fn a_short_printable_request_id_is_echoed_stored_and_carried_as_sent() {
    let shop = Shop::open().await;
    let mut events = shop.bus().status_events().await;
    let sent = "pos-42:till/7.b64+x=";

    let (order, echoed) = place_with_request_id(&shop, sent).await;

    assert_eq!(echoed, sent);
    assert_eq!(stored_correlation(&shop, &order).await, sent);
    let (header, inside) = correlation_of_event(&mut events, &order).await;
    assert_eq!((header.as_str(), inside.as_str()), (sent, sent));
}

#[tokio::test]
async fn an_oversized_or_unprintable_request_id_is_replaced_by_a_generated_one_everywhere() {
    let shop = Shop::open().await;
    let mut events = shop.bus().status_events().await;
    for sent in [
        "r".repeat(100_000),
        "r".repeat(MAX_LEN + 1),
        "two words; <b>\"quoted\"</b>".to_owned(),
    ] {
        let (order, echoed) = place_with_request_id(&shop, &sent).await;

        assert_ne!(echoed, sent);
        assert!(Uuid::parse_str(&echoed).is_ok(), "a generated id: {echoed}");
        assert_eq!(stored_correlation(&shop, &order).await, echoed);
        let (header, inside) = correlation_of_event(&mut events, &order).await;
        assert_eq!(
            (header.as_str(), inside.as_str()),
            (echoed.as_str(), echoed.as_str())
        );
    }
}

#[tokio::test]
async fn an_answer_without_a_request_id_echoes_the_generated_one() {
    let shop = Shop::open().await;
    let res = shop.get("/api/v1/products").await;
    let echoed = res.headers()["x-request-id"].to_str().unwrap();
    assert!(Uuid::parse_str(echoed).is_ok(), "{echoed}");
}

/// Publishes a place command of one mug whose envelope carries `in_envelope` as its
/// correlation id, and the `Correlation-Id` header `in_header` if given (JetStream takes at
/// most 64 KiB of headers).
async fn publish_place(shop: &Shop, in_envelope: &str, in_header: Option<&str>) -> String {
    let mug = shop.products().create("Mug", 1250, 5).await;
    let order_id = Uuid::now_v7();
    let command = place_command(order_id, shop.customer.id, mug, 1);
    let payload = serde_json::to_vec(&Envelope::<PlaceOrder>::new(command, in_envelope)).unwrap();
    let bus = &shop.state.bus;
    let mut headers = async_nats::HeaderMap::new();
    if let Some(in_header) = in_header {
        headers.insert(CORRELATION_HEADER, in_header);
    }
    bus.publish_raw(
        bus.namespace().subject("orders.cmd.place"),
        format!("pos:{order_id}"),
        headers,
        payload.into(),
    )
    .await
    .unwrap();
    order_id.to_string()
}

#[tokio::test]
async fn a_command_from_the_bus_with_an_oversized_correlation_id_is_handled_under_a_bounded_one() {
    let shop = Shop::open().await;
    let mut events = shop.bus().status_events().await;
    let in_envelope = "e".repeat(200_000);
    let in_header = "h".repeat(60_000);
    for (header, expected) in [
        (Some(in_header.as_str()), CorrelationId::bounded(&in_header)),
        (None, CorrelationId::bounded(&in_envelope)),
    ] {
        let order = publish_place(&shop, &in_envelope, header).await;

        shop.order_in(&order, "CONFIRMED").await;
        assert!(expected.as_str().len() <= MAX_LEN);
        assert_eq!(stored_correlation(&shop, &order).await, expected.as_str());
        let (header, inside) = correlation_of_event(&mut events, &order).await;
        assert_eq!(header, expected.as_str());
        assert_eq!(inside, expected.as_str());
    }
}

#[tokio::test]
async fn the_orders_table_refuses_a_correlation_id_outside_the_bound() {
    let shop = Shop::open().await;
    let order = shop
        .confirmed_order(shop.products().create("Mug", 1250, 5).await, 1)
        .await;
    for bad in [
        "x".repeat(MAX_LEN + 1),
        "two words".to_owned(),
        String::new(),
    ] {
        let refused = sqlx::query("UPDATE orders SET correlation_id = $2 WHERE id = $1::uuid")
            .bind(&order)
            .bind(&bad)
            .execute(&shop.state.db)
            .await
            .unwrap_err();
        let code = refused.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("23514"), "{refused}");
    }
}
