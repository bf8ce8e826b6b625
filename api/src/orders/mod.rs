//! The orders domain: placing orders through JetStream, reading them back, following them live.

pub mod accepted;
mod actors;
mod after_sale;
pub mod command;
mod entries;
pub mod events;
mod follow;
mod idempotency;
mod lookup;
pub mod model;
pub mod outcomes;
mod refunds;
mod repo;
mod routes;
mod service;
mod transitions;
mod waiter;
pub mod watch;

pub use service::idempotent_order_id;

/// The order a subject names in its last token (`….<order id>`), as the subjects of the
/// placement outcomes and of the accepted orders do.
fn order_in_subject(subject: &str) -> Option<uuid::Uuid> {
    subject
        .rsplit('.')
        .next()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
}

/// Every route of the orders domain.
pub fn router() -> utoipa_axum::router::OpenApiRouter<crate::state::AppState> {
    routes::router()
        .merge(events::router())
        .merge(refunds::router())
        .merge(after_sale::routes::router())
}
