//! The order lifecycle under staff: the moves ADMINs make, the ones the api refuses up front,
//! and the ones the order worker refuses once they became illegal.

use crate::helpers::{Shop, assert_problem, last_step, spawn_app, transition_command};
use common::domain::{OrderStatus, Role};
use common::testing::eventually;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn staff_move_an_order_through_paid_shipped_and_delivered_saying_who_and_why() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 700, 10).await;
    let order = shop.confirmed_order(p, 2).await;

    for (to, reason) in [
        ("PAID", "bank transfer"),
        ("SHIPPED", "tracking 1Z"),
        ("DELIVERED", "signed"),
    ] {
        let now = shop
            .orders()
            .change_status(&shop.admin, &order, json!({"status": to, "reason": reason}))
            .await;
        assert_eq!(now["status"], to);
        let last = last_step(&now);
        assert_eq!(last["to"], to);
        assert_eq!(last["actor"], format!("user:{}", shop.admin.id));
        assert_eq!(last["reason"], reason);
    }
}

#[tokio::test]
async fn shipping_commits_the_reservation_and_the_stock_stays_sold() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 700, 10).await;
    let order = shop.confirmed_order(p, 2).await;

    shop.orders()
        .move_through(&shop.admin, &order, &["PAID", "SHIPPED", "DELIVERED"])
        .await;

    // The commit follows the SHIPPED event through the inventory worker.
    let states = eventually(
        Duration::from_secs(10),
        "the reservation committed",
        || async {
            let states = shop.orders().reservation_states(&order).await;
            (states != ["reserved"]).then_some(states)
        },
    )
    .await;
    assert_eq!(states, vec!["committed"]);
    assert_eq!(
        shop.products().stock_of(p).await,
        8,
        "a sale never gives stock back"
    );
}

#[tokio::test]
async fn the_api_refuses_every_illegal_transition_with_409_naming_the_current_status() {
    // No workers: legal moves are only accepted (202), illegal ones refused up front.
    let shop = Shop::around(spawn_app().await).await;
    // Orders are recorded once settled, so every stored status but PENDING.
    for from in OrderStatus::ALL
        .into_iter()
        .filter(|s| *s != OrderStatus::Pending)
    {
        for to in [
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
            OrderStatus::Cancelled,
        ] {
            let id = shop.orders().insert(&shop.customer, from.as_str()).await;
            let res = shop
                .orders()
                .patch_status(&shop.admin, id, &json!({"status": to}), &[])
                .await;
            if from == to {
                assert_eq!(res.status(), 200, "{from} -> {to} is already there");
            } else if from.can_become(to) {
                assert_eq!(res.status(), 202, "{from} -> {to} is legal");
            } else {
                let body = assert_problem(res, 409).await;
                assert_eq!(body["current_status"], from.as_str(), "{from} -> {to}");
            }
        }
    }
}

#[tokio::test]
async fn statuses_set_by_the_system_unknown_ones_and_an_empty_reason_are_422() {
    let shop = Shop::around(spawn_app().await).await;
    let id = shop.orders().insert(&shop.customer, "CONFIRMED").await;

    for (body, field) in [
        (json!({"status": "PENDING"}), Some("status")),
        (json!({"status": "CONFIRMED"}), Some("status")),
        (json!({"status": "REJECTED"}), Some("status")),
        (json!({"status": "LOST"}), None),
        (json!({"status": "PAID", "reason": ""}), None),
    ] {
        let problem = assert_problem(
            shop.orders()
                .patch_status(&shop.admin, id, &body, &[])
                .await,
            422,
        )
        .await;
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{body}");
        }
    }
}

#[tokio::test]
async fn a_customer_changing_a_status_is_403() {
    let shop = Shop::around(spawn_app().await).await;
    let id = shop.orders().insert(&shop.customer, "CONFIRMED").await;

    let res = shop
        .orders()
        .patch_status(&shop.customer, id, &json!({"status": "PAID"}), &[])
        .await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn changing_the_status_of_an_unknown_order_is_404() {
    let shop = Shop::around(spawn_app().await).await;

    let res = shop
        .orders()
        .patch_status(&shop.admin, Uuid::new_v4(), &json!({"status": "PAID"}), &[])
        .await;

    assert_problem(res, 404).await;
}

#[tokio::test]
async fn the_worker_dead_letters_a_transition_that_became_illegal() {
    let app = crate::helpers::spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let id = app.orders().insert(&client, "DELIVERED").await;

    app.bus()
        .publish(transition_command(id, OrderStatus::Cancelled), "c")
        .await;
    app.bus().quiescent().await;

    let reasons = app.bus().dead_letter_reasons().await;
    assert!(
        reasons[0].contains("is DELIVERED, cannot move to CANCELLED"),
        "{reasons:?}"
    );
    assert_eq!(
        app.orders().stored_status(id).await.as_deref(),
        Some("DELIVERED")
    );
}
