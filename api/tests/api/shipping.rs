//! Shipping addresses: given at placement, checked field by field, kept with the order as a
//! snapshot and shown to its owner and ADMINs; and the order list's filters on shipping.

use crate::helpers::{
    Shop, TestApp, TestUser, assert_problem, fields, id_of, place_command, spawn_app,
};
use common::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

/// A full shipping address in `country`, as a customer gives it.
pub(crate) fn address(country: &str) -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "line2": "Flat 3",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": country,
        "phone": "+44 20 7946 0000",
    })
}

/// The body of an order of one `product` shipped to `address`.
fn order_to(product: Uuid, address: Value) -> Value {
    json!({"items": [{"product_id": product, "quantity": 1}], "shipping_address": address})
}

/// Places an order to `shipping_address` and waits until it is settled.
pub(crate) async fn place_to(app: &TestApp, user: &TestUser, product: Uuid, to: Value) -> Value {
    app.orders()
        .place_body_settled(user, &order_to(product, to))
        .await
}

/// A shop with no workers and one product, where orders stay accepted.
async fn shop_without_workers() -> (Shop, Uuid) {
    let shop = Shop::around(spawn_app().await).await;
    let p = shop.products().create("P", 500, 10).await;
    (shop, p)
}

/// The address as the order keeps it: trimmed, blanks dropped, the country upper case.
async fn an_order_to_a_loosely_typed_address(shop: &Shop) -> (Value, Value) {
    let p = shop.products().create("P", 500, 10).await;
    let mut given = address("gb");
    given["name"] = json!("  Ada Lovelace  ");
    given["region"] = json!("");
    let order = place_to(shop, &shop.customer, p, given).await;
    assert_eq!(order["status"], "CONFIRMED");
    let mut stored = address("GB");
    stored["region"] = Value::Null;
    (order, stored)
}

#[tokio::test]
async fn the_shipping_address_is_kept_trimmed_without_blanks_and_with_the_country_upper_case() {
    let shop = Shop::open().await;

    let (order, stored) = an_order_to_a_loosely_typed_address(&shop).await;

    assert_eq!(order["shipping_address"], stored);
    assert_eq!(order["shipment"], Value::Null);
}

#[tokio::test]
async fn the_shipping_address_is_shown_to_admins_and_hidden_from_other_customers() {
    let shop = Shop::open().await;
    let other = shop.create_user(Role::Client).await;
    let (order, stored) = an_order_to_a_loosely_typed_address(&shop).await;
    let path = format!("/api/v1/orders/{}", id_of(&order));

    let seen_by_admin = shop.read(&shop.admin, &path).await;

    assert_eq!(seen_by_admin["shipping_address"], stored);
    assert_problem(shop.get_as(&other, &path).await, 404).await;
}

#[tokio::test]
async fn an_accepted_order_shows_its_shipping_address_while_pending() {
    // No workers: the order stays accepted and unrecorded.
    let (shop, p) = shop_without_workers().await;

    let res = shop
        .orders()
        .place(&shop.customer, &order_to(p, address("FR")), &[])
        .await;

    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(accepted["shipping_address"]["country"], "FR");
    let read = shop.orders().read(&shop.customer, &id_of(&accepted)).await;
    assert_eq!(read["status"], "PENDING");
    assert_eq!(read["shipping_address"], accepted["shipping_address"]);
}

#[tokio::test]
async fn a_retry_under_the_same_idempotency_key_shows_the_address() {
    let (shop, p) = shop_without_workers().await;
    let key = [("idempotency-key", "checkout-42")];
    let first = shop
        .orders()
        .place(&shop.customer, &order_to(p, address("DE")), &key)
        .await;
    let first: Value = first.json().await.unwrap();

    let retry = shop
        .orders()
        .place(&shop.customer, &order_to(p, address("DE")), &key)
        .await;

    assert_eq!(retry.status(), 202);
    let replayed: Value = retry.json().await.unwrap();
    assert_eq!(replayed["id"], first["id"]);
    assert_eq!(replayed["shipping_address"]["country"], "DE");
}

#[tokio::test]
async fn a_retry_under_the_same_idempotency_key_to_another_address_is_422() {
    let (shop, p) = shop_without_workers().await;
    let key = [("idempotency-key", "checkout-42")];
    let first = shop
        .orders()
        .place(&shop.customer, &order_to(p, address("DE")), &key)
        .await;
    assert_eq!(first.status(), 202);

    let elsewhere = shop
        .orders()
        .place(&shop.customer, &order_to(p, address("AT")), &key)
        .await;

    assert_problem(elsewhere, 422).await;
}

#[tokio::test]
async fn every_bad_field_of_a_shipping_address_is_named_in_one_422_and_nothing_is_placed() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 500, 10).await;
    let bad = json!({
        "name": "",
        "line1": "x".repeat(201),
        "line2": "two\nlines",
        "city": " ",
        "region": "r".repeat(101),
        "postal_code": "SW1Y <4JH>",
        "country": "GB",
        "phone": "call me maybe",
    });
    let body = json!({"items": [{"product_id": p, "quantity": 0}], "shipping_address": bad});

    let problem = assert_problem(shop.orders().place(&shop.customer, &body, &[]).await, 422).await;

    assert_eq!(
        fields(&problem),
        vec![
            "items[0].quantity",
            "shipping_address.name",
            "shipping_address.line1",
            "shipping_address.line2",
            "shipping_address.city",
            "shipping_address.region",
            "shipping_address.postal_code",
            "shipping_address.phone",
        ]
    );
    let list = shop.read(&shop.customer, "/api/v1/orders").await;
    assert_eq!(list["items"], json!([]));
    assert_eq!(shop.products().stock_of(p).await, 10);
}

#[tokio::test]
async fn a_country_that_is_not_an_iso_3166_code_is_a_422_naming_it() {
    let (shop, p) = shop_without_workers().await;
    let mut missing = address("GB");
    missing.as_object_mut().unwrap().remove("country");

    for (given, named) in [
        (address("UK"), "shipping_address.country"),
        (address("XX"), "shipping_address.country"),
        (address("GBR"), "shipping_address.country"),
        (address(""), "shipping_address.country"),
        (missing, "shipping_address"),
    ] {
        let res = shop
            .orders()
            .place(&shop.customer, &order_to(p, given.clone()), &[])
            .await;
        let problem = assert_problem(res, 422).await;
        assert_eq!(fields(&problem), vec![named], "{given}");
    }
}

#[tokio::test]
async fn an_unknown_field_in_a_shipping_address_is_a_422_naming_it() {
    let (shop, p) = shop_without_workers().await;
    let mut unknown = address("GB");
    unknown["street"] = json!("Downing Street");

    let res = shop
        .orders()
        .place(&shop.customer, &order_to(p, unknown), &[])
        .await;

    assert_eq!(
        fields(&assert_problem(res, 422).await),
        vec!["shipping_address.street"]
    );
}

#[tokio::test]
async fn an_order_placed_without_an_address_still_works() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 500, 10).await;

    let order = shop.orders().place_settled(&shop.customer, p, 1).await;

    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["shipping_address"], Value::Null);
    assert_eq!(order["shipment"], Value::Null);
}

#[tokio::test]
async fn a_place_command_with_a_bad_address_is_dead_lettered_with_the_reason() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 500, 10).await;
    let order_id = Uuid::now_v7();
    let mut command =
        serde_json::to_value(place_command(order_id, shop.customer.id, p, 1)).unwrap();
    command["shipping_address"] = address("XX");
    let envelope = json!({
        "id": Uuid::new_v4(),
        "type": "orders.place",
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": "pos-1",
        "data": command,
    });

    shop.bus().publish_plain("orders.cmd.place", envelope).await;
    shop.bus().quiescent().await;

    let reasons = shop.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("invalid data for orders.place: shipping_address: country: must be"),
        "{reasons:?}"
    );
    assert_eq!(shop.orders().stored_status(order_id).await, None);
    assert_eq!(shop.products().stock_of(p).await, 10);
}

/// Inserts an order shipping to `country` (if any), with a tracking number or not.
async fn insert_shipped_to(
    app: &TestApp,
    user: &TestUser,
    country: Option<&str>,
    tracked: bool,
) -> String {
    let id = app.orders().insert(user, "SHIPPED").await;
    sqlx::query(
        "UPDATE orders SET shipping_address = $2,
                carrier = CASE WHEN $3 THEN 'UPS' END,
                tracking_number = CASE WHEN $3 THEN '1Z' END
          WHERE id = $1",
    )
    .bind(id)
    .bind(country.map(address))
    .bind(tracked)
    .execute(&app.state.db)
    .await
    .unwrap();
    id.to_string()
}

/// The ids of every order of the list at `path`, page by page, newest first.
async fn every_page(app: &TestApp, user: &TestUser, path: &str) -> Vec<String> {
    app.every_page(user, path).await.iter().map(id_of).collect()
}

#[tokio::test]
async fn admins_filter_orders_by_country_and_tracking_across_pages() {
    let shop = Shop::around(spawn_app().await).await;
    let (alice, admin) = (&shop.customer, &shop.admin);
    let bob = shop.create_user(Role::Client).await;
    let gb_tracked = insert_shipped_to(&shop, alice, Some("GB"), true).await;
    let fr_tracked = insert_shipped_to(&shop, &bob, Some("FR"), true).await;
    let gb_untracked = insert_shipped_to(&shop, &bob, Some("GB"), false).await;
    let nowhere = insert_shipped_to(&shop, alice, None, false).await;
    let gb_tracked_too = insert_shipped_to(&shop, &bob, Some("GB"), true).await;

    let gb = every_page(&shop, admin, "/api/v1/orders?country=gb&limit=1").await;
    let tracked = every_page(&shop, admin, "/api/v1/orders?has_tracking=true&limit=1").await;
    let untracked = every_page(&shop, admin, "/api/v1/orders?has_tracking=false&limit=1").await;
    let gb_tracked_pages = every_page(
        &shop,
        admin,
        "/api/v1/orders?country=GB&has_tracking=true&limit=1",
    )
    .await;
    let alices_gb = every_page(&shop, alice, "/api/v1/orders?country=GB&limit=1").await;

    assert_eq!(
        gb,
        vec![
            gb_tracked_too.clone(),
            gb_untracked.clone(),
            gb_tracked.clone()
        ]
    );
    assert_eq!(
        tracked,
        vec![gb_tracked_too.clone(), fr_tracked, gb_tracked.clone()]
    );
    assert_eq!(untracked, vec![nowhere, gb_untracked]);
    assert_eq!(gb_tracked_pages, vec![gb_tracked_too, gb_tracked.clone()]);
    assert_eq!(alices_gb, vec![gb_tracked], "a customer filters their own");
}

#[tokio::test]
async fn a_bad_country_or_tracking_filter_is_refused() {
    let shop = Shop::around(spawn_app().await).await;

    let country = shop.get_as(&shop.admin, "/api/v1/orders?country=UK").await;
    let tracking = shop
        .get_as(&shop.admin, "/api/v1/orders?has_tracking=maybe")
        .await;

    assert_eq!(fields(&assert_problem(country, 422).await), vec!["country"]);
    assert_problem(tracking, 400).await;
}
