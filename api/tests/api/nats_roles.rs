//! What outside systems may ask of orders, on a real nats-server running deploy/nats/auth.conf:
//! a warehouse ships paid orders and delivers, a carrier delivers, each recorded as its role;
//! neither can move an order by a transition, which only the order service's own users
//! publish, so neither can mark an order PAID or cancel a paid one.

use crate::private_nats::{PrivateNats, SERVICE_USERS, last_sequence, shop_on};
use common::correlation::CorrelationId;
use common::domain::OrderStatus;
use common::messages::{DeliverOrder, FulfilOrder, TransitionOrder};
use serde_json::Value;
use uuid::Uuid;

/// A warehouse's shipment of `order_id` under `reference`, with UPS tracking.
fn shipment(order_id: Uuid, reference: &str) -> FulfilOrder {
    FulfilOrder {
        order_id,
        reference: common::domain::Reference::new(reference).unwrap(),
        carrier: "UPS".into(),
        tracking_number: format!("1Z-{reference}"),
        tracking_url: None,
        lines: None,
    }
}

/// A delivery of `order_id` under `reference`.
fn delivery(order_id: Uuid, reference: &str) -> DeliverOrder {
    DeliverOrder {
        order_id,
        reference: common::domain::Reference::new(reference).unwrap(),
        fulfilment_id: None,
    }
}

/// Who made the order's move to `to`, as its timeline shows it.
fn actor_of(order: &Value, to: &str) -> String {
    order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "status" && e["to"] == to)
        .and_then(|e| e["actor"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_warehouse_ships_a_paid_order_and_delivers_it_under_its_own_user() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let provider = nats.user("payments").await;
    let warehouse = nats.user("warehouse").await;
    let id = shop.paid_order(&nats, &provider).await;

    warehouse
        .bus()
        .publish(shipment(id, "wms-1"), &CorrelationId::bounded("wms"))
        .await
        .expect("the warehouse ships");
    shop.order_when(id, |o| o["status"] == "SHIPPED").await;
    warehouse
        .bus()
        .publish(delivery(id, "wms-van-1"), &CorrelationId::bounded("wms"))
        .await
        .expect("the warehouse delivers");
    let delivered = shop.order_when(id, |o| o["status"] == "DELIVERED").await;

    assert_eq!(delivered["shipment"]["tracking_number"], "1Z-wms-1");
    assert_eq!(actor_of(&delivered, "SHIPPED"), "system:warehouse");
    assert_eq!(actor_of(&delivered, "DELIVERED"), "system:carrier");
    nats.assert_not_refused(&["warehouse", "payments"]);
    nats.assert_not_refused(&SERVICE_USERS);
}

#[tokio::test]
async fn a_warehouse_cannot_mark_an_order_paid_or_cancel_a_paid_one_by_a_transition() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let provider = nats.user("payments").await;
    let warehouse = nats.user("warehouse").await;
    let api = nats.user("api").await;
    let unpaid = shop.confirmed_order(&nats, 1).await;
    let paid = shop.paid_order(&nats, &provider).await;
    let before = last_sequence(&api.js, "ORDERS_CMD").await;

    for (id, to) in [(unpaid, OrderStatus::Paid), (paid, OrderStatus::Cancelled)] {
        let forged = warehouse
            .bus()
            .publish(
                TransitionOrder::new(
                    id,
                    to,
                    common::domain::Actor::new("system:warehouse").unwrap(),
                ),
                &CorrelationId::bounded("forged"),
            )
            .await;
        assert!(forged.is_err(), "the warehouse moved order {id} to {to}");
    }

    warehouse.told("Publish to \"orders.cmd.transition\"").await;
    assert_eq!(last_sequence(&api.js, "ORDERS_CMD").await, before);
    assert_eq!(
        shop.app.orders().stored_status(unpaid).await.as_deref(),
        Some("CONFIRMED")
    );
    assert_eq!(
        shop.app.orders().stored_status(paid).await.as_deref(),
        Some("PAID")
    );
}

#[tokio::test]
async fn a_carrier_delivers_a_shipped_order_and_may_publish_nothing_else() {
    let nats = PrivateNats::start().await;
    let shop = shop_on(&nats, &[]).await;
    let provider = nats.user("payments").await;
    let warehouse = nats.user("warehouse").await;
    let carrier = nats.user("carrier").await;
    let id = shop.paid_order(&nats, &provider).await;
    warehouse
        .bus()
        .publish(shipment(id, "wms-2"), &CorrelationId::bounded("wms"))
        .await
        .expect("the warehouse ships");
    shop.order_when(id, |o| o["status"] == "SHIPPED").await;

    carrier
        .bus()
        .publish(delivery(id, "pod-2"), &CorrelationId::bounded("carrier"))
        .await
        .expect("the carrier delivers");

    let delivered = shop.order_when(id, |o| o["status"] == "DELIVERED").await;
    assert_eq!(actor_of(&delivered, "DELIVERED"), "system:carrier");
    nats.assert_not_refused(&["carrier"]);
    for subject in [
        "orders.cmd.fulfil",
        "orders.cmd.transition",
        "inventory.cmd.adjust",
        "payments.evt.succeeded",
    ] {
        carrier.assert_cannot_publish(subject).await;
    }
}
