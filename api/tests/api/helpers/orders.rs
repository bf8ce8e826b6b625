//! Orders in tests ([`Orders`]): written directly or placed through the api, moved, cancelled
//! and read back; and the bodies and commands that describe them.

use super::{TestApp, TestUser, id_of};
use common::domain::{Actor, Lines, OrderStatus};
use common::messages::{LineRequest, PlaceOrder, TransitionOrder};
use serde_json::{Value, json};
use std::fmt::Display;
use uuid::Uuid;

/// The body of an order of `lines`, each a product and its quantity.
pub fn order_of(lines: &[(Uuid, i32)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    json!({ "items": items })
}

/// The newest entry of an order's timeline.
pub fn last_step(order: &Value) -> &Value {
    order["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .expect("a timeline entry")
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

/// Orders: inserted directly in any status, placed, moved and cancelled through the api and
/// waited for, and their events, reservations and idempotency keys as stored.
#[derive(Clone, Copy)]
pub struct Orders<'a> {
    pub(super) app: &'a TestApp,
}

impl Orders<'_> {
    /// Inserts an order in `status` directly (no workers involved), for state-machine tests.
    pub async fn insert(self, user: &TestUser, status: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO orders (id, user_id, status, total, currency, rejection_reason)
             VALUES ($1, $2, $3::text::order_status, 0, 'USD',
                     CASE WHEN $3::text = 'REJECTED' THEN 'test' END)",
        )
        .bind(id)
        .bind(user.id)
        .bind(status)
        .execute(&self.app.state.db)
        .await
        .expect("insert order");
        id
    }

    /// POSTs the order `body` as `user`, with extra headers.
    pub async fn place(
        self,
        user: &TestUser,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.app
            .post_as(user, "/api/v1/orders", body, headers)
            .await
    }

    /// Places the order `body` as `user` and waits until it is settled; returns it.
    pub async fn place_body_settled(self, user: &TestUser, body: &Value) -> Value {
        let res = self.place(user, body, &[("prefer", "wait=10")]).await;
        assert!(
            res.status() == 201 || res.status() == 202,
            "placing: {}",
            res.status()
        );
        let order: Value = res.json().await.expect("order");
        self.when(user, &id_of(&order), |o| o["status"] != "PENDING")
            .await
    }

    /// Places a one-line order and waits until it is settled; returns it.
    pub async fn place_settled(self, user: &TestUser, product: Uuid, quantity: i32) -> Value {
        self.place_body_settled(user, &order_of(&[(product, quantity)]))
            .await
    }

    /// Polls an order until `done` accepts it (deadline 20 s).
    pub async fn when(self, user: &TestUser, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        common::testing::eventually(
            std::time::Duration::from_secs(20),
            "order state",
            || async {
                let res = self.app.get_as(user, &format!("/api/v1/orders/{id}")).await;
                if res.status() != 200 {
                    return None;
                }
                let order: Value = res.json().await.ok()?;
                done(&order).then_some(order)
            },
        )
        .await
    }

    /// The order `id` as `user` reads it.
    pub async fn read(self, user: &TestUser, id: &str) -> Value {
        self.app.read(user, &format!("/api/v1/orders/{id}")).await
    }

    /// PATCHes the status of order `id` with `body` (status, reason, shipment) as `user`.
    pub async fn patch_status(
        self,
        user: &TestUser,
        id: impl Display,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.app
            .patch_as(user, &format!("/api/v1/orders/{id}/status"), body, headers)
            .await
    }

    /// Moves order `id` through each of `statuses` in turn, waiting for each to apply (200);
    /// returns the order after the last.
    pub async fn move_through(
        self,
        admin: &TestUser,
        id: impl Display,
        statuses: &[&str],
    ) -> Value {
        let mut order = Value::Null;
        for status in statuses {
            order = self
                .change_status(admin, &id, json!({"status": status}))
                .await;
        }
        order
    }

    /// Applies the status change `body` to order `id`, waiting for it (200); returns the order.
    pub async fn change_status(self, admin: &TestUser, id: impl Display, body: Value) -> Value {
        let res = self
            .patch_status(admin, id, &body, &[("prefer", "wait=10")])
            .await;
        assert_eq!(res.status(), 200, "{body}");
        res.json().await.expect("order")
    }

    /// POSTs a cancel of order `id` as `user`, with extra headers.
    pub async fn cancel(
        self,
        user: &TestUser,
        id: impl Display,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.app
            .post_empty_as(user, &format!("/api/v1/orders/{id}/cancel"), headers)
            .await
    }

    /// Cancels order `id` as `user` and waits for it (200); returns the order.
    pub async fn cancel_settled(self, user: &TestUser, id: impl Display) -> Value {
        let res = self.cancel(user, id, &[("prefer", "wait=10")]).await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("order")
    }

    /// An idempotency key of `user` created `age` ago.
    pub async fn idempotency_key_aged(self, user: Uuid, age: &str) -> String {
        let key = Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, items, state, created_at)
             VALUES ($1, $2, '\\x00', $3, '[]', 'published', now() - $4::interval)",
        )
        .bind(user)
        .bind(&key)
        .bind(Uuid::new_v4())
        .bind(age)
        .execute(&self.app.state.db)
        .await
        .unwrap();
        key
    }

    // --- reading the state back -------------------------------------------------------------

    /// How many times orders reached `status`.
    pub async fn transitions_to(self, status: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM order_events WHERE to_status::text = $1")
            .bind(status)
            .fetch_one(&self.app.state.db)
            .await
            .expect("count")
    }

    /// The status of order `id` as stored, if it is recorded.
    pub async fn stored_status(self, id: impl Display) -> Option<String> {
        sqlx::query_scalar("SELECT status::text FROM orders WHERE id = $1::uuid")
            .bind(id.to_string())
            .fetch_optional(&self.app.state.db)
            .await
            .expect("status")
    }

    /// The states of the reservations of order `id`, by product.
    pub async fn reservation_states(self, id: impl Display) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT state::text FROM reservations WHERE order_id = $1::uuid ORDER BY product_id",
        )
        .bind(id.to_string())
        .fetch_all(&self.app.state.db)
        .await
        .expect("reservations")
    }
}
