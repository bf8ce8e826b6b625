//! Shared state handed to every handler.

use common::Config;
use common::messaging::Bus;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::ops::Deref;
use std::sync::Arc;

/// What every handler shares. axum clones the state for each request (and for each
/// middleware and extractor that takes it), so it is one `Arc`: a clone is a reference count,
/// not a copy of NATS clients, keys and pools.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub tokens: crate::auth::token::TokenKeys,
    pub db: PgPool,
    pub nats: async_nats::Client,
    pub bus: Bus,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    pub watch: Arc<crate::orders::watch::OrderWatch>,
    /// Orders accepted and not recorded yet, to answer them `PENDING`.
    pub accepted: Arc<crate::orders::accepted::Accepted>,
    /// Placement outcomes sent straight to this replica, for `Prefer: wait`.
    pub outcomes: Arc<crate::orders::outcomes::Outcomes>,
    /// Failed-login limits of this process.
    pub login_limits: Arc<crate::auth::rate_limit::LoginLimiter>,
    /// Password hashing, a bounded number at a time.
    pub passwords: crate::auth::password::Hashing,
    /// Live sessions this process saw, and their roles.
    pub session_cache: Arc<crate::auth::session_cache::SessionCache>,
    /// Public catalogue answers of this process.
    pub catalogue_cache: Arc<crate::products::cache::CatalogueCache>,
    /// Evicts from both caches what changed, here and in the other replicas.
    pub evictions: crate::evictions::Evictions,
}
