//! Stock adjustments published on `inventory.cmd.adjust` by a warehouse or ERP system with a
//! plain NATS client: the same ledger as the api's, once per reference, never below zero.

use crate::helpers::{spawn_system, spawn_system_with};
use common::domain::Role;
use serde_json::Value;
use uuid::Uuid;

#[tokio::test]
async fn a_receipt_published_by_a_plain_nats_client_adds_stock_once() {
    let app = spawn_system().await;
    let admin = app.create_user(Role::Admin).await;
    let product = app.products().create("Boxes", 100, 10).await;
    let receipt = ("receipt 4711", "receipt-4711");

    app.products()
        .warehouse_adjusts(product, 25, receipt, "adjustment:receipt-4711")
        .await;
    // The same receipt again, past the server's duplicate window (another message id), as a
    // retry a day later would be.
    app.products()
        .warehouse_adjusts(product, 25, receipt, "retry-of-4711")
        .await;
    app.bus().quiescent().await;

    assert_eq!(app.products().stock_of(product).await, 35, "applied once");
    let page = app
        .read(
            &admin,
            &format!("/api/v1/products/{product}/stock-adjustments"),
        )
        .await;
    let entries = page["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["delta"], 25);
    assert_eq!(entries[0]["reason"], "receipt 4711");
    assert_eq!(entries[0]["reference"], "receipt-4711");
    assert_eq!(entries[0]["stock_after"], 35);
    assert_eq!(entries[0]["actor_id"], Value::Null);
    assert!(app.bus().dead_letter_reasons().await.is_empty());
}

#[tokio::test]
async fn an_adjustment_below_zero_or_reusing_a_reference_is_dead_lettered_and_changes_nothing() {
    let app = spawn_system().await;
    let product = app.products().create("Boxes", 100, 10).await;

    for (product, delta, reason, msg_id) in [
        (product, -11, ("count", "count-1"), "adjustment:count-1"),
        (
            product,
            -2,
            ("breakage", "breakage-1"),
            "adjustment:breakage-1",
        ),
        (product, -5, ("breakage", "breakage-1"), "reused"),
        (
            Uuid::new_v4(),
            5,
            ("receipt", "unknown-1"),
            "adjustment:unknown-1",
        ),
    ] {
        app.products()
            .warehouse_adjusts(product, delta, reason, msg_id)
            .await;
    }
    app.bus().quiescent().await;

    assert_eq!(
        app.products().stock_of(product).await,
        8,
        "only the breakage of 2"
    );
    let reasons = app.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for expected in [
        "would go below zero: 10 available, delta -11",
        "reference \"breakage-1\" is already used by another adjustment",
        "does not exist",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }
}

#[tokio::test]
async fn an_adjustment_shows_in_the_catalogue_at_once() {
    let app = spawn_system_with(&[("CATALOGUE_CACHE_TTL_MS", "60000")]).await;
    let product = app.products().create("Boxes", 100, 10).await;
    assert_eq!(app.products().shown_stock(product).await, 10, "cached");

    app.products()
        .warehouse_adjusts(product, 5, ("receipt", "r-1"), "adjustment:r-1")
        .await;
    app.bus().quiescent().await;

    assert_eq!(app.products().shown_stock(product).await, 15);
}
