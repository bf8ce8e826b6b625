//! The products domain's rules: what each operation does, in which transaction.

use super::model::{
    Adjustment, CatalogueQuery, LedgerQuery, NewProduct, Product, ProductChanges, ProductCursor,
    SortKey, StockAdjustment,
};
use super::repo::{self, Archived};
use crate::error::ApiError;
use crate::pagination::{self, Page};
use common::money::Currency;
use sqlx::PgPool;
use uuid::Uuid;

/// The reason recorded in the ledger when `PATCH /products/{id}` sets the stock.
pub const SET_STOCK_REASON: &str = "stock set by product update";

pub async fn create(
    db: &PgPool,
    product: NewProduct,
    currency: &Currency,
) -> Result<Product, ApiError> {
    // Time-ordered ids keep the primary key index compact, and ties on a sort key then fall
    // roughly in creation order.
    repo::insert(db, Uuid::now_v7(), &product, currency).await
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Product, ApiError> {
    repo::find(db, id)
        .await?
        .ok_or(ApiError::NotFound("product"))
}

pub async fn list(db: &PgPool, query: CatalogueQuery) -> Result<Page<Product>, ApiError> {
    let rows = repo::list(db, &query).await?;
    let sort = query.sort;
    Ok(pagination::page(rows, query.limit, |p| ProductCursor {
        sort,
        key: SortKey::of(sort, p),
        id: p.id,
    }))
}

/// Applies a change. Setting `stock` is turned into a recorded adjustment of the difference,
/// under the row lock, so a reservation committed meanwhile is never overwritten and
/// `initial_stock + Σ adjustments = stock + Σ reserved` still holds.
pub async fn update(
    db: &PgPool,
    id: Uuid,
    changes: ProductChanges,
    actor_id: Uuid,
) -> Result<Product, ApiError> {
    let mut tx = db.begin().await?;
    let current = repo::lock_stock(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let product = repo::update(&mut tx, id, &changes)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    if let Some(target) = changes.stock {
        let delta = target - current;
        if delta != 0 {
            let adjustment = Adjustment {
                delta,
                reason: SET_STOCK_REASON.to_owned(),
            };
            repo::record_adjustment(&mut tx, id, &adjustment, actor_id, target).await?;
        }
    }
    tx.commit().await?;
    Ok(product)
}

/// Archives a product; idempotent: archiving it again changes nothing and succeeds.
pub async fn archive(db: &PgPool, id: Uuid) -> Result<(), ApiError> {
    match repo::archive(db, id).await? {
        Archived::Now | Archived::Already => Ok(()),
        Archived::Unknown => Err(ApiError::NotFound("product")),
    }
}

/// Changes available stock by a signed delta and records it, atomically: the guarded UPDATE
/// and the ledger insert commit together or not at all. Safe against concurrent reservations
/// and adjustments because the guard is evaluated on the row's latest version under its lock.
pub async fn adjust_stock(
    db: &PgPool,
    id: Uuid,
    adjustment: Adjustment,
    actor_id: Uuid,
) -> Result<StockAdjustment, ApiError> {
    let mut tx = db.begin().await?;
    let Some(stock_after) = repo::add_stock(&mut tx, id, adjustment.delta).await? else {
        // Refused: say why, from the row as it is now.
        let available = repo::stock(&mut tx, id)
            .await?
            .ok_or(ApiError::NotFound("product"))?;
        let detail = if i64::from(available) + i64::from(adjustment.delta) < 0 {
            format!(
                "only {available} in stock: cannot remove {}",
                -i64::from(adjustment.delta)
            )
        } else {
            format!(
                "{available} in stock: adding {} exceeds the maximum",
                adjustment.delta
            )
        };
        let mut extensions = serde_json::Map::new();
        extensions.insert("available".into(), available.into());
        return Err(ApiError::Conflict { detail, extensions });
    };
    let entry = repo::record_adjustment(&mut tx, id, &adjustment, actor_id, stock_after).await?;
    tx.commit().await?;
    Ok(entry)
}

/// A page of a product's ledger, oldest first; archived products keep theirs.
pub async fn ledger(
    db: &PgPool,
    product_id: Uuid,
    query: LedgerQuery,
) -> Result<Page<StockAdjustment>, ApiError> {
    if !repo::exists(db, product_id).await? {
        return Err(ApiError::NotFound("product"));
    }
    let rows = repo::list_adjustments(db, product_id, &query).await?;
    Ok(query.page(rows, |a| (a.created_at, a.id)))
}
