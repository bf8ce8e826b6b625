//! The session cache: live sessions remembered for a short time (`SESSION_CACHE_TTL_MS`), so that authenticating
//! a request does not read PostgreSQL every time.
//!
//! An entry says "session `sid` of user `u` is live, and `u` has role `r`". Everything in this
//! api that ends a session or changes a role forgets the entries concerned at once, here and
//! (told over NATS, see [`crate::evictions`]) in the other replicas: logout, a refresh token
//! presented twice, a password change, the start-up ADMIN being created or re-keyed. The TTL
//! only bounds how long a lost notice, or a change made directly in the database, goes unseen.
//!
//! A reader that went to the database before a revocation committed must not put its (then
//! stale) answer back after the revocation forgot it: every forget moves a generation forward,
//! and a reader that sees the generation moved while it was loading takes its entry out again.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use common::domain::Role;
use moka::sync::Cache;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Most sessions remembered per replica; more only means more database reads.
pub const MAX_ENTRIES: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
struct Live {
    user_id: Uuid,
    role: Role,
    expires_at: DateTime<Utc>,
}

pub struct SessionCache {
    /// `None` when the TTL is 0: every request reads the database.
    entries: Option<Cache<Uuid, Live>>,
    generation: AtomicU64,
}

impl SessionCache {
    /// Remembers live sessions for `ttl`; zero disables it.
    pub fn new(ttl: Duration) -> Self {
        let entries = crate::ttl_cache::entries(ttl, MAX_ENTRIES);
        SessionCache {
            entries,
            generation: AtomicU64::new(0),
        }
    }

    /// The current role of `user_id` and when the session ends, if `session_id` is one of its
    /// live sessions; `None` when the session is revoked, expired, unknown or another user's.
    pub async fn live(
        &self,
        db: &PgPool,
        session_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<(Role, DateTime<Utc>)>, ApiError> {
        if let Some(live) = self.entries.as_ref().and_then(|e| e.get(&session_id)) {
            // A session never changes hands, and never comes back once expired.
            let valid = live.user_id == user_id && live.expires_at > Utc::now();
            return Ok(valid.then_some((live.role, live.expires_at)));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Some((role, expires_at)) =
            crate::auth::repo::live_session(db, session_id, user_id).await?
        else {
            return Ok(None);
        };
        if let Some(entries) = &self.entries {
            entries.insert(
                session_id,
                Live {
                    user_id,
                    role,
                    expires_at,
                },
            );
            if self.generation.load(Ordering::SeqCst) != generation {
                entries.invalidate(&session_id);
            }
        }
        Ok(Some((role, expires_at)))
    }

    /// Forgets one session (logout, a refresh token reused).
    pub fn forget_session(&self, session_id: Uuid) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries.invalidate(&session_id);
        }
    }

    /// Forgets every session of a user (a password or role change).
    pub fn forget_user(&self, user_id: Uuid) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            for (session_id, live) in entries.iter() {
                if live.user_id == user_id {
                    entries.invalidate(&*session_id);
                }
            }
        }
    }
}
