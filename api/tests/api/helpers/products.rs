//! One product of the catalogue through the api: an ADMIN with a product to work on, and
//! reading, updating, archiving it and its stock ledger.

use super::{TestApp, TestUser, spawn_app_with};
use common::domain::Role;
use serde_json::{Value, json};

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
    let product = app.create_product_via_api(&admin, cup()).await;
    let id = product["id"].as_str().expect("id").to_owned();
    Catalogue { app, admin, id }
}

impl Catalogue {
    /// The cup as anyone reads it.
    pub async fn cup(&self) -> Value {
        self.app.product(&self.id).await
    }

    /// The ADMIN's partial update of the cup.
    pub async fn update(&self, change: Value) -> reqwest::Response {
        self.app.update_product(&self.admin, &self.id, change).await
    }

    /// The ADMIN's archiving of the cup.
    pub async fn archive(&self) -> reqwest::Response {
        self.app.archive_product(&self.admin, &self.id).await
    }

    /// The ADMIN's stock adjustment of the cup by `delta`.
    pub async fn adjust(&self, delta: i64, reason: &str) -> reqwest::Response {
        self.app.adjust(&self.admin, &self.id, delta, reason).await
    }

    /// The cup's stock, initial stock and sum of its ledger.
    pub async fn stock_and_ledger(&self) -> (i32, i32, i64) {
        self.app.stock_and_ledger(&self.id).await
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

impl TestApp {
    /// Product `id` as anyone reads it; the read must succeed.
    pub async fn product(&self, id: &str) -> Value {
        let res = self.get(&product_path(id)).await;
        assert_eq!(res.status(), 200, "reading product {id}");
        res.json().await.expect("product")
    }

    /// `user`'s partial update of product `id`.
    pub async fn update_product(
        &self,
        user: &TestUser,
        id: &str,
        change: Value,
    ) -> reqwest::Response {
        self.patch_as(user, &product_path(id), &change, &[]).await
    }

    /// `user`'s archiving of product `id`.
    pub async fn archive_product(&self, user: &TestUser, id: &str) -> reqwest::Response {
        self.delete_as(user, &product_path(id)).await
    }

    /// One page of the stock ledger of product `id` as `user` reads it; the read must succeed.
    pub async fn ledger_page(&self, user: &TestUser, id: &str, query: &str) -> Value {
        let res = self
            .get_as(user, &format!("{}?{query}", ledger_path(id)))
            .await;
        assert_eq!(res.status(), 200, "reading the ledger of {id}");
        res.json().await.expect("ledger page")
    }
}
