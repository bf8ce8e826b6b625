//! Split shipments reported over the bus: a warehouse ships some lines (`orders.cmd.fulfil`
//! with `lines`) and a carrier delivers one shipment (`orders.cmd.deliver` with
//! `fulfilment_id`), each made once per reference; a quantity over what is left is
//! dead-lettered naming the line and changes nothing.

use crate::helpers::{SoldShop, id_of, lines_of};
use serde_json::{Value, json};
use uuid::Uuid;

/// Publishes a report of `kind` about the sold order, without a message id: each publish is
/// stored, as a report republished after the duplicate window is.
async fn report(sold: &SoldShop, kind: &str, mut data: Value) {
    data["order_id"] = json!(sold.order);
    let envelope = json!({
        "id": Uuid::new_v4(),
        "type": format!("orders.{kind}"),
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": format!("{kind}-{}", sold.order),
        "data": data,
    });
    sold.bus()
        .publish_plain(&format!("orders.cmd.{kind}"), envelope)
        .await;
}

#[tokio::test]
async fn a_warehouse_ships_some_lines_once_per_reference_and_a_carrier_delivers_that_parcel() {
    let sold = SoldShop::open().await;
    let parcel = json!({"reference": "wms-7", "carrier": "DHL", "tracking_number": "JD-7",
                        "lines": lines_of(&[(sold.mug, 1), (sold.plate, 2)])});

    for _ in 0..3 {
        report(&sold, "fulfil", parcel.clone()).await;
    }
    sold.bus().quiescent().await;

    let order = sold.order_in(&sold.order, "PARTIALLY_SHIPPED").await;
    assert_eq!(order["fulfilments"].as_array().unwrap().len(), 1, "{order}");
    assert_eq!(SoldShop::line(&order, sold.mug)["fulfilled_quantity"], 1);
    let fulfilment = id_of(&order["fulfilments"][0]);
    let timeline = order["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "fulfilment" && e["actor"] == "system:warehouse")
    );
    report(
        &sold,
        "deliver",
        json!({"reference": "pod-7", "fulfilment_id": fulfilment}),
    )
    .await;
    report(
        &sold,
        "deliver",
        json!({"reference": "pod-7", "fulfilment_id": fulfilment}),
    )
    .await;
    sold.bus().quiescent().await;
    let order = sold.orders().read(&sold.customer, &sold.order).await;
    assert_eq!(order["fulfilments"][0]["status"], "DELIVERED");
    assert_eq!(
        order["status"], "PARTIALLY_SHIPPED",
        "two mugs are still to ship"
    );
    assert_eq!(SoldShop::line(&order, sold.plate)["delivered_quantity"], 2);
    assert_eq!(sold.bus().dead_letter_reasons().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_reported_quantity_over_what_is_left_is_dead_lettered_naming_the_line() {
    let sold = SoldShop::open().await;
    let too_many = json!({"reference": "wms-8", "carrier": "DHL", "tracking_number": "JD-8",
                          "lines": lines_of(&[(sold.mug, 4)])});

    report(&sold, "fulfil", too_many).await;
    sold.bus().quiescent().await;

    let reasons = sold.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains(&sold.mug.to_string()), "{reasons:?}");
    let order = sold.orders().read(&sold.admin, &sold.order).await;
    assert_eq!(order["status"], "PAID");
    assert_eq!(order["fulfilments"], json!([]));
}
