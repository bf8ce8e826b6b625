//! Readiness checks shared by the api and the workers.

use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;

/// What a readiness probe found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// One entry per dependency: `ok` or what is wrong.
    pub checks: std::collections::BTreeMap<&'static str, String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.status == "ok"
    }

    /// The dependencies that are down, for an error message.
    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|(_, v)| v.as_str() != "ok")
            .map(|(k, _)| *k)
            .collect()
    }
}

/// Checks PostgreSQL (a round trip) and NATS (the connection state).
pub async fn check(db: &PgPool, nats: &async_nats::Client) -> Readiness {
    let mut checks = std::collections::BTreeMap::new();
    let pg = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(db),
    )
    .await;
    checks.insert(
        "postgres",
        match pg {
            Ok(Ok(_)) => "ok".to_owned(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: PostgreSQL unreachable");
                "unreachable".to_owned()
            }
            Err(_) => "timed out".to_owned(),
        },
    );
    checks.insert(
        "nats",
        match nats.connection_state() {
            async_nats::connection::State::Connected => "ok".to_owned(),
            other => format!("{other}").to_lowercase(),
        },
    );
    let ok = checks.values().all(|v| v == "ok");
    Readiness {
        status: if ok { "ok" } else { "unavailable" },
        checks,
    }
}
