//! Operations for ADMINs: the dead letters (list, re-drive), the payments and their refund
//! queue, and the stock and money reconciliation.

mod dead_letters;
mod payments;
mod reconciliation;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::redrive))
        .routes(routes!(payments::list))
        .routes(routes!(reconciliation::reconcile))
}
