//! The api's in-process caches (live sessions, catalogue answers) and keeping them honest
//! across replicas: what one replica changes, it forgets at once in its own caches and
//! announces over core NATS, and every other replica forgets it too.
//!
//! * `auth.sessions_changed` (under `NATS_NAMESPACE`): a session ended (logout, a refresh token
//!   presented twice) or all of a user's sessions changed (a password change, the start-up
//!   ADMIN created or re-keyed); see [`crate::auth::live`].
//! * `catalogue.changed`: a product was created, updated, archived or its stock adjusted; see
//!   [`crate::products::cache`].
//!
//! A session that ends, or an account whose sessions or role change, also ends the order event
//! streams (SSE) opened with it, in every replica: the client reconnects and is authorized again.
//!
//! These are plain core-NATS messages between api replicas, not commands or events of the
//! JetStream streams: delivered at most once, to the replicas connected at the time. A notice
//! that is lost (a replica reconnecting) goes unseen for at most the cache's TTL.

use crate::auth::live::LiveSessions;
use crate::orders::watch::OrderWatch;
use crate::products::cache::CatalogueCache;
use common::messaging::Namespace;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Subject (before the namespace) of session changes.
pub const SESSIONS_CHANGED: &str = "auth.sessions_changed";
/// Subject (before the namespace) of catalogue changes.
pub const CATALOGUE_CHANGED: &str = "catalogue.changed";

/// Longest a request waits to hand a notice to the NATS client.
const NOTICE_SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What a notice says changed. `origin` names the replica that sent it, which has already
/// applied it.
#[derive(Debug, Serialize, Deserialize)]
struct Notice {
    origin: Uuid,
    change: Change,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
enum Change {
    Session(Uuid),
    User(Uuid),
    Catalogue,
}

/// This replica's caches, and the announcing of changes to the other replicas.
#[derive(Clone)]
pub struct Caches {
    origin: Uuid,
    nats: async_nats::Client,
    sessions_subject: String,
    catalogue_subject: String,
    pub sessions: Arc<LiveSessions>,
    pub catalogue: Arc<CatalogueCache>,
    streams: Arc<OrderWatch>,
}

impl Caches {
    /// Subscribes to the other replicas' notices and applies them to `sessions` and
    /// `catalogue` for as long as the returned value (or a clone) lives.
    pub async fn start(
        nats: &async_nats::Client,
        ns: &Namespace,
        sessions: LiveSessions,
        catalogue: CatalogueCache,
        streams: Arc<OrderWatch>,
    ) -> anyhow::Result<Self> {
        let caches = Caches {
            origin: Uuid::new_v4(),
            nats: nats.clone(),
            sessions_subject: ns.subject(SESSIONS_CHANGED),
            catalogue_subject: ns.subject(CATALOGUE_CHANGED),
            sessions: Arc::new(sessions),
            catalogue: Arc::new(catalogue),
            streams,
        };
        let mut notices = futures::stream::select(
            nats.subscribe(caches.sessions_subject.clone()).await?,
            nats.subscribe(caches.catalogue_subject.clone()).await?,
        );
        let origin = caches.origin;
        let sessions = Arc::downgrade(&caches.sessions);
        let catalogue = Arc::downgrade(&caches.catalogue);
        let streams = Arc::downgrade(&caches.streams);
        tokio::spawn(async move {
            while let Some(message) = notices.next().await {
                let (Some(sessions), Some(catalogue), Some(streams)) =
                    (sessions.upgrade(), catalogue.upgrade(), streams.upgrade())
                else {
                    break;
                };
                match serde_json::from_slice::<Notice>(&message.payload) {
                    Ok(notice) if notice.origin == origin => {}
                    Ok(notice) => apply(&sessions, &catalogue, &streams, &notice.change),
                    Err(e) => tracing::warn!(error = %e, subject = %message.subject,
                        "undecodable cache notice ignored"),
                }
            }
        });
        Ok(caches)
    }

    /// A session ended: forget it here and in the other replicas.
    pub async fn session_ended(&self, session_id: Uuid) {
        self.announce(Change::Session(session_id)).await;
    }

    /// Every session of a user ended, or its role changed.
    pub async fn user_changed(&self, user_id: Uuid) {
        self.announce(Change::User(user_id)).await;
    }

    /// A product was written.
    pub async fn catalogue_changed(&self) {
        self.announce(Change::Catalogue).await;
    }

    async fn announce(&self, change: Change) {
        apply(&self.sessions, &self.catalogue, &self.streams, &change);
        let subject = match change {
            Change::Catalogue => &self.catalogue_subject,
            Change::Session(_) | Change::User(_) => &self.sessions_subject,
        };
        let notice = Notice {
            origin: self.origin,
            change,
        };
        let sent = match serde_json::to_vec(&notice) {
            // The client queues it (also while reconnecting); only a full queue makes this wait,
            // and the request that changed something does not wait long for the other replicas.
            Ok(payload) => match tokio::time::timeout(
                NOTICE_SEND_TIMEOUT,
                self.nats.publish(subject.clone(), payload.into()),
            )
            .await
            {
                Ok(sent) => sent.map_err(anyhow::Error::new),
                Err(_) => Err(anyhow::anyhow!(
                    "NATS did not take it within {NOTICE_SEND_TIMEOUT:?}"
                )),
            },
            Err(e) => Err(anyhow::Error::new(e)),
        };
        if let Err(e) = sent {
            // The other replicas see the change when their entries expire.
            tracing::warn!(error = %e, %subject, "cache notice not sent");
        }
    }
}

fn apply(
    sessions: &LiveSessions,
    catalogue: &CatalogueCache,
    streams: &OrderWatch,
    change: &Change,
) {
    match change {
        Change::Session(id) => {
            sessions.forget_session(*id);
            streams.end_session(*id);
        }
        Change::User(id) => {
            sessions.forget_user(*id);
            streams.end_account(*id);
        }
        Change::Catalogue => catalogue.invalidate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_small_json_objects() {
        let id = Uuid::nil();
        let notice = Notice {
            origin: id,
            change: Change::Session(id),
        };
        let json = serde_json::to_value(&notice).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"origin": id, "change": {"kind": "session", "id": id}}),
            "{json}"
        );
        let back: Notice = serde_json::from_value(
            serde_json::json!({"origin": id, "change": {"kind": "catalogue"}}),
        )
        .expect("decodes");
        assert!(matches!(back.change, Change::Catalogue));
    }
}
