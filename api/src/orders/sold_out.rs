//! Placements refused at the door for lack of stock: when a product of the order had less
//! left than the order asks for, the last time this replica heard of it
//! ([`crate::products::levels`]), the stock is read from PostgreSQL, and if it still falls short
//! the placement is answered `409` at once: nothing is published or recorded. A sold-out
//! product in a flash sale then costs each refused request a share of one primary-key read
//! (the reads are shared by the placements waiting for them, [`StockLevels::read`]) instead
//! of a command, a recorded `REJECTED` order and its event.
//!
//! The read decides, never the level: what was refused lacked the stock at the moment of the
//! read, as the inventory worker would have found had nothing else committed in between.
//! Placements whose lines the levels do not put in doubt go to the inventory worker as
//! before, and one that loses a race for the last units there is still recorded `REJECTED`.

use crate::error::ApiError;
#[cfg(doc)]
use crate::products::levels::StockLevels;
use crate::state::AppState;
use common::domain::Line;
use serde_json::json;
use uuid::Uuid;

/// A line the stock cannot serve.
struct Shortfall {
    product_id: Uuid,
    requested: i32,
    available: i32,
}

/// `Err` with the `409` when a product of `lines` has less stock left than its line asks for,
/// as PostgreSQL says now; `Ok` otherwise (also for products that do not exist: the worker
/// records why).
pub async fn refuse_unless_stocked(state: &AppState, lines: &[Line]) -> Result<(), ApiError> {
    let asked = || lines.iter().map(|l| (l.product_id, l.quantity.get()));
    let levels = state.catalogue_cache.levels();
    if !levels.may_lack(asked()) {
        return Ok(());
    }
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let stock = levels.read(&state.db, &ids).await.map_err(|e| {
        ApiError::unavailable_because(
            "the database is unavailable, retry later",
            anyhow::anyhow!("reading the stock of a placement's products: {e}"),
        )
    })?;
    let short: Vec<Shortfall> = asked()
        .filter_map(|(product_id, requested)| {
            let available = *stock.get(&product_id)?;
            (available < requested).then_some(Shortfall {
                product_id,
                requested,
                available,
            })
        })
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    metrics::counter!("orders_refused_out_of_stock_total").increment(1);
    Err(out_of_stock(&short))
}

fn out_of_stock(short: &[Shortfall]) -> ApiError {
    let detail = format!(
        "out of stock: {}",
        short
            .iter()
            .map(|s| format!(
                "product {}: {} requested, {} available",
                s.product_id, s.requested, s.available
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let mut extensions = serde_json::Map::new();
    extensions.insert(
        "out_of_stock".into(),
        short
            .iter()
            .map(|s| {
                json!({
                    "product_id": s.product_id,
                    "requested": s.requested,
                    "available": s.available,
                })
            })
            .collect(),
    );
    ApiError::OutOfStock { detail, extensions }
}
