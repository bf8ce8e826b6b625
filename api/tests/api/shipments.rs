//! Shipments: carrier and tracking given with the move to SHIPPED, over HTTP and over the bus,
//! stored with the order and carried in its SHIPPED status event.

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_system};
use crate::lifecycle::publish_plain;
use crate::shipping::{address, fields, id_of, place_to};
use common::domain::{OrderStatus, Role};
use common::messages::{LineRequest, OrderStatusChanged, PlaceOrder, TransitionOrder};
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

/// A transition command in its envelope, as a warehouse system would publish it.
fn transition(order: &str, to: &str, shipment: Value) -> Value {
    let mut data = json!({"order_id": order, "to": to, "actor": "system:warehouse"});
    for (field, value) in shipment.as_object().unwrap() {
        data[field] = value.clone();
    }
    json!({
        "id": Uuid::new_v4(),
        "type": "orders.transition",
        "version": 1,
        "occurred_at": chrono::Utc::now(),
        "correlation_id": format!("wms-{order}"),
        "data": data,
    })
}

#[tokio::test]
async fn shipping_with_tracking_over_http_shows_it_on_the_order_and_in_the_event() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 500, 10).await;
    let order = place_to(&app, &client, p, address("GB")).await;
    let path = format!("/api/v1/orders/{}/status", id_of(&order));
    let paid = app
        .patch_as(
            &admin,
            &path,
            &json!({"status": "PAID"}),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(paid.status(), 200);
    let shipment = json!({
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://carrier.example/track/1Z999AA10123456784",
    });
    let mut ship = shipment.clone();
    ship["status"] = json!("SHIPPED");

    let res = app
        .patch_as(&admin, &path, &ship, &[("prefer", "wait=10")])
        .await;

    assert_eq!(res.status(), 200);
    let shipped: Value = res.json().await.unwrap();
    assert_eq!(shipped["status"], "SHIPPED");
    assert_eq!(shipped["shipment"], shipment);
    let seen_by_owner = app
        .order_when(&client, &id_of(&order), |o| o["status"] == "SHIPPED")
        .await;
    assert_eq!(seen_by_owner["shipment"], shipment);
    let events = status_events(&app, &id_of(&order)).await;
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
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 500, 10).await;
    let order = app.place_settled(&client, p, 1).await;
    let path = format!("/api/v1/orders/{}/status", id_of(&order));
    for to in ["PAID", "SHIPPED"] {
        let res = app
            .patch_as(
                &admin,
                &path,
                &json!({"status": to}),
                &[("prefer", "wait=10")],
            )
            .await;
        assert_eq!(res.status(), 200, "{to}");
    }

    let shipped = app
        .order_when(&client, &id_of(&order), |o| o["status"] == "SHIPPED")
        .await;

    assert_eq!(shipped["shipment"], Value::Null);
    let events = status_events(&app, &id_of(&order)).await;
    assert!(events.iter().all(|e| e.shipment.is_none()));
}

#[tokio::test]
async fn shipment_fields_with_another_status_are_a_422_naming_each() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.insert_order(&client, "CONFIRMED").await;
    let body = json!({"status": "PAID", "carrier": "UPS", "tracking_number": "1Z",
                      "tracking_url": "https://carrier.example/1Z"});

    let problem = assert_problem(
        app.patch_as(&admin, &format!("/api/v1/orders/{id}/status"), &body, &[])
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
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.insert_order(&client, "PAID").await;
    let path = format!("/api/v1/orders/{id}/status");

    let carrier_only = json!({"status": "SHIPPED", "carrier": "UPS"});
    let url_only = json!({"status": "SHIPPED", "tracking_url": "https://carrier.example/1Z"});
    let blank = json!({"status": "SHIPPED", "carrier": " ", "tracking_number": "1Z"});

    let problem = assert_problem(app.patch_as(&admin, &path, &carrier_only, &[]).await, 422).await;
    assert_eq!(fields(&problem), vec!["tracking_number"]);
    let problem = assert_problem(app.patch_as(&admin, &path, &url_only, &[]).await, 422).await;
    assert_eq!(fields(&problem), vec!["carrier", "tracking_number"]);
    let problem = assert_problem(app.patch_as(&admin, &path, &blank, &[]).await, 422).await;
    assert_eq!(fields(&problem), vec!["carrier"]);
}

#[tokio::test]
async fn a_tracking_url_that_is_not_http_or_https_is_a_422_naming_it() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.insert_order(&client, "PAID").await;
    let path = format!("/api/v1/orders/{id}/status");

    for url in [
        "javascript:alert(document.cookie)",
        "ftp://carrier.example/1Z",
        "carrier.example/1Z",
        &format!("https://carrier.example/{}", "z".repeat(2000)),
    ] {
        let body = json!({"status": "SHIPPED", "carrier": "UPS", "tracking_number": "1Z",
                          "tracking_url": url});
        let problem = assert_problem(app.patch_as(&admin, &path, &body, &[]).await, 422).await;
        assert_eq!(fields(&problem), vec!["tracking_url"], "{url}");
    }
    let status: String = sqlx::query_scalar("SELECT status::text FROM orders WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "PAID", "nothing was published");
}

#[tokio::test]
async fn a_warehouse_ships_with_tracking_over_the_bus_with_a_plain_nats_client() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 500, 10).await;
    let order = place_to(&app, &client, p, address("NL")).await;
    let id = id_of(&order);
    let paid = app
        .patch_as(
            &admin,
            &format!("/api/v1/orders/{id}/status"),
            &json!({"status": "PAID"}),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(paid.status(), 200);
    let shipment = json!({"carrier": "PostNL", "tracking_number": "3SABCD1234567",
                          "tracking_url": "http://carrier.example/3SABCD1234567"});

    publish_plain(
        &app,
        "orders.cmd.transition",
        transition(&id, "SHIPPED", shipment.clone()),
    )
    .await;

    let shipped = app
        .order_when(&client, &id, |o| o["status"] == "SHIPPED")
        .await;
    assert_eq!(shipped["shipment"], shipment);
    let last = shipped["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], "system:warehouse");
    let events = status_events(&app, &id).await;
    let event = events.last().unwrap();
    assert_eq!(event.to, OrderStatus::Shipped);
    assert_eq!(serde_json::to_value(&event.shipment).unwrap(), shipment);
}

#[tokio::test]
async fn a_transition_command_with_shipment_fields_on_another_status_is_dead_lettered() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let id = app.insert_order(&client, "SHIPPED").await.to_string();

    publish_plain(
        &app,
        "orders.cmd.transition",
        transition(
            &id,
            "DELIVERED",
            json!({"carrier": "UPS", "tracking_number": "1Z"}),
        ),
    )
    .await;
    app.quiescent().await;

    let reasons = app.dead_letter_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("invalid shipment: carrier: only a move to SHIPPED"),
        "{reasons:?}"
    );
    let status: String = sqlx::query_scalar("SELECT status::text FROM orders WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "SHIPPED");
}

#[tokio::test]
async fn redelivered_commands_with_shipping_details_change_nothing_twice_and_repeat_their_events() {
    // No workers running: the handlers are driven by hand, exactly as a redelivery drives them.
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;
    let p = app.create_product("P", 500, 10).await;
    let ctx = crate::orders_delivery::worker_context(&app);
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
        order_id,
        user_id: client.id,
        items: vec![LineRequest {
            product_id: p,
            quantity: 2,
        }],
        shipping_address: Some(serde_json::from_value(address("IE")).unwrap()),
    };
    let ship = |to: OrderStatus| TransitionOrder {
        order_id,
        to,
        actor: "system:warehouse".into(),
        reason: None,
        allowed_from: None,
        carrier: (to == OrderStatus::Shipped).then(|| "An Post".into()),
        tracking_number: (to == OrderStatus::Shipped).then(|| "CE123456789IE".into()),
        tracking_url: None,
    };

    for _ in 0..2 {
        let placed =
            workers::placing::place(ctx.clone(), vec![Incoming::new(place.clone(), "t")]).await;
        assert!(placed[0].is_ok(), "{placed:?}");
    }
    for to in [
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Shipped,
    ] {
        let moved =
            workers::transitions::transition(ctx.clone(), vec![Incoming::new(ship(to), "t")]).await;
        assert!(moved[0].is_ok(), "{moved:?}");
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
    assert_eq!(app.dead_letter_reasons().await, Vec::<String>::new());
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM order_events WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(entries, 3, "recorded, paid and shipped once each");
    assert_eq!(app.stock_of(p).await, 8, "reserved once");
}

#[tokio::test]
async fn a_shipped_order_keeps_its_shipment_and_another_one_is_a_409() {
    let app = spawn_system().await;
    let client = app.create_user(Role::Client).await;
    let admin = app.create_user(Role::Admin).await;
    let p = app.create_product("P", 500, 10).await;
    let order = app.place_settled(&client, p, 1).await;
    let path = format!("/api/v1/orders/{}/status", id_of(&order));
    let ship = json!({"status": "SHIPPED", "carrier": "DHL", "tracking_number": "JD0001"});
    for body in [json!({"status": "PAID"}), ship.clone()] {
        let res = app
            .patch_as(&admin, &path, &body, &[("prefer", "wait=10")])
            .await;
        assert_eq!(res.status(), 200, "{body}");
    }

    let retry = app.patch_as(&admin, &path, &ship, &[]).await;
    let other = app
        .patch_as(
            &admin,
            &path,
            &json!({"status": "SHIPPED", "carrier": "DHL", "tracking_number": "JD0002"}),
            &[],
        )
        .await;

    assert_eq!(
        retry.status(),
        200,
        "the same shipment again changes nothing"
    );
    let problem = assert_problem(other, 409).await;
    assert_eq!(problem["current_status"], "SHIPPED");
    let now: Value = app
        .get_as(&admin, &format!("/api/v1/orders/{}", id_of(&order)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["shipment"]["tracking_number"], "JD0001");
}
