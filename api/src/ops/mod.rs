//! Operations for ADMINs: the dead letters (list, re-drive) and the stock reconciliation.

mod dead_letters;
mod reconciliation;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::redrive))
        .routes(routes!(reconciliation::reconcile))
}
