//! Cache notices: small core-NATS messages (not stored, at most once) that tell every api
//! replica which of its in-memory answers to forget.
//!
//! * `auth.sessions_changed` (under `NATS_NAMESPACE`): a session ended, or all of a user's
//!   sessions or its role changed (sent by the api);
//! * `catalogue.changed`: products were written through the api (the whole catalogue), or
//!   stock changed by the workers (placements, cancellations, stock adjustments: the products
//!   named).
//!
//! The body is `{"origin": <sender>, "change": {"kind": …, "id": …}}`, and for a stock change
//! `"left": {<product id>: <stock>}` where the sender knows what the change left (a placement
//! does: it held the products' rows) and a line could ask for more. A notice that is lost (a replica reconnecting) goes
//! unseen for at most the cache's TTL.

use crate::messaging::Namespace;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// Subject (before the namespace) of session changes.
pub const SESSIONS_CHANGED: &str = "auth.sessions_changed";
/// Subject (before the namespace) of catalogue changes.
pub const CATALOGUE_CHANGED: &str = "catalogue.changed";

/// Longest a sender waits to hand a notice to the NATS client.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What a notice says changed. `origin` names the process that sent it, which has already
/// applied it to its own caches.
#[derive(Debug, Serialize, Deserialize)]
pub struct Notice {
    pub origin: Uuid,
    pub change: Change,
    /// For a stock change: the stock each product had left once it committed, for those the
    /// sender knows, whether or not their stock changed (a placement refused for want of
    /// stock names its products here and not in the change). Absent from older senders,
    /// ignored by older receivers.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub left: HashMap<Uuid, i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Change {
    /// One session ended.
    Session(Uuid),
    /// Every session of a user ended, or its role changed.
    User(Uuid),
    /// Products were written: anything in the catalogue may have changed.
    Catalogue,
    /// The available stock of these products changed.
    Stock(Vec<Uuid>),
}

impl Change {
    /// The subject the change is announced on.
    pub fn subject(&self) -> &'static str {
        match self {
            Change::Session(_) | Change::User(_) => SESSIONS_CHANGED,
            Change::Catalogue | Change::Stock(_) => CATALOGUE_CHANGED,
        }
    }
}

/// Sends notices from one process.
#[derive(Clone)]
pub struct Notices {
    origin: Uuid,
    nats: async_nats::Client,
    ns: Namespace,
}

impl Notices {
    pub fn new(nats: async_nats::Client, ns: Namespace) -> Self {
        Notices {
            origin: Uuid::new_v4(),
            nats,
            ns,
        }
    }

    /// This sender's id, carried in every notice it sends.
    pub fn origin(&self) -> Uuid {
        self.origin
    }

    /// The stock of `products` changed; `left` says what some products had left, changed or
    /// not (nothing is sent when both are empty).
    pub async fn stock_changed(&self, mut products: Vec<Uuid>, left: HashMap<Uuid, i32>) {
        if products.is_empty() && left.is_empty() {
            return;
        }
        products.sort_unstable();
        products.dedup();
        self.send_notice(Change::Stock(products), left).await;
    }

    /// Sends `change`. The client queues it (also while reconnecting); only a full queue
    /// makes this wait, and then not for long: a lost notice is bounded by the caches' TTL.
    pub async fn send(&self, change: Change) {
        self.send_notice(change, HashMap::new()).await;
    }

    async fn send_notice(&self, change: Change, left: HashMap<Uuid, i32>) {
        let subject = self.ns.subject(change.subject());
        let notice = Notice {
            origin: self.origin,
            change,
            left,
        };
        let sent = match serde_json::to_vec(&notice) {
            Ok(payload) => match tokio::time::timeout(
                SEND_TIMEOUT,
                self.nats.publish(subject.clone(), payload.into()),
            )
            .await
            {
                Ok(sent) => sent.map_err(anyhow::Error::new),
                Err(_) => Err(anyhow::anyhow!(
                    "NATS did not take it within {SEND_TIMEOUT:?}"
                )),
            },
            Err(e) => Err(anyhow::Error::new(e)),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, %subject, "cache notice not sent");
        }
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
            left: HashMap::new(),
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
        assert_eq!(back.change, Change::Catalogue);
        let stock: Notice = serde_json::from_value(
            serde_json::json!({"origin": id, "change": {"kind": "stock", "id": [id]}}),
        )
        .expect("decodes");
        assert_eq!(stock.change, Change::Stock(vec![id]));
        assert!(stock.left.is_empty());
        let left: Notice = serde_json::from_value(serde_json::json!(
            {"origin": id, "change": {"kind": "stock", "id": [id]}, "left": {id.to_string(): 0}}
        ))
        .expect("decodes");
        assert_eq!(left.left.get(&id), Some(&0));
    }
}
