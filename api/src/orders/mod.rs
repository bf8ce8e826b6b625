//! The orders domain: placing orders through JetStream, reading them back, following them live.

pub mod accepted;
mod actors;
mod after_sale;
pub mod command;
mod entries;
pub mod events;
mod follow;
mod hearing;
mod idempotency;
mod lookup;
pub mod model;
pub mod outcomes;
mod refunds;
mod repo;
mod routes;
mod service;
mod sold_out;
mod transitions;
mod waiter;
pub mod watch;

pub use service::idempotent_order_id;

/// Every route of the orders domain.
pub fn router() -> utoipa_axum::router::OpenApiRouter<crate::state::AppState> {
    routes::router()
        .merge(events::router())
        .merge(refunds::router())
        .merge(after_sale::routes::router())
}
