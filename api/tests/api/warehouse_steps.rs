//! Shipments (`orders.cmd.fulfil`) and deliveries (`orders.cmd.deliver`) reported over the bus
//! by warehouses and carriers, with a plain NATS client: each made once per reference, however
//! often it arrives, and a reference names one order's step.

use crate::helpers::Shop;
use serde_json::{Value, json};
use uuid::Uuid;

/// Publishes a report of `kind` (`fulfil`, `deliver`) about `order` in its envelope, without a
/// message id: each publish is stored, as a report republished after the duplicate window is.
async fn report(shop: &Shop, kind: &str, order: &str, mut data: Value) {
    data["order_id"] = json!(order);
    let envelope = json!({
        "id": Uuid::new_v4(),
        "type": format!("orders.{kind}"),
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": format!("{kind}-{order}"),
        "data": data,
    });
    shop.bus()
        .publish_plain(&format!("orders.cmd.{kind}"), envelope)
        .await;
}

/// A shipment under `reference` with DHL tracking.
fn shipment(reference: &str) -> Value {
    json!({"reference": reference, "carrier": "DHL", "tracking_number": format!("JD-{reference}")})
}

/// The customer's order of two units of a new product, paid by staff; returns its id and the
/// product.
async fn a_paid_order(shop: &Shop) -> (String, Uuid) {
    let p = shop.products().create("P", 500, 10).await;
    let id = shop.confirmed_order(p, 2).await;
    shop.orders()
        .move_through(&shop.admin, &id, &["PAID"])
        .await;
    (id, p)
}

#[tokio::test]
async fn a_shipment_reported_again_under_its_reference_changes_nothing_twice() {
    let shop = Shop::open().await;
    let (id, p) = a_paid_order(&shop).await;

    for _ in 0..3 {
        report(&shop, "fulfil", &id, shipment("wms-1")).await;
    }
    shop.bus().quiescent().await;

    let shipped = shop.order_in(&id, "SHIPPED").await;
    assert_eq!(shipped["shipment"]["tracking_number"], "JD-wms-1");
    assert_eq!(shop.orders().transitions_to("SHIPPED").await, 1);
    assert_eq!(
        shop.orders().reservation_states(&id).await,
        vec!["committed"]
    );
    assert_eq!(shop.products().stock_of(p).await, 8, "sold once");
    assert_eq!(shop.bus().dead_letter_reasons().await, Vec::<String>::new());
    assert_eq!(
        shop.payments().reconciliation(&shop.admin).await["consistent"],
        true
    );
}

#[tokio::test]
async fn another_shipment_of_a_shipped_order_or_another_orders_reference_is_refused() {
    let shop = Shop::open().await;
    let (first, _) = a_paid_order(&shop).await;
    let (second, _) = a_paid_order(&shop).await;
    report(&shop, "fulfil", &first, shipment("wms-1")).await;
    shop.order_in(&first, "SHIPPED").await;

    report(&shop, "fulfil", &first, shipment("wms-2")).await;
    report(&shop, "fulfil", &second, shipment("wms-1")).await;
    shop.bus().quiescent().await;

    let reasons = shop.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains(&format!("order {first} is already SHIPPED")),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains(&format!("is order {first}'s move to SHIPPED")),
        "{reasons:?}"
    );
    let kept = shop.orders().read(&shop.admin, &first).await;
    assert_eq!(kept["shipment"]["tracking_number"], "JD-wms-1");
    assert_eq!(
        shop.orders().stored_status(&second).await.as_deref(),
        Some("PAID")
    );
}

#[tokio::test]
async fn a_delivery_applies_once_per_reference_and_only_to_a_shipped_order() {
    let shop = Shop::open().await;
    let (id, _) = a_paid_order(&shop).await;
    report(&shop, "deliver", &id, json!({"reference": "pod-0"})).await;
    shop.bus().quiescent().await;
    report(&shop, "fulfil", &id, shipment("wms-1")).await;
    shop.order_in(&id, "SHIPPED").await;

    for _ in 0..2 {
        report(&shop, "deliver", &id, json!({"reference": "pod-1"})).await;
    }
    shop.bus().quiescent().await;

    let delivered = shop.order_in(&id, "DELIVERED").await;
    let step = crate::helpers::last_step(&delivered);
    assert_eq!(step["actor"], "system:carrier");
    assert_eq!(step["reason"], "reference pod-1");
    assert_eq!(shop.orders().transitions_to("DELIVERED").await, 1);
    let reasons = shop.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("is PAID, cannot move to DELIVERED"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_report_naming_an_actor_is_refused_and_changes_nothing() {
    let shop = Shop::open().await;
    let (id, _) = a_paid_order(&shop).await;
    let mut forged = shipment("wms-1");
    forged["actor"] = json!("user:someone");

    report(&shop, "fulfil", &id, forged).await;
    shop.bus().quiescent().await;

    let reasons = shop.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("unknown field `actor`"), "{reasons:?}");
    assert_eq!(
        shop.orders().stored_status(&id).await.as_deref(),
        Some("PAID")
    );
}
