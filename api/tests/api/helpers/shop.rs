//! The shop in tests: orders written directly or through the api, the commands other systems
//! publish about them, and their state read back; and [`Shop`], a running system with a
//! customer and an ADMIN.

use super::{TestApp, TestUser, spawn_system};
use common::domain::{Actor, Lines, OrderStatus, Role};
use common::messages::{LineRequest, PlaceOrder, TransitionOrder};
use serde_json::{Value, json};
use std::fmt::Display;
use uuid::Uuid;

/// The api and every worker, with a customer and an ADMIN who each hold a live session.
pub struct Shop {
    pub app: TestApp,
    pub customer: TestUser,
    pub admin: TestUser,
}

impl std::ops::Deref for Shop {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Shop {
    /// Starts the api and every worker, with a customer and an ADMIN.
    pub async fn open() -> Shop {
        Shop::around(spawn_system().await).await
    }

    /// A customer and an ADMIN on `app` (an api without workers, say).
    pub async fn around(app: TestApp) -> Shop {
        let customer = app.create_user(Role::Client).await;
        let admin = app.create_user(Role::Admin).await;
        Shop {
            app,
            customer,
            admin,
        }
    }

    /// Waits until the customer's order `id` is in `status`; returns it.
    pub async fn order_in(&self, id: &str, status: &str) -> Value {
        self.order_when(&self.customer, id, |o| o["status"] == status)
            .await
    }

    /// The customer orders `quantity` of `product`; the order must be CONFIRMED. Returns its id.
    pub async fn confirmed_order(&self, product: Uuid, quantity: i32) -> String {
        let order = self.place_settled(&self.customer, product, quantity).await;
        assert_eq!(order["status"], "CONFIRMED", "{order}");
        id_of(&order)
    }
}

/// The body of an order of `lines`, each a product and its quantity.
pub fn order_of(lines: &[(Uuid, i32)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    json!({ "items": items })
}

/// The `id` of an order (or of any resource) as its JSON gives it.
pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("an id").to_owned()
}

/// The newest entry of an order's timeline.
pub fn last_step(order: &Value) -> &Value {
    order["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .expect("a timeline entry")
}

/// The `field` of each error of a 422 problem, in order.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

/// A place command of one line, as a point of sale would publish it.
pub fn place_command(order_id: Uuid, user_id: Uuid, product: Uuid, quantity: i32) -> PlaceOrder {
    PlaceOrder {
        order_id,
        user_id,
        shipping_address: None,
        items: Lines::merging(&[LineRequest {
            product_id: product,
            quantity,
        }])
        .expect("a valid line"),
    }
}

/// A command from `system:test` to move the order to `to`, with nothing else.
pub fn transition_command(order_id: Uuid, to: OrderStatus) -> TransitionOrder {
    TransitionOrder::new(order_id, to, Actor::new("system:test").expect("valid"))
}

impl TestApp {
    // --- orders -----------------------------------------------------------------------------

    /// Inserts an order in `status` directly (no workers involved), for state-machine tests.
    pub async fn insert_order(&self, user: &TestUser, status: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO orders (id, user_id, status, total, currency, rejection_reason)
             VALUES ($1, $2, $3::text::order_status, 0, 'USD',
                     CASE WHEN $3::text = 'REJECTED' THEN 'test' END)",
        )
        .bind(id)
        .bind(user.id)
        .bind(status)
        .execute(&self.state.db)
        .await
        .expect("insert order");
        id
    }

    /// POSTs the order `body` as `user`, with extra headers.
    pub async fn place(
        &self,
        user: &TestUser,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.post_as(user, "/api/v1/orders", body, headers).await
    }

    /// Places the order `body` as `user` and waits until it is settled; returns it.
    pub async fn place_body_settled(&self, user: &TestUser, body: &Value) -> Value {
        let res = self.place(user, body, &[("prefer", "wait=10")]).await;
        assert!(
            res.status() == 201 || res.status() == 202,
            "placing: {}",
            res.status()
        );
        let order: Value = res.json().await.expect("order");
        self.order_when(user, &id_of(&order), |o| o["status"] != "PENDING")
            .await
    }

    /// Places a one-line order and waits until it is settled; returns it.
    pub async fn place_settled(&self, user: &TestUser, product: Uuid, quantity: i32) -> Value {
        self.place_body_settled(user, &order_of(&[(product, quantity)]))
            .await
    }

    /// Polls an order until `done` accepts it (deadline 20 s).
    pub async fn order_when(
        &self,
        user: &TestUser,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        common::testing::eventually(
            std::time::Duration::from_secs(20),
            "order state",
            || async {
                let res = self.get_as(user, &format!("/api/v1/orders/{id}")).await;
                if res.status() != 200 {
                    return None;
                }
                let order: Value = res.json().await.ok()?;
                done(&order).then_some(order)
            },
        )
        .await
    }

    /// GETs `path` as `user`, which must answer 200; returns the JSON.
    pub async fn read(&self, user: &TestUser, path: &str) -> Value {
        let res = self.get_as(user, path).await;
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.expect("JSON")
    }

    /// The order `id` as `user` reads it.
    pub async fn order(&self, user: &TestUser, id: &str) -> Value {
        self.read(user, &format!("/api/v1/orders/{id}")).await
    }

    /// Every item of the list at `path` (which has a query), page by page.
    pub async fn every_page(&self, user: &TestUser, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}&cursor={c}"),
                None => path.to_owned(),
            };
            let page = self.read(user, &page_path).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// PATCHes the status of order `id` with `body` (status, reason, shipment) as `user`.
    pub async fn patch_status(
        &self,
        user: &TestUser,
        id: impl Display,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.patch_as(user, &format!("/api/v1/orders/{id}/status"), body, headers)
            .await
    }

    /// Moves order `id` to each of `statuses` in turn, waiting for each to apply (200); returns
    /// the order after the last.
    pub async fn move_order(&self, admin: &TestUser, id: impl Display, statuses: &[&str]) -> Value {
        let mut order = Value::Null;
        for status in statuses {
            order = self
                .change_status(admin, &id, json!({"status": status}))
                .await;
        }
        order
    }

    /// Applies the status change `body` to order `id`, waiting for it (200); returns the order.
    pub async fn change_status(&self, admin: &TestUser, id: impl Display, body: Value) -> Value {
        let res = self
            .patch_status(admin, id, &body, &[("prefer", "wait=10")])
            .await;
        assert_eq!(res.status(), 200, "{body}");
        res.json().await.expect("order")
    }

    /// POSTs a cancel of order `id` as `user`, with extra headers.
    pub async fn cancel(
        &self,
        user: &TestUser,
        id: impl Display,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.post_empty_as(user, &format!("/api/v1/orders/{id}/cancel"), headers)
            .await
    }

    /// Cancels order `id` as `user` and waits for it (200); returns the order.
    pub async fn cancel_settled(&self, user: &TestUser, id: impl Display) -> Value {
        let res = self.cancel(user, id, &[("prefer", "wait=10")]).await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("order")
    }

    // --- reading the state back -------------------------------------------------------------

    /// How many times orders reached `status`.
    pub async fn transitions_to(&self, status: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM order_events WHERE to_status::text = $1")
            .bind(status)
            .fetch_one(&self.state.db)
            .await
            .expect("count")
    }

    /// The status of order `id` as stored, if it is recorded.
    pub async fn stored_status(&self, id: impl Display) -> Option<String> {
        sqlx::query_scalar("SELECT status::text FROM orders WHERE id = $1::uuid")
            .bind(id.to_string())
            .fetch_optional(&self.state.db)
            .await
            .expect("status")
    }

    /// The states of the reservations of order `id`, by product.
    pub async fn reservation_states(&self, id: impl Display) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT state::text FROM reservations WHERE order_id = $1::uuid ORDER BY product_id",
        )
        .bind(id.to_string())
        .fetch_all(&self.state.db)
        .await
        .expect("reservations")
    }
}
