//! Evictions from the api's in-process caches (the session cache, the catalogue cache), kept in
//! step across replicas: what one replica changes, it evicts at once from its own caches and
//! announces over core NATS (see [`common::notices`]), and every other replica evicts it too;
//! the workers announce the stock they change the same way.
//!
//! A session that ends, or an account whose sessions or role change, also ends the order event
//! streams (SSE) opened with it, in every replica: the client reconnects and is authorized again.

use crate::auth::session_cache::SessionCache;
use crate::orders::watch::OrderWatch;
use crate::products::cache::CatalogueCache;
use common::messaging::Namespace;
use common::notices::{CATALOGUE_CHANGED, Change, Notice, Notices, SESSIONS_CHANGED};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Evicts from this replica's caches what changed, and announces it to the other replicas.
#[derive(Clone)]
pub struct Evictions {
    notices: Notices,
    sessions: Arc<SessionCache>,
    catalogue: Arc<CatalogueCache>,
    streams: Arc<OrderWatch>,
}

impl Evictions {
    /// Subscribes to the other replicas' and the workers' notices and applies them to
    /// `sessions`, `catalogue` and `streams` for as long as those live.
    pub async fn start(
        nats: &async_nats::Client,
        ns: &Namespace,
        sessions: Arc<SessionCache>,
        catalogue: Arc<CatalogueCache>,
        streams: Arc<OrderWatch>,
    ) -> anyhow::Result<Self> {
        let evictions = Evictions {
            notices: Notices::new(nats.clone(), ns.clone()),
            sessions,
            catalogue,
            streams,
        };
        let mut notices = futures::stream::select(
            nats.subscribe(ns.subject(SESSIONS_CHANGED)).await?,
            nats.subscribe(ns.subject(CATALOGUE_CHANGED)).await?,
        );
        let origin = evictions.notices.origin();
        let sessions = Arc::downgrade(&evictions.sessions);
        let catalogue = Arc::downgrade(&evictions.catalogue);
        let streams = Arc::downgrade(&evictions.streams);
        tokio::spawn(async move {
            while let Some(message) = notices.next().await {
                let (Some(sessions), Some(catalogue), Some(streams)) =
                    (sessions.upgrade(), catalogue.upgrade(), streams.upgrade())
                else {
                    break;
                };
                match serde_json::from_slice::<Notice>(&message.payload) {
                    Ok(notice) if notice.origin == origin => {}
                    Ok(notice) => apply(
                        &sessions,
                        &catalogue,
                        &streams,
                        &notice.change,
                        &notice.left,
                    ),
                    Err(e) => tracing::warn!(error = %e, subject = %message.subject,
                        "undecodable cache notice ignored"),
                }
            }
        });
        Ok(evictions)
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
        apply(
            &self.sessions,
            &self.catalogue,
            &self.streams,
            &change,
            &HashMap::new(),
        );
        self.notices.send(change).await;
    }
}

fn apply(
    sessions: &SessionCache,
    catalogue: &CatalogueCache,
    streams: &OrderWatch,
    change: &Change,
    left: &HashMap<Uuid, i32>,
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
        Change::Stock(products) => catalogue.stock_changed(products, left),
    }
}
