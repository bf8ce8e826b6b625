//! An order as a reader finds it: recorded in PostgreSQL, or accepted and not recorded yet,
//! by this replica or by another one (asked over core NATS, see `orders::accepted`), then shown
//! `PENDING`.

use super::model::Order;
use super::repo::{self, Owner};
use crate::error::ApiError;
use crate::state::AppState;
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
    let order = repo::pending_view(
        &state.db,
        &state.catalogue_cache,
        id,
        &pending,
        &state.config.store_currency,
    )
    .await?;
    Ok(Some(order))
}
