//! The catalogue in tests ([`Products`]): products and their stock written directly, through
//! the api or over the bus, and read back; and [`Catalogue`], an ADMIN with a product to work on.

use super::{TestApp, TestUser, spawn_app_with};
use common::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

/// The product most catalogue tests work on: 40 espresso cups at 12.50.
pub fn cup() -> Value {
    json!({"name": "Espresso cup", "description": "Porcelain, 80 ml", "price": 1250, "stock": 40})
}

/// An app with an ADMIN who created the [`cup`] through the api.
pub struct Catalogue {
    pub app: TestApp,
    pub admin: TestUser,
    /// The cup's id.
    pub id: String,
}

/// A new app with an ADMIN and the [`cup`].
pub async fn catalogue() -> Catalogue {
    catalogue_with(&[]).await
}

/// A new app configured with `overrides`, with an ADMIN and the [`cup`].
pub async fn catalogue_with(overrides: &[(&str, &str)]) -> Catalogue {
    let app = spawn_app_with(overrides).await;
    let admin = app.create_user(Role::Admin).await;
    let product = app.products().create_via_api(&admin, cup()).await;
    let id = product["id"].as_str().expect("id").to_owned();
    Catalogue { app, admin, id }
}

impl Catalogue {
    /// The cup as anyone reads it.
    pub async fn cup(&self) -> Value {
        self.app.products().read(&self.id).await
    }

    /// The ADMIN's partial update of the cup.
    pub async fn update(&self, change: Value) -> reqwest::Response {
        self.app
            .products()
            .update(&self.admin, &self.id, change)
            .await
    }

    /// The ADMIN's archiving of the cup.
    pub async fn archive(&self) -> reqwest::Response {
        self.app.products().archive(&self.admin, &self.id).await
    }

    /// The ADMIN's stock adjustment of the cup by `delta`.
    pub async fn adjust(&self, delta: i64, reason: &str) -> reqwest::Response {
        self.app
            .products()
            .adjust(&self.admin, &self.id, delta, reason)
            .await
    }

    /// The cup's stock, initial stock and sum of its ledger.
    pub async fn stock_and_ledger(&self) -> (i32, i32, i64) {
        self.app.products().stock_and_ledger(&self.id).await
    }
}

/// The path of product `id`.
pub fn product_path(id: &str) -> String {
    format!("/api/v1/products/{id}")
}

/// The path of the stock ledger of product `id`.
pub fn ledger_path(id: &str) -> String {
    format!("/api/v1/products/{id}/stock-adjustments")
}

/// The catalogue and its stock: products added directly or through the api, read, changed,
/// archived, adjusted and listed through it, a warehouse's adjustments over the bus, and the
/// stock, its ledger and the reservations as stored.
#[derive(Clone, Copy)]
pub struct Products<'a> {
    pub(super) app: &'a TestApp,
}

impl Products<'_> {
    /// Adds a product to the catalogue directly (as another system would, unseen by the api's
    /// catalogue cache) and returns its id.
    pub async fn create(self, name: &str, price: i64, stock: i32) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO products (id, name, description, price, currency, stock, initial_stock)
             VALUES ($1, $2, '', $3, 'USD', $4, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(price)
        .bind(stock)
        .execute(&self.app.state.db)
        .await
        .expect("insert product");
        id
    }

    /// The stock of `product` as the public catalogue shows it (its detail).
    pub async fn shown_stock(self, product: Uuid) -> i64 {
        let detail: Value = self
            .app
            .get(&format!("/api/v1/products/{product}"))
            .await
            .json()
            .await
            .expect("product");
        detail["stock"].as_i64().expect("stock")
    }

    /// Publishes a stock adjustment as a warehouse system would: hand-written JSON in the
    /// documented envelope on `inventory.cmd.adjust`, with the message id `msg_id`.
    pub async fn warehouse_adjusts(
        self,
        product: Uuid,
        delta: i32,
        (reason, reference): (&str, &str),
        msg_id: &str,
    ) {
        let client = async_nats::connect(common::testing::nats_url())
            .await
            .expect("plain NATS client");
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
            self.app
                .state
                .bus
                .namespace()
                .subject("inventory.cmd.adjust"),
            headers,
            envelope.to_string().into(),
        )
        .await
        .expect("published")
        .await
        .expect("stored");
    }

    /// Creates a product through the api and returns it.
    pub async fn create_via_api(self, admin: &TestUser, body: Value) -> Value {
        let res = self
            .app
            .post_as(admin, "/api/v1/products", &body, &[])
            .await;
        assert_eq!(res.status(), 201, "create {body}");
        res.json().await.unwrap()
    }

    /// Asks the api for a stock adjustment of `delta` on product `id`.
    pub async fn adjust(
        self,
        admin: &TestUser,
        id: &str,
        delta: i64,
        reason: &str,
    ) -> reqwest::Response {
        self.app
            .post_as(
                admin,
                &format!("/api/v1/products/{id}/stock-adjustments"),
                &json!({"delta": delta, "reason": reason}),
                &[],
            )
            .await
    }

    /// Follows `next_cursor` from the first page to the last, returning every item.
    pub async fn list_all(self, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut url = format!("/api/v1/products?{query}");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let res = self.app.get(&url).await;
            assert_eq!(res.status(), 200, "{url}");
            let page: Value = res.json().await.unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
        panic!("paging never ended");
    }

    /// Product `id` as anyone reads it; the read must succeed.
    pub async fn read(self, id: &str) -> Value {
        let res = self.app.get(&product_path(id)).await;
        assert_eq!(res.status(), 200, "reading product {id}");
        res.json().await.expect("product")
    }

    /// `user`'s partial update of product `id`.
    pub async fn update(self, user: &TestUser, id: &str, change: Value) -> reqwest::Response {
        self.app
            .patch_as(user, &product_path(id), &change, &[])
            .await
    }

    /// `user`'s archiving of product `id`.
    pub async fn archive(self, user: &TestUser, id: &str) -> reqwest::Response {
        self.app.delete_as(user, &product_path(id)).await
    }

    /// One page of the stock ledger of product `id` as `user` reads it; the read must succeed.
    pub async fn ledger_page(self, user: &TestUser, id: &str, query: &str) -> Value {
        let res = self
            .app
            .get_as(user, &format!("{}?{query}", ledger_path(id)))
            .await;
        assert_eq!(res.status(), 200, "reading the ledger of {id}");
        res.json().await.expect("ledger page")
    }

    /// The stock of `product` as stored.
    pub async fn stock_of(self, product: Uuid) -> i32 {
        sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
            .bind(product)
            .fetch_one(&self.app.state.db)
            .await
            .expect("stock")
    }

    /// The stock, the initial stock and the sum of the ledger's deltas of product `id`.
    pub async fn stock_and_ledger(self, id: &str) -> (i32, i32, i64) {
        sqlx::query_as(
            "SELECT stock, initial_stock,
                    (SELECT COALESCE(SUM(delta), 0) FROM stock_adjustments WHERE product_id = p.id)
             FROM products p WHERE id = $1",
        )
        .bind(Uuid::parse_str(id).expect("a product id"))
        .fetch_one(&self.app.state.db)
        .await
        .expect("stock and ledger")
    }

    /// How many units of `product` reservations hold, whatever their state.
    pub async fn reserved_of(self, product: Uuid) -> i64 {
        sqlx::query_scalar(
            "SELECT COALESCE(sum(quantity), 0) FROM reservations WHERE product_id = $1",
        )
        .bind(product)
        .fetch_one(&self.app.state.db)
        .await
        .expect("reserved")
    }
}
