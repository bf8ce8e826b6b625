//! Returns: delivered quantities asked back by the customer within the return window (staff
//! at any time), received once with each line restocked or written off and the value refunded,
//! or rejected, or cancelled.

use crate::helpers::{SoldShop, assert_problem};
use serde_json::json;

#[tokio::test]
async fn a_received_return_restocks_only_the_lines_marked_so_and_refunds_once() {
    let sold = SoldShop::open().await;
    sold.delivered().await;
    let (mugs, plates) = (
        sold.products().stock_of(sold.mug).await,
        sold.products().stock_of(sold.plate).await,
    );
    let id = sold
        .returning(&sold.customer, &[(sold.mug, 2), (sold.plate, 1)])
        .await;

    let res = sold.receive(&id, &[sold.mug]).await;

    assert_eq!(res.status(), 200);
    let order: serde_json::Value = res.json().await.unwrap();
    let received = &order["returns"][0];
    assert_eq!(received["status"], "RECEIVED");
    for line in received["lines"].as_array().unwrap() {
        let restocked = line["product_id"] == sold.mug.to_string();
        assert_eq!(line["restock"], restocked, "{line}");
    }
    assert_eq!(sold.products().stock_of(sold.mug).await, mugs + 2);
    assert_eq!(
        sold.products().stock_of(sold.plate).await,
        plates,
        "the plate is written off"
    );
    assert_eq!(SoldShop::line(&order, sold.mug)["returned_quantity"], 2);
    assert_eq!(SoldShop::line(&order, sold.plate)["returned_quantity"], 1);
    let value = 2 * 1250 + 800;
    assert_eq!(order["refunds"][0]["amount"], value);
    assert_eq!(received["refund_id"], order["refunds"][0]["id"]);
    let ledger = sold
        .read(
            &sold.admin,
            &format!("/api/v1/products/{}/stock-adjustments", sold.mug),
        )
        .await;
    assert_eq!(ledger["items"].as_array().unwrap().len(), 1, "{ledger}");
    let (command, _) = sold.psp.next_command().await;
    assert_eq!(command["data"]["amount"], value);

    assert_problem(sold.receive(&id, &[sold.mug]).await, 409).await;
    let again = sold.orders().read(&sold.admin, &sold.order).await;
    assert_eq!(
        again["refunds"].as_array().unwrap().len(),
        1,
        "refunded once"
    );
    assert_eq!(
        sold.products().stock_of(sold.mug).await,
        mugs + 2,
        "restocked once"
    );
    let report = sold.payments().reconciliation(&sold.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
}

#[tokio::test]
async fn a_return_asks_at_most_what_was_delivered_and_not_returned() {
    let sold = SoldShop::open().await;
    let (_, first) = sold.shipped(&[(sold.mug, 3)]).await;
    assert_problem(sold.ask_return(&sold.customer, &[(sold.mug, 1)]).await, 409).await;
    sold.deliver(&first).await;

    sold.returning(&sold.customer, &[(sold.mug, 2)]).await;
    let over = assert_problem(sold.ask_return(&sold.customer, &[(sold.mug, 2)]).await, 409).await;

    assert!(
        over["detail"]
            .as_str()
            .unwrap()
            .contains("1 delivered and not returned"),
        "{over}"
    );
    let plate = assert_problem(
        sold.ask_return(&sold.customer, &[(sold.plate, 1)]).await,
        409,
    )
    .await;
    assert!(
        plate["detail"].as_str().unwrap().contains("0 delivered"),
        "{plate}"
    );
}

#[tokio::test]
async fn past_the_window_a_customer_is_refused_but_staff_may_still_take_goods_back() {
    let sold = SoldShop::open().await;
    sold.delivered().await;
    sqlx::query("UPDATE fulfilments SET delivered_at = now() - interval '31 days' WHERE order_id = $1::uuid")
        .bind(&sold.order)
        .execute(&sold.state.db)
        .await
        .unwrap();

    let late = assert_problem(sold.ask_return(&sold.customer, &[(sold.mug, 1)]).await, 409).await;

    assert!(
        late["detail"].as_str().unwrap().contains("return window"),
        "{late}"
    );
    sold.returning(&sold.admin, &[(sold.mug, 1)]).await;
}

#[tokio::test]
async fn a_rejected_or_cancelled_return_frees_its_quantities_and_is_final() {
    let sold = SoldShop::open().await;
    sold.delivered().await;
    let rejected = sold.returning(&sold.customer, &[(sold.mug, 3)]).await;

    let res = sold
        .step(
            &sold.admin,
            &format!("/returns/{rejected}/reject"),
            json!({"reason": "used"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["returns"][0]["status"], "REJECTED");
    assert_eq!(order["returns"][0]["rejection_reason"], "used");
    assert_problem(sold.receive(&rejected, &[]).await, 409).await;

    let withdrawn = sold.returning(&sold.customer, &[(sold.mug, 3)]).await;
    let other = sold.create_user(common::domain::Role::Client).await;
    let path = format!("/returns/{withdrawn}/cancel");
    assert_problem(sold.step(&other, &path, json!(null)).await, 404).await;
    let res = sold.step(&sold.customer, &path, json!(null)).await;
    assert_eq!(res.status(), 200);
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["returns"][1]["status"], "CANCELLED");
    assert_eq!(SoldShop::line(&order, sold.mug)["returned_quantity"], 0);
    let receive_as_customer = sold
        .step(
            &sold.customer,
            &format!("/returns/{withdrawn}/receive"),
            json!({"lines": []}),
        )
        .await;
    assert_problem(receive_as_customer, 403).await;
}
