//! Cancelling what is left of an order: the unshipped quantities cancelled, their stock back
//! and their snapshot value refunded through the refund path, in one step.

use crate::helpers::{SOLD_TOTAL, SoldShop, assert_problem};

#[tokio::test]
async fn cancelling_the_rest_returns_exactly_the_unshipped_stock_and_refunds_exactly_its_value() {
    let sold = SoldShop::open().await;
    sold.shipped(&[(sold.mug, 2)]).await;
    let (mugs, plates) = (
        sold.products().stock_of(sold.mug).await,
        sold.products().stock_of(sold.plate).await,
    );

    let res = sold.cancel_rest().await;

    assert_eq!(res.status(), 200);
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["status"], "SHIPPED", "nothing is left to ship");
    let mug = SoldShop::line(&order, sold.mug);
    assert_eq!(
        (
            mug["fulfilled_quantity"].as_i64(),
            mug["cancelled_quantity"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(SoldShop::line(&order, sold.plate)["cancelled_quantity"], 2);
    assert_eq!(sold.products().stock_of(sold.mug).await, mugs + 1);
    assert_eq!(sold.products().stock_of(sold.plate).await, plates + 2);
    let unshipped_value = 1250 + 2 * 800;
    assert_eq!(order["refunds"][0]["amount"], unshipped_value);
    assert_eq!(order["refunds"][0]["status"], "REQUESTED");
    let (command, _) = sold.psp.next_command().await;
    assert_eq!(command["data"]["amount"], unshipped_value);
    sold.psp.refunded(&command, "psp-rest").await;
    let refunded = sold
        .orders()
        .when(&sold.customer, &sold.order, |o| {
            o["payment_status"] == "PARTIALLY_REFUNDED"
        })
        .await;
    assert_eq!(refunded["amount_refunded"], unshipped_value);
    let report = sold.payments().reconciliation(&sold.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
    assert_problem(sold.cancel_rest().await, 409).await;
}

#[tokio::test]
async fn cancelling_the_rest_of_an_order_with_nothing_shipped_cancels_it_and_refunds_all() {
    let sold = SoldShop::open().await;

    let res = sold.cancel_rest().await;

    assert_eq!(res.status(), 200);
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["refunds"][0]["amount"], SOLD_TOTAL);
    assert_eq!(SoldShop::line(&order, sold.mug)["cancelled_quantity"], 3);
    assert_eq!(sold.products().stock_of(sold.mug).await, 10);
    let report = sold.payments().reconciliation(&sold.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
}
