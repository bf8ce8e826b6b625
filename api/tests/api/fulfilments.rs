//! Split shipments: a paid order ships in several fulfilments, each at most what is left of its
//! lines, turning exactly its quantities' reservation into a sale; it reads PARTIALLY_SHIPPED
//! while something is left and SHIPPED once nothing is, and DELIVERED once every shipment is.

use crate::helpers::{SoldShop, assert_problem, id_of, lines_of};
use serde_json::json;

#[tokio::test]
async fn a_partial_shipment_leaves_the_order_partially_shipped_until_the_rest_ships() {
    let sold = SoldShop::open().await;
    let stock_before = (
        sold.products().stock_of(sold.mug).await,
        sold.products().stock_of(sold.plate).await,
    );

    let (first, first_id) = sold.shipped(&[(sold.mug, 2)]).await;

    assert_eq!(first["status"], "PARTIALLY_SHIPPED");
    assert_eq!(SoldShop::line(&first, sold.mug)["fulfilled_quantity"], 2);
    assert_eq!(SoldShop::line(&first, sold.plate)["fulfilled_quantity"], 0);
    assert_eq!(first["fulfilments"][0]["id"], first_id.as_str());
    assert_eq!(first["fulfilments"][0]["status"], "SHIPPED");
    assert_eq!(first["fulfilments"][0]["shipment"]["carrier"], "UPS");
    assert_eq!(
        first["fulfilments"][0]["lines"],
        json!(lines_of(&[(sold.mug, 2)]))
    );
    let (second, _) = sold.shipped(&[(sold.mug, 1), (sold.plate, 2)]).await;
    assert_eq!(second["status"], "SHIPPED");
    assert_eq!(second["fulfilments"].as_array().unwrap().len(), 2);
    for product in [sold.mug, sold.plate] {
        let line = SoldShop::line(&second, product);
        assert_eq!(line["fulfilled_quantity"], line["quantity"]);
    }
    let kinds: Vec<&str> = second["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "fulfilment").count(), 2);
    assert_eq!(
        (
            sold.products().stock_of(sold.mug).await,
            sold.products().stock_of(sold.plate).await
        ),
        stock_before,
        "a shipment turns a reservation into a sale: available stock does not move"
    );
    let report = sold.payments().reconciliation(&sold.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
}

#[tokio::test]
async fn a_quantity_over_what_is_left_is_refused_naming_the_line_and_changes_nothing() {
    let sold = SoldShop::open().await;
    sold.shipped(&[(sold.mug, 2)]).await;

    let refused = assert_problem(sold.ship(&[(sold.mug, 2)]).await, 409).await;

    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains(&sold.mug.to_string()), "{detail}");
    assert!(detail.contains("1 left"), "{detail}");
    let order = sold.orders().read(&sold.admin, &sold.order).await;
    assert_eq!(order["fulfilments"].as_array().unwrap().len(), 1);
    assert_eq!(SoldShop::line(&order, sold.mug)["fulfilled_quantity"], 2);
}

#[tokio::test]
async fn shipments_of_an_unpaid_order_or_of_a_product_not_in_it_are_refused() {
    let sold = SoldShop::open().await;
    let stranger = sold.products().create("Spoon", 100, 5).await;

    let not_in_order = assert_problem(sold.ship(&[(stranger, 1)]).await, 409).await;
    assert!(
        not_in_order["detail"]
            .as_str()
            .unwrap()
            .contains("not a line of this order")
    );
    let unpaid = sold.confirmed_order(sold.mug, 1).await;
    let body =
        json!({"lines": lines_of(&[(sold.mug, 1)]), "carrier": "UPS", "tracking_number": "1Z"});
    let res = sold
        .post_as(
            &sold.admin,
            &format!("/api/v1/orders/{unpaid}/fulfilments"),
            &body,
            &[("prefer", "wait=10")],
        )
        .await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["current_status"], "CONFIRMED");
}

#[tokio::test]
async fn malformed_shipments_are_422_naming_each_field_and_customers_may_not_ship() {
    let sold = SoldShop::open().await;
    let body = json!({"lines": [{"product_id": sold.mug, "quantity": 0}], "carrier": "",
                      "tracking_number": "1Z", "tracking_url": "ftp://x"});

    let problem = assert_problem(
        sold.step(&sold.admin, "/fulfilments", body.clone()).await,
        422,
    )
    .await;

    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"lines[0].quantity"), "{fields:?}");
    assert!(fields.contains(&"carrier"), "{fields:?}");
    assert!(fields.contains(&"tracking_url"), "{fields:?}");
    assert_problem(sold.step(&sold.customer, "/fulfilments", body).await, 403).await;
}

#[tokio::test]
async fn two_concurrent_fulfilments_of_the_last_units_never_exceed_the_line() {
    let sold = SoldShop::open().await;

    let all_mugs = [(sold.mug, 3)];
    let (a, b) = tokio::join!(sold.ship(&all_mugs), sold.ship(&all_mugs));

    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    let order = sold.orders().read(&sold.admin, &sold.order).await;
    assert_eq!(SoldShop::line(&order, sold.mug)["fulfilled_quantity"], 3);
    assert_eq!(order["fulfilments"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_order_is_delivered_once_every_shipment_is_and_a_delivery_counts_once() {
    let sold = SoldShop::open().await;
    let (_, first) = sold.shipped(&[(sold.mug, 3)]).await;
    let (_, second) = sold.shipped(&[(sold.plate, 2)]).await;

    let res = sold.deliver(&first).await;
    assert_eq!(res.status(), 200);
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        order["status"], "SHIPPED",
        "one shipment is still on its way"
    );
    assert_eq!(SoldShop::line(&order, sold.mug)["delivered_quantity"], 3);
    assert_problem(sold.deliver(&first).await, 409).await;
    let res = sold.deliver(&second).await;
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["status"], "DELIVERED");
    assert!(
        order["fulfilments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "DELIVERED" && !f["delivered_at"].is_null())
    );
}

#[tokio::test]
async fn shipped_by_status_change_ships_everything_left_in_one_fulfilment() {
    let sold = SoldShop::open().await;
    sold.shipped(&[(sold.mug, 1)]).await;

    let order = sold
        .orders()
        .change_status(
            &sold.admin,
            &sold.order,
            json!({"status": "SHIPPED", "carrier": "DHL", "tracking_number": "JD1"}),
        )
        .await;

    assert_eq!(order["status"], "SHIPPED");
    let fulfilments = order["fulfilments"].as_array().unwrap();
    assert_eq!(fulfilments.len(), 2);
    assert_eq!(fulfilments[1]["shipment"]["carrier"], "DHL");
    assert_eq!(
        fulfilments[1]["lines"],
        json!(lines_of(&[(sold.mug, 2), (sold.plate, 2)]))
    );
    let delivered = sold
        .orders()
        .change_status(&sold.admin, &sold.order, json!({"status": "DELIVERED"}))
        .await;
    assert!(
        delivered["fulfilments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "DELIVERED")
    );
    assert_eq!(
        SoldShop::line(&delivered, sold.plate)["delivered_quantity"],
        2
    );
    let id = id_of(&delivered);
    assert_eq!(id, sold.order);
}
