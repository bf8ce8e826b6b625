//! Shared state handed to every handler.

use common::Config;
use common::messaging::Bus;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub tokens: crate::auth::token::TokenKeys,
    pub db: PgPool,
    pub nats: async_nats::Client,
    pub bus: Bus,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    pub watch: Arc<crate::orders::watch::OrderWatch>,
    /// Failed-login limits of this process.
    pub login_limits: Arc<crate::auth::rate_limit::LoginLimiter>,
    /// Live sessions and catalogue answers of this process, kept in step with the other
    /// replicas.
    pub caches: crate::caches::Caches,
}
