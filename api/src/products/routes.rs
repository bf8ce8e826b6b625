//! HTTP handlers of the catalogue: extract and validate, call the service, shape the answer.
//! Reading is open to everyone; every write takes [`AdminUser`], so anonymous callers get 401
//! and clients 403 before any handler code runs.
//!
//! Reads are answered from the catalogue cache ([`super::cache`]) once validated, so a bad
//! query is still a problem+json; every write empties the cache of every replica.

use super::model::{
    AdjustStock, CreateProduct, ListAdjustments, ListProducts, Product, StockAdjustment,
    UpdateProduct,
};
use super::{service, validate};
use crate::auth::AdminUser;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::pagination::Page;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product, archive_product))
        .routes(routes!(list_adjustments, adjust_stock))
}

/// List the catalogue, filtered and sorted, one page at a time.
///
/// Archived products never appear. Paging follows `next_cursor` until it is `null`; each sort
/// order breaks ties by id, so no product is skipped or repeated. Pages are cached briefly
/// (`CATALOGUE_CACHE_TTL_MS`): a product write through the api shows at once, stock taken by
/// orders within that time.
#[utoipa::path(get, path = "/products", tag = "products",
    params(ListProducts),
    responses(
        (status = 200, description = "A page of products", body = Page<Product>,
            headers(("cache-control" = String, description = "`public, max-age=N`: the page may be up to N seconds old (absent when the api does not cache the catalogue)")),
            example = json!({"items": [{
                "id": "0193a5b0-7c1e-7d3a-9f00-3c2b1a0e4d5f", "name": "Espresso cup",
                "description": "Porcelain, 80 ml", "price": 1250, "currency": "USD", "stock": 40,
                "created_at": "2026-11-25T09:30:00Z", "updated_at": "2026-11-25T09:30:00Z"
            }], "next_cursor": "eyJzb3J0IjoibmFtZSIsImtleSI6eyJuYW1lIjoiRXNwcmVzc28gY3VwIn19"})),
        (status = 400, description = "Malformed parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter or limit", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_products(
    State(state): State<AppState>,
    Query(params): Query<ListProducts>,
) -> ApiResult<Response> {
    let query = validate::catalogue(params)?;
    let cache = &state.catalogue_cache;
    let body = cache
        .page(query, |query| service::list(&state.db, query))
        .await?;
    Ok(cache.respond(body))
}

/// Runs a product write, then empties the catalogue caches, here at once and in the other
/// replicas. Whatever the outcome: a write that failed late may still have committed.
async fn writing<T>(state: &AppState, write: impl Future<Output = ApiResult<T>>) -> ApiResult<T> {
    let outcome = write.await;
    state.evictions.catalogue_changed().await;
    outcome
}

/// Create a product (ADMIN), priced in the store's currency.
///
/// `stock` becomes both the available and the initial stock of the product.
#[utoipa::path(post, path = "/products", tag = "products",
    request_body = CreateProduct,
    responses(
        (status = 201, description = "Created", body = Product,
            headers(("location" = String, description = "/api/v1/products/{id}"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/validation", "title": "Validation failed", "status": 422,
                "detail": "the request has invalid fields",
                "errors": [{"field": "price", "message": "must not be negative"}]})),
    ))]
async fn create_product(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(body): Json<CreateProduct>,
) -> ApiResult<Response> {
    let product = validate::create(body)?;
    let product = writing(
        &state,
        service::create(&state.db, product, &state.config.store_currency),
    )
    .await?;
    let location = format!("/api/v1/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(product),
    )
        .into_response())
}

/// One product of the catalogue; archived and unknown ids are 404.
///
/// Cached like the list: a write through the api shows at once, stock taken by orders within
/// `CATALOGUE_CACHE_TTL_MS`.
#[utoipa::path(get, path = "/products/{id}", tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = Product,
            headers(("cache-control" = String, description = "`public, max-age=N`: the product may be up to N seconds old (absent when the api does not cache the catalogue)"))),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_product(State(state): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<Response> {
    let cache = &state.catalogue_cache;
    let body = cache.product(id, || service::get(&state.db, id)).await?;
    Ok(cache.respond(body))
}

/// Change any of name, description, price and stock (ADMIN).
///
/// Setting `stock` records the difference in the stock adjustments ledger (reason "stock set by
/// product update"), applied under the product's row lock so no concurrent reservation is lost.
#[utoipa::path(patch, path = "/products/{id}", tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    request_body = UpdateProduct,
    responses(
        (status = 200, description = "The updated product", body = Product),
        (status = 400, description = "Malformed id or JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateProduct>,
) -> ApiResult<axum::Json<Product>> {
    let changes = validate::update(body)?;
    let product = writing(&state, service::update(&state.db, id, changes, admin.id)).await?;
    Ok(axum::Json(product))
}

/// Archive a product (ADMIN): it leaves the catalogue but stays inside past orders.
///
/// Idempotent: archiving an archived product answers 204 again.
#[utoipa::path(delete, path = "/products/{id}", tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 204, description = "Archived"),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown", body = Problem, content_type = "application/problem+json"),
    ))]
async fn archive_product(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    writing(&state, service::archive(&state.db, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add or remove available stock (ADMIN), recorded in the ledger with who, when and why.
///
/// Applied atomically against concurrent reservations; refused with 409 (naming the available
/// stock) if it would take available stock below zero.
#[utoipa::path(post, path = "/products/{id}/stock-adjustments", tag = "products",
    params(("id" = Uuid, Path, description = "Product id")),
    request_body = AdjustStock,
    responses(
        (status = 201, description = "Applied and recorded", body = StockAdjustment),
        (status = 400, description = "Malformed id or JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or archived", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would take available stock below zero", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "about:blank", "title": "Conflict", "status": 409,
                "detail": "only 2 in stock: cannot remove 5", "available": 2})),
        (status = 422, description = "Invalid fields, each named in `errors`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn adjust_stock(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    Json(body): Json<AdjustStock>,
) -> ApiResult<(StatusCode, axum::Json<StockAdjustment>)> {
    let adjustment = validate::adjustment(body)?;
    let entry = writing(
        &state,
        service::adjust_stock(&state.db, id, adjustment, admin.id),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(entry)))
}

/// The stock adjustments ledger of a product (ADMIN), oldest first, one page at a time.
///
/// Archived products keep their ledger.
#[utoipa::path(get, path = "/products/{id}/stock-adjustments", tag = "products",
    params(("id" = Uuid, Path, description = "Product id"), ListAdjustments),
    responses(
        (status = 200, description = "A page of the ledger", body = Page<StockAdjustment>),
        (status = 400, description = "Malformed id or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown product", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_adjustments(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
    Query(params): Query<ListAdjustments>,
) -> ApiResult<axum::Json<Page<StockAdjustment>>> {
    let query = validate::ledger(params)?;
    Ok(axum::Json(service::ledger(&state.db, id, query).await?))
}
