//! One account holds at most `MAX_UNPAID_ORDERS_PER_USER` unpaid orders: past it a placement is
//! answered 429 with `Retry-After`, checked by the api before it publishes and counted again
//! where the inventory worker records orders, so concurrent placements cannot pass it.

use crate::helpers::{
    Shop, assert_problem, id_of, order_of, place_command, spawn_app_with, spawn_system_with,
};
use common::domain::UNPAID_LIMIT_REJECTION;
use serde_json::Value;
use uuid::Uuid;

/// An order's outcome, waited for.
const WAIT: [(&str, &str); 1] = [("prefer", "wait=10")];

/// The bound the tests set, and the variable that sets it.
fn bound(max: &str) -> [(&'static str, &str); 1] {
    [("MAX_UNPAID_ORDERS_PER_USER", max)]
}

/// How many of the customer's orders are in `status`.
async fn orders_in(shop: &Shop, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders WHERE user_id = $1 AND status::text = $2")
        .bind(shop.customer.id)
        .bind(status)
        .fetch_one(&shop.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_placement_past_the_bound_is_a_429_with_retry_after_and_publishes_nothing() {
    let shop = Shop::around(spawn_system_with(&bound("2")).await).await;
    let p = shop.products().create("P", 100, 10).await;
    shop.confirmed_order(p, 1).await;
    shop.confirmed_order(p, 1).await;

    let res = shop
        .orders()
        .place(&shop.customer, &order_of(&[(p, 1)]), &WAIT)
        .await;

    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let problem = assert_problem(res, 429).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with(UNPAID_LIMIT_REJECTION),
        "{problem}"
    );
    assert_eq!(problem["unpaid_orders"], 2);
    shop.bus().quiescent().await;
    assert_eq!(orders_in(&shop, "CONFIRMED").await, 2);
    assert_eq!(orders_in(&shop, "REJECTED").await, 0, "nothing published");
    assert_eq!(shop.products().stock_of(p).await, 8);
}

#[tokio::test]
async fn paying_or_cancelling_an_unpaid_order_frees_a_slot() {
    let shop = Shop::around(spawn_system_with(&bound("2")).await).await;
    let p = shop.products().create("P", 100, 10).await;
    let first = shop.confirmed_order(p, 1).await;
    let second = shop.confirmed_order(p, 1).await;
    let order = order_of(&[(p, 1)]);
    assert_eq!(
        shop.orders()
            .place(&shop.customer, &order, &WAIT)
            .await
            .status(),
        429
    );

    shop.orders().cancel_settled(&shop.customer, &first).await;
    let after_cancel = shop.orders().place(&shop.customer, &order, &WAIT).await;
    assert_eq!(after_cancel.status(), 201);
    assert_eq!(
        shop.orders()
            .place(&shop.customer, &order, &WAIT)
            .await
            .status(),
        429
    );
    shop.orders()
        .move_through(&shop.admin, &second, &["PAID"])
        .await;
    let after_payment = shop.orders().place(&shop.customer, &order, &WAIT).await;

    assert_eq!(after_payment.status(), 201);
    let placed: Value = after_payment.json().await.unwrap();
    assert_eq!(placed["status"], "CONFIRMED");
    assert_eq!(orders_in(&shop, "CONFIRMED").await, 2);
}

#[tokio::test]
async fn concurrent_placements_past_the_bound_never_leave_more_than_the_bound_unpaid() {
    // Two inventory workers record at once the place commands another system publishes all
    // together (no api check on the way), each order for a product of its own, so that only
    // the account's bound keeps them apart.
    let shop = Shop::around(spawn_app_with(&bound("3")).await).await;
    shop.start_workers(shop.env.config_with(&bound("3"))).await;
    shop.start_workers(shop.env.config_with(&bound("3"))).await;
    let mut commands = Vec::new();
    for n in 0..30 {
        let p = shop.products().create(&format!("P{n}"), 100, 5).await;
        commands.push(place_command(Uuid::now_v7(), shop.customer.id, p, 1));
    }

    futures::future::join_all(commands.into_iter().map(|c| shop.bus().publish(c, "pos"))).await;
    shop.bus().quiescent().await;

    assert_eq!(orders_in(&shop, "CONFIRMED").await, 3);
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT rejection_reason FROM orders WHERE user_id = $1 AND status = 'REJECTED'",
    )
    .bind(shop.customer.id)
    .fetch_all(&shop.state.db)
    .await
    .unwrap();
    assert_eq!(reasons.len(), 27);
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with(UNPAID_LIMIT_REJECTION)),
        "{reasons:?}"
    );
    let held: i64 = shop
        .count("SELECT coalesce(sum(quantity), 0)::int8 FROM reservations WHERE state = 'reserved'")
        .await;
    assert_eq!(held, 3, "only the confirmed orders hold stock");
    assert_eq!(
        shop.payments().reconciliation(&shop.admin).await["consistent"],
        true
    );
}

#[tokio::test]
async fn a_placement_refused_where_it_is_recorded_is_answered_429_naming_the_order() {
    // Both pass the api's check while no worker runs; the second, waited for, is recorded
    // REJECTED for the bound.
    let shop = Shop::around(spawn_app_with(&bound("1")).await).await;
    let p = shop.products().create("P", 100, 10).await;
    let order = order_of(&[(p, 1)]);
    let first = shop.orders().place(&shop.customer, &order, &[]).await;
    assert_eq!(first.status(), 202);
    let waited = shop.orders().place(&shop.customer, &order, &WAIT);
    let started = async {
        shop.bus()
            .commands_waiting(common::nats::ORDERS_CMD, 2)
            .await;
        shop.start_workers(shop.env.config_with(&bound("1"))).await;
    };

    let (refused, _) = tokio::join!(waited, started);

    assert!(refused.headers().contains_key("retry-after"));
    let problem = assert_problem(refused, 429).await;
    let id: Uuid = problem["order_id"].as_str().unwrap().parse().unwrap();
    let recorded = shop.orders().read(&shop.customer, &id.to_string()).await;
    assert_eq!(recorded["status"], "REJECTED");
    assert_eq!(recorded["rejection_reason"], problem["detail"]);
    let first: Value = first.json().await.unwrap();
    let kept = shop.order_in(&id_of(&first), "CONFIRMED").await;
    assert_eq!(kept["status"], "CONFIRMED");
    assert_eq!(shop.products().stock_of(p).await, 9);
}
