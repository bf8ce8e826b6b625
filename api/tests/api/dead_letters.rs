//! Dead letters: ADMINs list what the workers gave up on, with the reason, and re-drive one once
//! its cause is fixed.

use crate::helpers::{Shop, assert_problem, place_command, spawn_app};
use common::testing::eventually;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// A point of sale's order for a customer account not created yet, dead-lettered.
struct PosOrder {
    shop: Shop,
    customer: Uuid,
    order_id: Uuid,
    /// The dead letter as ADMINs list it.
    letter: Value,
}

async fn a_pos_order_for_an_unknown_customer() -> PosOrder {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 100, 10).await;
    let customer = Uuid::new_v4();
    let order_id = Uuid::now_v7();
    shop.bus()
        .publish(place_command(order_id, customer, p, 2), "pos-42")
        .await;
    let page = eventually(Duration::from_secs(20), "a dead letter", || async {
        let page: Value = shop
            .get_as(&shop.admin, "/api/v1/admin/dead-letters")
            .await
            .json()
            .await
            .ok()?;
        (page["items"].as_array()?.len() == 1).then_some(page)
    })
    .await;
    PosOrder {
        shop,
        customer,
        order_id,
        letter: page["items"][0].clone(),
    }
}

#[tokio::test]
async fn admins_list_a_dead_letter_with_its_subject_reason_and_payload() {
    let PosOrder {
        order_id, letter, ..
    } = a_pos_order_for_an_unknown_customer().await;

    assert_eq!(letter["subject"], "orders.cmd.place");
    assert!(
        letter["reason"].as_str().unwrap().contains("unknown user"),
        "{letter}"
    );
    assert_eq!(letter["deliveries"], 1);
    assert_eq!(letter["payload"]["data"]["order_id"], order_id.to_string());
    assert_eq!(letter["correlation_id"], "pos-42");
}

#[tokio::test]
async fn customers_cannot_list_dead_letters() {
    let shop = Shop::around(spawn_app().await).await;

    let res = shop
        .get_as(&shop.customer, "/api/v1/admin/dead-letters")
        .await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn a_dead_letter_redriven_once_its_cause_is_fixed_is_applied_and_gone() {
    let PosOrder {
        shop,
        customer,
        order_id,
        letter,
    } = a_pos_order_for_an_unknown_customer().await;
    sqlx::query("INSERT INTO users (id, email, role, password_hash) VALUES ($1, 'pos-customer@example.com', 'CLIENT', 'x')")
        .bind(customer)
        .execute(&shop.state.db)
        .await
        .unwrap();
    let redrive = format!(
        "/api/v1/admin/dead-letters/{}/redrive",
        letter["sequence"].as_u64().unwrap()
    );

    let res = shop.post_empty_as(&shop.admin, &redrive, &[]).await;

    assert_eq!(res.status(), 202);
    eventually(
        Duration::from_secs(20),
        "the re-driven order confirmed",
        || async {
            (shop.orders().stored_status(order_id).await.as_deref() == Some("CONFIRMED"))
                .then_some(())
        },
    )
    .await;
    let after = shop.read(&shop.admin, "/api/v1/admin/dead-letters").await;
    assert_eq!(after["items"].as_array().unwrap().len(), 0);
    assert_problem(shop.post_empty_as(&shop.admin, &redrive, &[]).await, 404).await;
}
