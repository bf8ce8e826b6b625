//! After the sale in tests: a paid order of two lines ([`SoldShop`]), and the requests that ship,
//! deliver, cancel what is left, and return its goods.

use super::{PaymentSystem, Shop, TestUser, id_of, order_of};
use serde_json::{Value, json};
use uuid::Uuid;

/// A [`Shop`] with the payment system connected and a paid order of the customer's: three mugs
/// (1250 each, 10 in stock) and two plates (800 each, 5 in stock), 5350 in all.
pub struct SoldShop {
    pub shop: Shop,
    pub psp: PaymentSystem,
    pub order: String,
    pub mug: Uuid,
    pub plate: Uuid,
}

impl std::ops::Deref for SoldShop {
    type Target = Shop;

    fn deref(&self) -> &Shop {
        &self.shop
    }
}

/// The total of the sold order.
pub const SOLD_TOTAL: i64 = 3 * 1250 + 2 * 800;

impl SoldShop {
    pub async fn open() -> SoldShop {
        let shop = Shop::open().await;
        let psp = PaymentSystem::connect(&shop).await;
        let mug = shop.products().create("Mug", 1250, 10).await;
        let plate = shop.products().create("Plate", 800, 5).await;
        let placed = shop
            .orders()
            .place_body_settled(&shop.customer, &order_of(&[(mug, 3), (plate, 2)]))
            .await;
        assert_eq!(placed["status"], "CONFIRMED", "{placed}");
        let order = id_of(&placed);
        psp.pay(&order, SOLD_TOTAL, &format!("psp-{order}")).await;
        shop.order_in(&order, "PAID").await;
        SoldShop {
            shop,
            psp,
            order,
            mug,
            plate,
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/v1/orders/{}{rest}", self.order)
    }

    /// `user` POSTs `body` to the order's `rest` path, waiting for the outcome.
    pub async fn step(&self, user: &TestUser, rest: &str, body: Value) -> reqwest::Response {
        self.post_as(user, &self.path(rest), &body, &[("prefer", "wait=10")])
            .await
    }

    /// The ADMIN ships `lines` (product, quantity) with UPS tracking.
    pub async fn ship(&self, lines: &[(Uuid, i32)]) -> reqwest::Response {
        let body = json!({"lines": lines_of(lines), "carrier": "UPS", "tracking_number": "1Z-1"});
        self.step(&self.admin, "/fulfilments", body).await
    }

    /// Ships `lines` (201); returns the order and the new fulfilment's id.
    pub async fn shipped(&self, lines: &[(Uuid, i32)]) -> (Value, String) {
        let res = self.ship(lines).await;
        assert_eq!(res.status(), 201);
        let order: Value = res.json().await.expect("order");
        let last = order["fulfilments"].as_array().expect("fulfilments").len() - 1;
        let id = id_of(&order["fulfilments"][last]);
        (order, id)
    }

    /// The ADMIN marks fulfilment `id` delivered.
    pub async fn deliver(&self, id: &str) -> reqwest::Response {
        self.post_empty_as(
            &self.admin,
            &self.path(&format!("/fulfilments/{id}/delivered")),
            &[("prefer", "wait=10")],
        )
        .await
    }

    /// Ships everything and delivers it; returns the order, DELIVERED.
    pub async fn delivered(&self) -> Value {
        let (_, id) = self.shipped(&[(self.mug, 3), (self.plate, 2)]).await;
        let res = self.deliver(&id).await;
        assert_eq!(res.status(), 200);
        let order: Value = res.json().await.expect("order");
        assert_eq!(order["status"], "DELIVERED", "{order}");
        order
    }

    /// `user` asks to return `lines`.
    pub async fn ask_return(&self, user: &TestUser, lines: &[(Uuid, i32)]) -> reqwest::Response {
        let body = json!({"lines": lines_of(lines), "reason": "chipped"});
        self.step(user, "/returns", body).await
    }

    /// `user` asks to return `lines` (201); returns the return's id.
    pub async fn returning(&self, user: &TestUser, lines: &[(Uuid, i32)]) -> String {
        let res = self.ask_return(user, lines).await;
        assert_eq!(res.status(), 201);
        let order: Value = res.json().await.expect("order");
        let last = order["returns"].as_array().expect("returns").len() - 1;
        assert_eq!(order["returns"][last]["status"], "REQUESTED");
        id_of(&order["returns"][last])
    }

    /// The ADMIN receives return `id`, restocking `restock`.
    pub async fn receive(&self, id: &str, restock: &[Uuid]) -> reqwest::Response {
        let lines: Vec<Value> = restock
            .iter()
            .map(|p| json!({"product_id": p, "restock": true}))
            .collect();
        self.step(
            &self.admin,
            &format!("/returns/{id}/receive"),
            json!({"lines": lines}),
        )
        .await
    }

    /// The ADMIN cancels what is left to ship.
    pub async fn cancel_rest(&self) -> reqwest::Response {
        self.step(
            &self.admin,
            "/cancel-remaining",
            json!({"reason": "out of plates"}),
        )
        .await
    }

    /// The line of `product` in `order`.
    pub fn line(order: &Value, product: Uuid) -> &Value {
        order["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["product_id"] == product.to_string())
            .expect("a line of the product")
    }
}

/// `lines` as request lines.
pub fn lines_of(lines: &[(Uuid, i32)]) -> Vec<Value> {
    lines
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect()
}
