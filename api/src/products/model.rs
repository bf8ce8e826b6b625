//! The products domain's types: what the api returns, what it accepts, and the validated values
//! the service works with.

use chrono::{DateTime, Utc};
use common::money::{Currency, Money};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A catalogue entry.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[schema(example = json!({
    "id": "0193a5b0-7c1e-7d3a-9f00-3c2b1a0e4d5f",
    "name": "Espresso cup",
    "description": "Porcelain, 80 ml",
    "price": 1250,
    "currency": "USD",
    "stock": 40,
    "created_at": "2026-11-25T09:30:00Z",
    "updated_at": "2026-11-25T09:30:00Z"
}))]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// Price in minor units of `currency` (cents for USD).
    #[schema(value_type = i64)]
    pub price: Money,
    /// ISO 4217 code, the store's `STORE_CURRENCY` when the product was created.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Available stock: what orders can still reserve.
    pub stock: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /products`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Espresso cup",
    "description": "Porcelain, 80 ml",
    "price": 1250,
    "stock": 40
}))]
pub struct CreateProduct {
    /// 1 to 200 characters, surrounding whitespace trimmed.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Up to 5000 characters; empty when absent.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// Minor units, 0 or more.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub price: i64,
    /// Initial available stock, 0 or more; 0 when absent.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
}

/// Body of `PATCH /products/{id}`: any subset of the fields, at least one.
///
/// Setting `stock` is recorded in the stock adjustments ledger as the difference from the
/// current stock, with the reason "stock set by product update", so stock conservation holds.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price": 1100, "stock": 35}))]
pub struct UpdateProduct {
    #[serde(default, deserialize_with = "present")]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub price: Option<i64>,
    /// The new available stock; the difference is recorded in the ledger.
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
}

/// An optional field that, when given, must hold a value: `null` is refused rather than read
/// as "leave unchanged", since no product field can be cleared.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Body of `POST /products/{id}/stock-adjustments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta": -3, "reason": "broken in the warehouse"}))]
pub struct AdjustStock {
    /// Signed change of available stock, never 0.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: i64,
    /// Why: 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// One entry of the stock adjustments ledger.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[schema(example = json!({
    "id": "0193a5b2-0d4e-7b61-8c2a-1f0e9d8c7b6a",
    "product_id": "0193a5b0-7c1e-7d3a-9f00-3c2b1a0e4d5f",
    "delta": -3,
    "reason": "broken in the warehouse",
    "actor_id": "0193a4ff-1111-7222-8333-444455556666",
    "stock_after": 37,
    "created_at": "2026-11-25T10:02:00Z"
}))]
pub struct StockAdjustment {
    pub id: Uuid,
    pub product_id: Uuid,
    pub delta: i32,
    pub reason: String,
    /// The ADMIN who made the adjustment (none for one received over the bus).
    pub actor_id: Option<Uuid>,
    /// The publisher's reference of an adjustment received over the bus
    /// (`inventory.cmd.adjust`).
    pub reference: Option<String>,
    /// Available stock right after the adjustment.
    pub stock_after: i32,
    pub created_at: DateTime<Utc>,
}

/// Sort orders of the catalogue; `-` means descending. Ties are broken by id, in the same
/// direction, so paging never skips or repeats a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub enum Sort {
    #[serde(rename = "name")]
    NameAsc,
    #[serde(rename = "-name")]
    NameDesc,
    #[serde(rename = "price")]
    PriceAsc,
    #[serde(rename = "-price")]
    PriceDesc,
    #[default]
    #[serde(rename = "created_at")]
    CreatedAtAsc,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
}

/// Query parameters of `GET /products`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListProducts {
    /// Case-insensitive text searched in name and description (up to 200 characters).
    #[param(example = "cup")]
    pub q: Option<String>,
    /// Lowest price, in minor units, inclusive.
    #[param(example = 500, minimum = 0)]
    pub min_price: Option<i64>,
    /// Highest price, in minor units, inclusive.
    #[param(example = 5000, minimum = 0)]
    pub max_price: Option<i64>,
    /// `true`: only products with available stock; `false`: only those without.
    pub in_stock: Option<bool>,
    /// `name`, `-name`, `price`, `-price`, `created_at` (the default) or `-created_at`.
    #[param(inline)]
    pub sort: Option<Sort>,
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Query parameters of `GET /products/{id}/stock-adjustments`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAdjustments {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A product name: trimmed, 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(pub(super) String);

impl ProductName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated new product.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: ProductName,
    pub description: String,
    pub price: Money,
    pub stock: i32,
}

/// A validated, non-empty change to a product.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<ProductName>,
    pub description: Option<String>,
    pub price: Option<Money>,
    pub stock: Option<i32>,
}

/// A validated stock adjustment.
#[derive(Debug, Clone)]
pub struct Adjustment {
    pub delta: i32,
    pub reason: String,
}

/// Validated catalogue filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    /// An ILIKE pattern (`%text%`, with `%`, `_` and `\` escaped).
    pub pattern: Option<String>,
    pub min_price: Option<Money>,
    pub max_price: Option<Money>,
    pub in_stock: Option<bool>,
}

/// Where a page of the catalogue starts: the sort key and id of the last product seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductCursor {
    pub sort: Sort,
    pub key: SortKey,
    pub id: Uuid,
}

/// The value of the sort column; tagged, so a name that looks like a date stays a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Price(i64),
    CreatedAt(DateTime<Utc>),
    Name(String),
}

impl SortKey {
    pub fn of(sort: Sort, p: &Product) -> SortKey {
        match sort {
            Sort::NameAsc | Sort::NameDesc => SortKey::Name(p.name.clone()),
            Sort::PriceAsc | Sort::PriceDesc => SortKey::Price(p.price.minor_units()),
            Sort::CreatedAtAsc | Sort::CreatedAtDesc => SortKey::CreatedAt(p.created_at),
        }
    }

    /// Bytes it holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        match self {
            SortKey::Name(name) => name.len(),
            SortKey::Price(_) | SortKey::CreatedAt(_) => 0,
        }
    }
}

/// A validated request for one page of the catalogue; equal requests ask for the same page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CatalogueQuery {
    pub filters: Filters,
    pub sort: Sort,
    pub limit: u32,
    pub after: Option<ProductCursor>,
}

/// A validated request for one page of a product's ledger.
pub type LedgerQuery = crate::pagination::Keyset<(DateTime<Utc>, Uuid)>;
