//! Data access for products and the stock adjustments ledger. SQL lives here and nowhere else
//! in the domain; constraint violations become domain errors in [`on_constraint`].

use super::model::{
    Adjustment, CatalogueQuery, LedgerQuery, NewProduct, Product, ProductChanges, Sort, SortKey,
    StockAdjustment,
};
use super::quotes::Quote;
use crate::error::{ApiError, FieldError};
use common::money::{Currency, Money};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

const PRODUCT_COLUMNS: &str =
    "id, name, description, price, currency, stock, created_at, updated_at";

/// Maps a violated constraint to the rule it enforces. The api validates first, so reaching
/// one of these means a concurrent change (stock) or a validation gap, never a 500.
pub fn on_constraint(e: sqlx::Error) -> ApiError {
    let Some(db) = e.as_database_error() else {
        return e.into();
    };
    let field =
        |field: &str, message: &str| ApiError::Validation(vec![FieldError::new(field, message)]);
    match db.constraint() {
        Some("products_stock_check" | "stock_adjustments_stock_after_check") => {
            ApiError::conflict("available stock cannot go below zero")
        }
        Some("products_price_check") => field("price", "must not be negative"),
        Some("products_name_check") => field("name", "must be 1 to 200 characters, trimmed"),
        Some("products_description_check") => {
            field("description", "must be at most 5000 characters")
        }
        Some("stock_adjustments_reason_check") => {
            field("reason", "must be 1 to 500 characters, trimmed")
        }
        Some("stock_adjustments_delta_check") => field("delta", "must not be 0"),
        _ => e.into(),
    }
}

pub async fn insert(
    db: &PgPool,
    id: Uuid,
    product: &NewProduct,
    currency: &Currency,
) -> Result<Product, ApiError> {
    sqlx::query_as!(
        Product,
        r#"INSERT INTO products (id, name, description, price, currency, stock, initial_stock)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           RETURNING id, name, description, price AS "price: Money",
                     currency AS "currency: Currency", stock, created_at, updated_at"#,
        id,
        product.name.as_str(),
        &product.description,
        i64::from(product.price),
        currency.as_str(),
        product.stock,
    )
    .fetch_one(db)
    .await
    .map_err(on_constraint)
}

/// A product of the catalogue (archived ones are not).
pub async fn find(db: &PgPool, id: Uuid) -> Result<Option<Product>, ApiError> {
    Ok(sqlx::query_as!(
        Product,
        r#"SELECT id, name, description, price AS "price: Money",
                  currency AS "currency: Currency", stock, created_at, updated_at
             FROM products WHERE id = $1 AND archived_at IS NULL"#,
        id,
    )
    .fetch_optional(db)
    .await?)
}

/// Whether a product was ever created, archived or not.
pub async fn exists(db: &PgPool, id: Uuid) -> Result<bool, ApiError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM products WHERE id = $1) AS "exists!""#,
        id,
    )
    .fetch_one(db)
    .await?)
}

/// One page (plus one row, telling whether more exist) of the catalogue.
pub async fn list(db: &PgPool, query: &CatalogueQuery) -> Result<Vec<Product>, ApiError> {
    // Only fixed fragments from this match are pushed as SQL; every value is a bind.
    let (column, order, after) = match query.sort {
        Sort::NameAsc => ("name", "ASC", ">"),
        Sort::NameDesc => ("name", "DESC", "<"),
        Sort::PriceAsc => ("price", "ASC", ">"),
        Sort::PriceDesc => ("price", "DESC", "<"),
        Sort::CreatedAtAsc => ("created_at", "ASC", ">"),
        Sort::CreatedAtDesc => ("created_at", "DESC", "<"),
    };

    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    sql.push(PRODUCT_COLUMNS)
        .push(" FROM products WHERE archived_at IS NULL");
    let f = &query.filters;
    if let Some(pattern) = &f.pattern {
        sql.push(" AND (name ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR description ILIKE ")
            .push_bind(pattern.clone())
            .push(")");
    }
    if let Some(min) = f.min_price {
        sql.push(" AND price >= ").push_bind(min);
    }
    if let Some(max) = f.max_price {
        sql.push(" AND price <= ").push_bind(max);
    }
    match f.in_stock {
        Some(true) => {
            sql.push(" AND stock > 0");
        }
        Some(false) => {
            sql.push(" AND stock = 0");
        }
        None => {}
    }
    if let Some(cursor) = &query.after {
        // A row-value comparison, which the (column, id) index serves directly.
        sql.push(format_args!(" AND ({column}, id) {after} ("));
        match &cursor.key {
            SortKey::Name(name) => sql.push_bind(name.clone()),
            SortKey::Price(price) => sql.push_bind(*price),
            SortKey::CreatedAt(at) => sql.push_bind(*at),
        };
        sql.push(", ").push_bind(cursor.id).push(")");
    }
    sql.push(format_args!(
        " ORDER BY {column} {order}, id {order} LIMIT "
    ))
    .push_bind(i64::from(query.limit) + 1);

    Ok(sql.build_query_as::<Product>().fetch_all(db).await?)
}

/// Locks a catalogue product's row for the rest of the transaction and returns its stock.
pub async fn lock_stock(tx: &mut PgConnection, id: Uuid) -> Result<Option<i32>, ApiError> {
    Ok(sqlx::query_scalar!(
        "SELECT stock FROM products WHERE id = $1 AND archived_at IS NULL FOR UPDATE",
        id,
    )
    .fetch_optional(tx)
    .await?)
}

/// Applies the given changes; `updated_at` is kept by the `products_touch` trigger.
pub async fn update(
    tx: &mut PgConnection,
    id: Uuid,
    changes: &ProductChanges,
) -> Result<Option<Product>, ApiError> {
    sqlx::query_as!(
        Product,
        r#"UPDATE products SET
               name = COALESCE($2, name),
               description = COALESCE($3, description),
               price = COALESCE($4, price),
               stock = COALESCE($5, stock)
           WHERE id = $1 AND archived_at IS NULL
           RETURNING id, name, description, price AS "price: Money",
                     currency AS "currency: Currency", stock, created_at, updated_at"#,
        id,
        changes.name.as_ref().map(|n| n.as_str()),
        changes.description.as_deref(),
        changes.price.map(i64::from),
        changes.stock,
    )
    .fetch_optional(tx)
    .await
    .map_err(on_constraint)
}

pub enum Archived {
    Now,
    Already,
    Unknown,
}

/// Archives a product; archiving an archived product changes nothing.
pub async fn archive(db: &PgPool, id: Uuid) -> Result<Archived, ApiError> {
    let row = sqlx::query_scalar!(
        r#"WITH archived AS (
             UPDATE products SET archived_at = now()
             WHERE id = $1 AND archived_at IS NULL
             RETURNING id
         )
         SELECT EXISTS (SELECT 1 FROM archived) AS "archived!" FROM products WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some(true) => Archived::Now,
        Some(false) => Archived::Already,
        None => Archived::Unknown,
    })
}

/// Adds `delta` to the available stock of a catalogue product if the result stays between 0
/// and the column's maximum, in one guarded statement, so it composes safely with concurrent
/// reservations (`stock = stock - q WHERE stock >= q`). Returns the new stock, or `None` when
/// the product is unknown, archived, or the guard refused.
pub async fn add_stock(
    tx: &mut PgConnection,
    id: Uuid,
    delta: i32,
) -> Result<Option<i32>, ApiError> {
    sqlx::query_scalar!(
        "UPDATE products SET stock = stock + $2
         WHERE id = $1 AND archived_at IS NULL
           AND stock::bigint + $2 BETWEEN 0 AND 2147483647
         RETURNING stock",
        id,
        i64::from(delta),
    )
    .fetch_optional(tx)
    .await
    .map_err(on_constraint)
}

/// The available stock of a catalogue product, without locking.
pub async fn stock(tx: &mut PgConnection, id: Uuid) -> Result<Option<i32>, ApiError> {
    Ok(sqlx::query_scalar!(
        "SELECT stock FROM products WHERE id = $1 AND archived_at IS NULL",
        id,
    )
    .fetch_optional(tx)
    .await?)
}

pub async fn record_adjustment(
    tx: &mut PgConnection,
    product_id: Uuid,
    adjustment: &Adjustment,
    actor_id: Uuid,
    stock_after: i32,
) -> Result<StockAdjustment, ApiError> {
    sqlx::query_as!(
        StockAdjustment,
        "INSERT INTO stock_adjustments (id, product_id, delta, reason, actor_id, stock_after)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, product_id, delta, reason, actor_id, reference, stock_after, created_at",
        Uuid::now_v7(),
        product_id,
        adjustment.delta,
        &adjustment.reason,
        actor_id,
        stock_after,
    )
    .fetch_one(tx)
    .await
    .map_err(on_constraint)
}

/// One page (plus one row) of a product's ledger, oldest first.
pub async fn list_adjustments(
    db: &PgPool,
    product_id: Uuid,
    query: &LedgerQuery,
) -> Result<Vec<StockAdjustment>, ApiError> {
    let fetch = query.fetch();
    let rows = match query.after {
        None => {
            sqlx::query_as!(
                StockAdjustment,
                "SELECT id, product_id, delta, reason, actor_id, reference, stock_after, created_at
                 FROM stock_adjustments WHERE product_id = $1
                 ORDER BY created_at, id LIMIT $2",
                product_id,
                fetch,
            )
            .fetch_all(db)
            .await?
        }
        Some((at, id)) => {
            sqlx::query_as!(
                StockAdjustment,
                "SELECT id, product_id, delta, reason, actor_id, reference, stock_after, created_at
                 FROM stock_adjustments WHERE product_id = $1 AND (created_at, id) > ($2, $3)
                 ORDER BY created_at, id LIMIT $4",
                product_id,
                at,
                id,
                fetch,
            )
            .fetch_all(db)
            .await?
        }
    };
    Ok(rows)
}

/// The stock of the products of `ids` that exist.
pub async fn stock_left(db: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, i32)>> {
    Ok(
        sqlx::query!("SELECT id, stock FROM products WHERE id = ANY($1)", ids)
            .fetch_all(db)
            .await?
            .into_iter()
            .map(|r| (r.id, r.stock))
            .collect(),
    )
}

/// The names and prices of the products of `ids` that exist.
pub async fn quotes(db: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<Quote>> {
    sqlx::query_as!(
        Quote,
        r#"SELECT id, name, price AS "price: Money", currency AS "currency: Currency"
             FROM products WHERE id = ANY($1)"#,
        ids,
    )
    .fetch_all(db)
    .await
}
