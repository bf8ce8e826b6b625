//! An order as a reader finds it: recorded in PostgreSQL, or accepted and not recorded yet,
//! by this replica or by another one (asked over core NATS, see `orders::accepted`), then shown
//! `PENDING`.

use super::accepted::Pending;
use super::model::{Order, OrderItem, Placed};
use super::repo::{self, Owner};
use crate::error::ApiError;
use crate::state::AppState;
use common::domain::OrderStatus;
use std::sync::Arc;
use uuid::Uuid;

/// The order `id` as `owner` may see it (`None`: an ADMIN sees any), recorded or pending.
pub async fn find(state: &AppState, id: Uuid, owner: Owner) -> Result<Option<Order>, ApiError> {
    // Looked up before the database is read: an order recorded in between is found there.
    let held = state.accepted.get(id);
    if let Some(order) = repo::find(&state.db, id, owner).await? {
        return Ok(Some(order));
    }
    let pending = match held {
        Some(pending) => pending,
        None => match state.accepted.ask(id).await {
            Some(pending) => Arc::new(pending),
            // Its holder forgets an order once it is recorded: read again, so an order
            // recorded since the first read is found.
            None => return Ok(repo::find(&state.db, id, owner).await?),
        },
    };
    if owner.is_some_and(|owner| owner != pending.user_id) {
        return Ok(None);
    }
    Ok(Some(pending_view(state, id, &pending).await?))
}

/// What an order just accepted looks like before the order worker records it: the lines
/// priced from the current catalogue (the worker's snapshot is the authority), as the
/// catalogue's cache quotes it.
pub(super) async fn pending_view(
    state: &AppState,
    order_id: Uuid,
    pending: &Pending,
) -> sqlx::Result<Order> {
    let Pending {
        user_id,
        lines,
        accepted_at,
        shipping_address,
    } = pending;
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let quotes = state.catalogue_cache.quotes(&state.db, &ids).await?;
    let items: Vec<OrderItem> = lines
        .iter()
        .map(|l| {
            let q = quotes.iter().find(|q| q.id == l.product_id);
            OrderItem::placed(
                l.product_id,
                q.map(|q| q.name.clone()),
                q.map(|q| q.price),
                l.quantity,
                q.map(|q| {
                    q.price
                        .minor_units()
                        .saturating_mul(i64::from(l.quantity.get()))
                }),
            )
        })
        .collect();
    Ok(Placed {
        id: order_id,
        user_id: *user_id,
        status: OrderStatus::Pending,
        total: items.iter().filter_map(|i| i.subtotal).sum(),
        currency: quotes
            .first()
            .map(|q| q.currency.clone())
            .unwrap_or_else(|| state.config.store_currency.clone()),
        at: *accepted_at,
        rejection_reason: None,
        shipping_address: shipping_address.clone(),
        timeline: Vec::new(),
        items,
    }
    .into())
}
