//! The webhooks domain (ADMIN only): endpoints and their signing secrets, the delivery log,
//! re-sending one delivery, replaying an endpoint from the event history, and test events. The
//! webhooks worker (`workers webhooks`) makes the deliveries; docs/webhooks.md tells receivers
//! how to verify them.

mod deliveries;
mod document;
mod extract;
pub mod model;
mod replay;
mod repo;
mod routes;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use document::add_webhooks;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::create, routes::list))
        .routes(routes!(
            routes::get_endpoint,
            routes::change,
            routes::delete
        ))
        .routes(routes!(routes::rotate_secret))
        .routes(routes!(routes::test))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::retry))
        .routes(routes!(replay::replay))
}
