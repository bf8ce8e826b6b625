//! Shipments: carrier and tracking given with the move to SHIPPED, over HTTP and over the bus,
//! stored with the order and carried in its SHIPPED status event.

use crate::helpers::{Shop, TestApp, assert_problem, fields, spawn_app};
use crate::shipping::{address, place_to};
use common::domain::OrderStatus;
use common::messages::{FulfilOrder, OrderStatusChanged, PlaceOrder};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;
use workers::dispatch::Incoming;

/// Every status event of `order` in the EVENTS stream, oldest first.
async fn status_events(app: &TestApp, order: &str) -> Vec<OrderStatusChanged> {
    let bus = &app.state.bus;
    let stream = bus
        .jetstream()
        .get_stream(bus.namespace().name(common::nats::EVENTS))
        .await
        .unwrap();
    let subject = bus.namespace().subject("orders.evt.status_changed");
    let mut events = Vec::new();
    let mut sequence = 1;
    while let Ok(message) = stream.get_raw_message(sequence).await {
        sequence += 1;
        if message.subject.as_str() != subject {
            continue;
        }
        let event = common::messaging::decode::<OrderStatusChanged>(&message.payload)
            .unwrap()
            .data;
        if event.order_id.to_string() == order {
            events.push(event);
        }
    }
    events
}

/// A command of `kind` (`orders.transition`, `orders.fulfil`) in its envelope, with `data`, as
/// a plain NATS client writes it.
fn command(kind: &str, order: &str, data: Value) -> Value {
    let mut data = data;
    data["order_id"] = json!(order);
    json!({
        "id": Uuid::new_v4(),
        "type": kind,
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": format!("wms-{order}"),
        "data": data,
    })
}

/// The order service's own transition command with `shipment` fields.
fn transition(order: &str, to: &str, shipment: Value) -> Value {
    let mut data = json!({"to": to, "actor": "system:test"});
    for (field, value) in shipment.as_object().unwrap() {
        data[field] = value.clone();
    }
    command("orders.transition", order, data)
}

/// An order to `country` by the customer, CONFIRMED then PAID; returns its id.
async fn a_paid_order_to(shop: &Shop, country: &str) -> String {
    let p = shop.products().create("P", 500, 10).await;
    let order = place_to(shop, &shop.customer, p, address(country)).await;
    assert_eq!(order["status"], "CONFIRMED");
    let id = crate::helpers::id_of(&order);
    shop.orders()
        .move_through(&shop.admin, &id, &["PAID"])
        .await;
    id
}

/// A shop with no workers and an order of the customer inserted in `status`.
async fn an_order_without_workers(status: &str) -> (Shop, uuid::Uuid) {
    let shop = Shop::around(spawn_app().await).await;
    let id = shop.orders().insert(&shop.customer, status).await;
    (shop, id)
}

#[tokio::test]
async fn shipping_with_tracking_over_http_shows_it_on_the_order_and_in_the_event() {
    let shop = Shop::open().await;
    let id = a_paid_order_to(&shop, "GB").await;
    let shipment = json!({
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://carrier.example/track/1Z999AA10123456784",
    });
    let mut ship = shipment.clone();
    ship["status"] = json!("SHIPPED");

    let shipped = shop.orders().change_status(&shop.admin, &id, ship).await;

    assert_eq!(shipped["status"], "SHIPPED");
    assert_eq!(shipped["shipment"], shipment);
    let seen_by_owner = shop.order_in(&id, "SHIPPED").await;
    assert_eq!(seen_by_owner["shipment"], shipment);
    let events = status_events(&shop, &id).await;
    let to: Vec<String> = events.iter().map(|e| e.to.to_string()).collect();
    assert_eq!(to, vec!["CONFIRMED", "PAID", "SHIPPED"]);
    assert_eq!(
        serde_json::to_value(&events[2].shipment).unwrap(),
        shipment,
        "the SHIPPED event carries the shipment"
    );
    assert!(events[..2].iter().all(|e| e.shipment.is_none()));
}

#[tokio::test]
async fn shipping_without_tracking_still_works_and_shows_no_shipment() {
    let shop = Shop::open().await;
    let p = shop.products().create("P", 500, 10).await;
    let id = shop.confirmed_order(p, 1).await;

    shop.orders()
        .move_through(&shop.admin, &id, &["PAID", "SHIPPED"])
        .await;

    let shipped = shop.order_in(&id, "SHIPPED").await;
    assert_eq!(shipped["shipment"], Value::Null);
    let events = status_events(&shop, &id).await;
    assert!(events.iter().all(|e| e.shipment.is_none()));
}

#[tokio::test]
async fn shipment_fields_with_another_status_are_a_422_naming_each() {
    let (shop, id) = an_order_without_workers("CONFIRMED").await;
    let body = json!({"status": "PAID", "carrier": "UPS", "tracking_number": "1Z",
                      "tracking_url": "https://carrier.example/1Z"});

    let problem = assert_problem(
        shop.orders()
            .patch_status(&shop.admin, id, &body, &[])
            .await,
        422,
    )
    .await;

    assert_eq!(
        fields(&problem),
        vec!["carrier", "tracking_number", "tracking_url"]
    );
}

#[tokio::test]
async fn a_carrier_without_a_tracking_number_is_a_422_and_so_is_a_tracking_url_alone() {
    let (shop, id) = an_order_without_workers("PAID").await;

    for (body, named) in [
        (
            json!({"status": "SHIPPED", "carrier": "UPS"}),
            vec!["tracking_number"],
        ),
        (
            json!({"status": "SHIPPED", "tracking_url": "https://carrier.example/1Z"}),
            vec!["carrier", "tracking_number"],
        ),
        (
            json!({"status": "SHIPPED", "carrier": " ", "tracking_number": "1Z"}),
            vec!["carrier"],
        ),
    ] {
        let res = shop
            .orders()
            .patch_status(&shop.admin, id, &body, &[])
            .await;
        assert_eq!(fields(&assert_problem(res, 422).await), named, "{body}");
    }
}

#[tokio::test]
async fn a_tracking_url_that_is_not_http_or_https_is_a_422_naming_it() {
    let (shop, id) = an_order_without_workers("PAID").await;

    for url in [
        "javascript:alert(document.cookie)",
        "ftp://carrier.example/1Z",
        "carrier.example/1Z",
        &format!("https://carrier.example/{}", "z".repeat(2000)),
    ] {
        let body = json!({"status": "SHIPPED", "carrier": "UPS", "tracking_number": "1Z",
                          "tracking_url": url});
        let res = shop
            .orders()
            .patch_status(&shop.admin, id, &body, &[])
            .await;
        assert_eq!(
            fields(&assert_problem(res, 422).await),
            vec!["tracking_url"],
            "{url}"
        );
    }
    assert_eq!(
        shop.orders().stored_status(id).await.as_deref(),
        Some("PAID"),
        "nothing was published"
    );
}

#[tokio::test]
async fn a_warehouse_ships_with_tracking_over_the_bus_with_a_plain_nats_client() {
    let shop = Shop::open().await;
    let id = a_paid_order_to(&shop, "NL").await;
    let shipment = json!({"carrier": "PostNL", "tracking_number": "3SABCD1234567",
                          "tracking_url": "http://carrier.example/3SABCD1234567"});

    let mut fulfil = shipment.clone();
    fulfil["reference"] = json!("wms-3SABCD");
    shop.bus()
        .publish_plain("orders.cmd.fulfil", command("orders.fulfil", &id, fulfil))
        .await;

    let shipped = shop.order_in(&id, "SHIPPED").await;
    assert_eq!(shipped["shipment"], shipment);
    let step = crate::helpers::last_step(&shipped);
    assert_eq!(step["actor"], "system:warehouse");
    assert_eq!(step["reason"], "reference wms-3SABCD");
    let events = status_events(&shop, &id).await;
    let event = events.last().unwrap();
    assert_eq!(event.to, OrderStatus::Shipped);
    assert_eq!(serde_json::to_value(&event.shipment).unwrap(), shipment);
}

#[tokio::test]
async fn a_transition_command_with_shipment_fields_on_another_status_is_dead_lettered() {
    let shop = Shop::open().await;
    let id = shop.orders().insert(&shop.customer, "SHIPPED").await;

    shop.bus()
        .publish_plain(
            "orders.cmd.transition",
            transition(
                &id.to_string(),
                "DELIVERED",
                json!({"carrier": "UPS", "tracking_number": "1Z"}),
            ),
        )
        .await;
    shop.bus().quiescent().await;

    let reasons = shop.bus().dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0]
            .starts_with("invalid data for orders.transition: carrier: only a move to SHIPPED"),
        "{reasons:?}"
    );
    assert_eq!(
        shop.orders().stored_status(id).await.as_deref(),
        Some("SHIPPED")
    );
}

#[tokio::test]
async fn redelivered_commands_with_shipping_details_change_nothing_twice_and_repeat_their_events() {
    // No workers running: the handlers are driven by hand, exactly as a redelivery drives them.
    let app = spawn_app().await;
    let client = app.create_user(common::domain::Role::Client).await;
    let p = app.products().create("P", 500, 10).await;
    let ctx = app.bus().worker_context();
    let nats = async_nats::connect(common::testing::nats_url())
        .await
        .unwrap();
    let mut events = nats
        .subscribe(
            app.state
                .bus
                .namespace()
                .subject("orders.evt.status_changed"),
        )
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let order_id = Uuid::now_v7();
    let place = PlaceOrder {
        shipping_address: Some(serde_json::from_value(address("IE")).unwrap()),
        ..crate::helpers::place_command(order_id, client.id, p, 2)
    };
    let paid = crate::helpers::transition_command(order_id, OrderStatus::Paid);
    let ship = FulfilOrder {
        order_id,
        reference: common::domain::Reference::new("wms-an-post-1").unwrap(),
        carrier: "An Post".into(),
        tracking_number: "CE123456789IE".into(),
        tracking_url: None,
        lines: None,
    };

    for _ in 0..2 {
        let placed =
            workers::placing::place(ctx.clone(), vec![Incoming::new(place.clone(), "t")]).await;
        assert!(placed[0].is_ok(), "{placed:?}");
    }
    let moved = workers::transitions::transition(ctx.clone(), vec![Incoming::new(paid, "t")]).await;
    assert!(moved[0].is_ok(), "{moved:?}");
    for _ in 0..2 {
        let shipped = workers::transitions::outside::fulfil(
            ctx.clone(),
            vec![Incoming::new(ship.clone(), "t")],
        )
        .await;
        assert!(shipped[0].is_ok(), "{shipped:?}");
    }

    let mut shipped = Vec::new();
    while shipped.len() < 2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
            .await
            .expect("the SHIPPED event, published again")
            .unwrap();
        let event = common::messaging::decode::<OrderStatusChanged>(&message.payload)
            .unwrap()
            .data;
        if event.to == OrderStatus::Shipped {
            shipped.push(event);
        }
    }
    assert_eq!(shipped[0], shipped[1], "the recorded event, repeated");
    let shipment = shipped[0].shipment.clone().expect("with its shipment");
    assert_eq!(shipment.tracking_number, "CE123456789IE");
    assert_eq!(app.bus().dead_letter_reasons().await, Vec::<String>::new());
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM order_events WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(entries, 3, "recorded, paid and shipped once each");
    assert_eq!(app.products().stock_of(p).await, 8, "reserved once");
}

/// A paid order shipped with DHL under JD0001; returns its id.
async fn shipped_with_dhl(shop: &Shop) -> String {
    let p = shop.products().create("P", 500, 10).await;
    let id = shop.confirmed_order(p, 1).await;
    shop.orders()
        .move_through(&shop.admin, &id, &["PAID"])
        .await;
    shop.orders()
        .change_status(&shop.admin, &id, dhl("JD0001"))
        .await;
    id
}

/// A move to SHIPPED with DHL under `tracking_number`.
fn dhl(tracking_number: &str) -> Value {
    json!({"status": "SHIPPED", "carrier": "DHL", "tracking_number": tracking_number})
}

#[tokio::test]
async fn the_same_shipment_again_changes_nothing() {
    let shop = Shop::open().await;
    let id = shipped_with_dhl(&shop).await;

    let retry = shop
        .orders()
        .patch_status(&shop.admin, &id, &dhl("JD0001"), &[])
        .await;

    assert_eq!(retry.status(), 200);
}

#[tokio::test]
async fn another_shipment_for_a_shipped_order_is_a_409_and_the_first_is_kept() {
    let shop = Shop::open().await;
    let id = shipped_with_dhl(&shop).await;

    let other = shop
        .orders()
        .patch_status(&shop.admin, &id, &dhl("JD0002"), &[])
        .await;

    let problem = assert_problem(other, 409).await;
    assert_eq!(problem["current_status"], "SHIPPED");
    let now = shop.orders().read(&shop.admin, &id).await;
    assert_eq!(now["shipment"]["tracking_number"], "JD0001");
}
