//! Cancelling orders: who may cancel when, the stock given back exactly once, and unpaid
//! reservations expiring.

use crate::helpers::{Shop, assert_problem, last_step, spawn_app, transition_command};
use common::domain::{OrderStatus, Role};
use std::time::Duration;
use uuid::Uuid;
use workers::dispatch::Incoming;

#[tokio::test]
async fn a_customer_cancels_before_payment_and_the_stock_comes_back() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let order = shop.confirmed_order(p, 4).await;
    assert_eq!(shop.products().stock_of(p).await, 6);

    let cancelled = shop.orders().cancel_settled(&shop.customer, &order).await;

    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(
        last_step(&cancelled)["actor"],
        format!("user:{}", shop.customer.id)
    );
    shop.bus().quiescent().await;
    assert_eq!(shop.products().stock_of(p).await, 10);
    assert_eq!(
        shop.orders().reservation_states(&order).await,
        vec!["released"]
    );
}

#[tokio::test]
async fn cancelling_a_cancelled_order_again_is_harmless() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let order = shop.confirmed_order(p, 4).await;
    shop.orders().cancel_settled(&shop.customer, &order).await;

    let again = shop.orders().cancel(&shop.customer, &order, &[]).await;

    assert_eq!(again.status(), 200);
    shop.bus().quiescent().await;
    assert_eq!(shop.products().stock_of(p).await, 10);
}

#[tokio::test]
async fn only_the_owner_cancels_before_payment_and_staff_until_shipping() {
    let shop = Shop::around(spawn_app().await).await;
    let bob = shop.create_user(Role::Client).await;
    let (alice, admin) = (&shop.customer, &shop.admin);
    let confirmed = shop.orders().insert(alice, "CONFIRMED").await;
    let paid = shop.orders().insert(alice, "PAID").await;
    let shipped = shop.orders().insert(alice, "SHIPPED").await;

    for (who, order, status, current) in [
        (&bob, confirmed, 404, None),
        (alice, paid, 409, Some("PAID")),
        (admin, paid, 202, None),
        (admin, shipped, 409, Some("SHIPPED")),
        (alice, confirmed, 202, None),
    ] {
        let res = shop.orders().cancel(who, order, &[]).await;
        if status == 202 {
            assert_eq!(res.status(), 202, "{order}");
            continue;
        }
        let problem = assert_problem(res, status).await;
        if let Some(current) = current {
            assert_eq!(problem["current_status"], current);
        }
    }
}

#[tokio::test]
async fn duplicate_cancel_commands_give_stock_back_exactly_once() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let order = shop.confirmed_order(p, 3).await;
    let order_id: Uuid = order.parse().unwrap();
    shop.orders().cancel_settled(&shop.admin, order_id).await;

    // Copies that get past the server's duplicate check, as redeliveries would.
    for copy in 0..3 {
        shop.bus()
            .publish_copy(
                transition_command(order_id, OrderStatus::Cancelled),
                &format!("extra-cancel-{copy}"),
            )
            .await;
    }
    shop.bus().quiescent().await;

    assert_eq!(shop.products().stock_of(p).await, 10, "released once");
    let cancellations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM order_events WHERE order_id = $1 AND to_status = 'CANCELLED'",
    )
    .bind(order_id)
    .fetch_one(&shop.state.db)
    .await
    .unwrap();
    assert_eq!(cancellations, 1);
}

#[tokio::test]
async fn a_cancel_after_shipping_is_refused_and_gives_nothing_back() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let order = shop.confirmed_order(p, 5).await;
    let order_id: Uuid = order.parse().unwrap();
    shop.orders()
        .move_through(&shop.admin, order_id, &["PAID", "SHIPPED"])
        .await;
    shop.bus().quiescent().await;

    shop.bus()
        .publish(transition_command(order_id, OrderStatus::Cancelled), "c")
        .await;
    shop.bus().quiescent().await;

    assert_eq!(shop.products().stock_of(p).await, 5);
    assert_eq!(
        shop.orders().reservation_states(order_id).await,
        vec!["committed"]
    );
}

#[tokio::test]
async fn unpaid_reservations_expire_once_even_with_two_order_workers_sweeping() {
    let shop = Shop::around(spawn_app().await).await;
    let fast_expiry = [
        ("RESERVATION_TTL_SECS", "1"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "100"),
    ];
    shop.start_workers(shop.env.config_with(&fast_expiry)).await;
    shop.start_workers(shop.env.config_with(&fast_expiry)).await;
    let p = shop.products().create("P", 100, 10).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(shop.confirmed_order(p, 2).await);
    }

    for id in &orders {
        let order = shop.order_in(id, "CANCELLED").await;
        let last = last_step(&order);
        assert_eq!(last["reason"], "reservation_expired");
        assert_eq!(last["actor"], "system:expiry");
    }
    shop.bus().quiescent().await;
    assert_eq!(
        shop.products().stock_of(p).await,
        10,
        "each expired order released once"
    );
    assert_eq!(shop.orders().transitions_to("CANCELLED").await, 3);
}

#[tokio::test]
async fn a_customer_cancel_refused_after_payment_never_swallows_the_staff_cancel_that_follows() {
    // The order worker is not running yet: the customer's cancel waits in the stream.
    let shop = Shop::around(spawn_app().await).await;
    shop.start_worker_kinds(shop.env.config(), &[workers::Kind::Inventory])
        .await;
    let p = shop.products().create("P", 1250, 10).await;
    let order = shop.confirmed_order(p, 1).await;
    let order_id: Uuid = order.parse().unwrap();
    assert_eq!(
        shop.orders()
            .cancel(&shop.customer, &order, &[])
            .await
            .status(),
        202
    );
    // The payment overtakes it: applied by the order worker's own handler.
    let payment = crate::private_nats::payment(order_id, 1250, "psp-overtakes");
    let paid = workers::payments::succeeded(
        shop.bus().worker_context(),
        vec![Incoming::new(payment, "psp")],
    )
    .await;
    assert!(paid[0].is_ok(), "{paid:?}");

    // The order worker refuses the customer's cancel; staff cancel within the duplicate window.
    shop.start_worker_kinds(shop.env.config(), &[workers::Kind::Orders])
        .await;
    common::testing::eventually(Duration::from_secs(20), "the refusal", || async {
        let reasons = shop.bus().dead_letter_reasons().await;
        reasons
            .iter()
            .any(|r| r.contains("illegal transition"))
            .then_some(())
    })
    .await;
    let cancelled = shop.orders().cancel_settled(&shop.admin, &order).await;

    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(
        last_step(&cancelled)["actor"],
        format!("user:{}", shop.admin.id)
    );
    let refunded = shop
        .orders()
        .when(&shop.customer, &order, |o| {
            o["refunds"][0]["status"] == "REQUESTED"
        })
        .await;
    assert_eq!(refunded["refunds"][0]["amount"], 1250);
    shop.bus().quiescent().await;
    assert_eq!(shop.products().stock_of(p).await, 10);
}

#[tokio::test]
async fn a_cancel_retried_under_its_idempotency_key_is_answered_with_what_the_first_led_to() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let order = shop.confirmed_order(p, 2).await;
    let key = [("idempotency-key", "cancel-1")];
    assert_eq!(
        shop.orders()
            .cancel(&shop.admin, &order, &key)
            .await
            .status(),
        202
    );

    let retried = shop
        .orders()
        .cancel(&shop.admin, &order, &[key[0], ("prefer", "wait=10")])
        .await;

    assert_eq!(retried.status(), 200);
    let retried: serde_json::Value = retried.json().await.unwrap();
    assert_eq!(retried["status"], "CANCELLED");
    shop.bus().quiescent().await;
    assert_eq!(shop.orders().transitions_to("CANCELLED").await, 1);
    assert_eq!(shop.products().stock_of(p).await, 10);
}
