//! Stock adjustments published on `inventory.cmd.adjust` by a warehouse or ERP system with a
//! plain NATS client: the same ledger as the api's, once per reference, never below zero.

use crate::helpers::{TestApp, spawn_system_with};
use common::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

/// Publishes an adjustment as an outside system would: hand-written JSON in the documented
/// envelope, with the documented message id.
async fn publish_adjustment(
    app: &TestApp,
    product: Uuid,
    delta: i32,
    reason: &str,
    reference: &str,
    msg_id: &str,
) {
    let client = async_nats::connect(common::testing::nats_url())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let envelope = json!({
        "id": Uuid::new_v4(),
        "type": "inventory.adjust",
        "version": 1,
        "occurred_at": "2026-12-01T09:00:00Z",
        "correlation_id": format!("warehouse-{reference}"),
        "data": {"product_id": product, "delta": delta, "reason": reason, "reference": reference}
    });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(
        app.state.bus.namespace().subject("inventory.cmd.adjust"),
        headers,
        envelope.to_string().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

async fn ledger(app: &TestApp, admin: &crate::helpers::TestUser, product: Uuid) -> Vec<Value> {
    let page: Value = app
        .get_as(
            admin,
            &format!("/api/v1/products/{product}/stock-adjustments"),
        )
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_receipt_published_by_a_plain_nats_client_adds_stock_once() {
    let app = spawn_system_with(&[]).await;
    let admin = app.create_user(Role::Admin).await;
    let product = app.create_product("Boxes", 100, 10).await;

    publish_adjustment(
        &app,
        product,
        25,
        "receipt 4711",
        "receipt-4711",
        "adjustment:receipt-4711",
    )
    .await;
    // The same receipt again, past the server's duplicate window (another message id), as a
    // retry a day later would be.
    publish_adjustment(
        &app,
        product,
        25,
        "receipt 4711",
        "receipt-4711",
        "retry-of-4711",
    )
    .await;
    app.quiescent().await;

    assert_eq!(app.stock_of(product).await, 35, "applied once");
    let entries = ledger(&app, &admin, product).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["delta"], 25);
    assert_eq!(entries[0]["reason"], "receipt 4711");
    assert_eq!(entries[0]["reference"], "receipt-4711");
    assert_eq!(entries[0]["stock_after"], 35);
    assert_eq!(entries[0]["actor_id"], Value::Null);
    assert!(app.dead_letter_reasons().await.is_empty());
}

#[tokio::test]
async fn an_adjustment_below_zero_or_reusing_a_reference_is_dead_lettered_and_changes_nothing() {
    let app = spawn_system_with(&[]).await;
    let product = app.create_product("Boxes", 100, 10).await;

    publish_adjustment(&app, product, -11, "count", "count-1", "adjustment:count-1").await;
    publish_adjustment(
        &app,
        product,
        -2,
        "breakage",
        "breakage-1",
        "adjustment:breakage-1",
    )
    .await;
    publish_adjustment(&app, product, -5, "breakage", "breakage-1", "reused").await;
    publish_adjustment(
        &app,
        Uuid::new_v4(),
        5,
        "receipt",
        "unknown-1",
        "adjustment:unknown-1",
    )
    .await;
    app.quiescent().await;

    assert_eq!(app.stock_of(product).await, 8, "only the breakage of 2");
    let reasons = app.dead_letter_reasons().await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("would go below zero: 10 available, delta -11")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("reference \"breakage-1\" is already used by another adjustment")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("does not exist")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn an_adjustment_shows_in_the_catalogue_at_once() {
    let app = spawn_system_with(&[("CATALOGUE_CACHE_TTL_MS", "60000")]).await;
    let product = app.create_product("Boxes", 100, 10).await;
    assert_eq!(shown_stock(&app, product).await, 10, "cached");
    publish_adjustment(&app, product, 5, "receipt", "r-1", "adjustment:r-1").await;
    app.quiescent().await;
    assert_eq!(shown_stock(&app, product).await, 15);
}

async fn shown_stock(app: &TestApp, product: Uuid) -> i64 {
    let p: Value = app
        .get(&format!("/api/v1/products/{product}"))
        .await
        .json()
        .await
        .unwrap();
    p["stock"].as_i64().unwrap()
}
