//! The shop in tests: [`Shop`], a running system with a customer and an ADMIN, and the ids and
//! error fields read from its answers.

use super::{TestApp, TestUser, spawn_system};
use common::domain::Role;
use serde_json::Value;
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
        self.orders()
            .when(&self.customer, id, |o| o["status"] == status)
            .await
    }

    /// The customer orders `quantity` of `product`; the order must be CONFIRMED. Returns its id.
    pub async fn confirmed_order(&self, product: Uuid, quantity: i32) -> String {
        let order = self
            .orders()
            .place_settled(&self.customer, product, quantity)
            .await;
        assert_eq!(order["status"], "CONFIRMED", "{order}");
        id_of(&order)
    }
}

/// The `id` of an order (or of any resource) as its JSON gives it.
pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("an id").to_owned()
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
