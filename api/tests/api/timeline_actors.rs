//! Customers see the staff who acted on their orders as `staff`, never an ADMIN account's id:
//! in the order, its list, and its event streams, live or replayed. ADMINs see the ids; a
//! customer's own actions still show as theirs.

use crate::helpers::{Shop, id_of, open};
use serde_json::Value;

/// A customer's order, confirmed, then marked PAID by the shop's ADMIN.
async fn paid_by_staff(shop: &Shop) -> String {
    let mug = shop.products().create("Mug", 1250, 5).await;
    let order = shop.confirmed_order(mug, 1).await;
    shop.orders()
        .move_through(&shop.admin, &order, &["PAID"])
        .await;
    order
}

/// The actors of an order's timeline, oldest first.
fn actors(order: &Value) -> Vec<String> {
    order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_customer_sees_staff_as_staff_and_an_admin_sees_their_id_in_the_order() {
    let shop = Shop::open().await;
    let order = paid_by_staff(&shop).await;
    let admin_id = shop.admin.id.to_string();

    let seen = shop.orders().read(&shop.customer, &order).await;
    assert_eq!(actors(&seen), ["system:inventory", "staff"]);
    assert!(!seen.to_string().contains(&admin_id), "{seen}");
    let listed: Value = shop
        .get_as(&shop.customer, "/api/v1/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(actors(&listed["items"][0]), ["system:inventory", "staff"]);
    assert!(!listed.to_string().contains(&admin_id));

    let by_admin = shop.orders().read(&shop.admin, &order).await;
    assert_eq!(
        actors(&by_admin),
        ["system:inventory".to_owned(), format!("user:{admin_id}")]
    );
}

#[tokio::test]
async fn a_customers_own_cancel_shows_as_theirs() {
    let shop = Shop::open().await;
    let mug = shop.products().create("Mug", 1250, 5).await;
    let order = shop.confirmed_order(mug, 1).await;

    let cancelled = shop.orders().cancel_settled(&shop.customer, &order).await;

    let mine = format!("user:{}", shop.customer.id);
    assert_eq!(actors(&cancelled).last(), Some(&mine));
}

#[tokio::test]
async fn a_customers_event_streams_show_staff_as_staff_live_and_replayed() {
    let shop = Shop::open().await;
    let mug = shop.products().create("Mug", 1250, 5).await;
    let order = shop.confirmed_order(mug, 1).await;
    let path = format!("/api/v1/orders/{order}/events");
    let mut one = open(&shop.address, &shop.customer, &path, None).await;
    let (opening, opened) = one.next_of("order").await;
    assert_eq!(id_of(&opened), order);
    // From the order's latest entry, so a confirmation heard late is not taken for the payment.
    let all_path = "/api/v1/orders/events";
    let mut all = open(&shop.address, &shop.customer, all_path, Some(&opening.id)).await;

    shop.orders()
        .move_through(&shop.admin, &order, &["PAID"])
        .await;

    let (_, live) = one.next_of("status_changed").await;
    assert_eq!(
        (live["to"].as_str(), live["actor"].as_str()),
        (Some("PAID"), Some("staff"))
    );
    let (_, live) = all.next_of("status_changed").await;
    assert_eq!(live["actor"], "staff");
    let mut replayed = open(&shop.address, &shop.customer, &path, Some("0")).await;
    let (_, first) = replayed.next_of("status_changed").await;
    let (_, second) = replayed.next_of("status_changed").await;
    assert_eq!(first["actor"], "system:inventory");
    assert_eq!(second["actor"], "staff");
    let mut all_replayed = open(
        &shop.address,
        &shop.customer,
        "/api/v1/orders/events",
        Some("0"),
    )
    .await;
    all_replayed.next_of("status_changed").await;
    let (_, paid) = all_replayed.next_of("status_changed").await;
    assert_eq!(paid["actor"], "staff");

    let mut as_admin = open(&shop.address, &shop.admin, &path, Some("0")).await;
    as_admin.next_of("status_changed").await;
    let (_, paid) = as_admin.next_of("status_changed").await;
    assert_eq!(paid["actor"], format!("user:{}", shop.admin.id));
}
