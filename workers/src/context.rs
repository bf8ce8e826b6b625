//! What every worker step is handed: the database, the bus, cache notices and configuration.

use common::Config;
use common::messaging::Bus;
use common::notices::Notices;

/// Everything a worker needs: database, bus, cache notices, configuration.
#[derive(Clone)]
pub struct Context {
    pub db: sqlx::PgPool,
    pub bus: Bus,
    pub notices: Notices,
    pub config: std::sync::Arc<Config>,
}

impl Context {
    pub fn new(db: sqlx::PgPool, bus: Bus, config: std::sync::Arc<Config>) -> Self {
        let notices = Notices::new(bus.jetstream().client(), bus.namespace().clone());
        Context {
            db,
            bus,
            notices,
            config,
        }
    }
}
