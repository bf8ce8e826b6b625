//! Quotes of products (name, unit price, currency) for the view of an order just accepted,
//! before its worker prices it: remembered as long as the catalogue's answers
//! (`CATALOGUE_CACHE_TTL_MS`) and forgotten with them on every product write, here and (told
//! over NATS) in the other replicas. Answering a `202` then reads PostgreSQL only for products
//! not quoted lately.
//!
//! A reader that went to the database before a product write committed files its quotes under
//! the catalogue's generation it read before, which the write moved on: nobody takes them.

use common::money::{Currency, Money};
use moka::sync::Cache;
use std::time::Duration;
use uuid::Uuid;

/// Most products remembered; more only means more database reads.
const MAX_ENTRIES: u64 = 10_000;

/// A product's name and price as the catalogue shows them.
#[derive(Debug, Clone)]
pub struct Quote {
    pub id: Uuid,
    pub name: String,
    pub price: Money,
    pub currency: Currency,
}

#[derive(Clone)]
struct Quoted {
    generation: u64,
    quote: Quote,
}

pub(super) struct Quotes {
    /// `None` when the TTL is 0: every quote is read from the database.
    entries: Option<Cache<Uuid, Quoted>>,
}

impl Quotes {
    pub fn new(ttl: Duration) -> Self {
        let entries = crate::ttl_cache::entries(ttl, MAX_ENTRIES);
        Quotes { entries }
    }

    /// The quote of `id` remembered in `generation`.
    pub fn get(&self, id: &Uuid, generation: u64) -> Option<Quote> {
        let quoted = self.entries.as_ref()?.get(id)?;
        (quoted.generation == generation).then_some(quoted.quote)
    }

    /// Remembers `quote`, read in `generation`.
    pub fn insert(&self, generation: u64, quote: Quote) {
        if let Some(entries) = &self.entries {
            entries.insert(quote.id, Quoted { generation, quote });
        }
    }

    pub fn forget_all(&self) {
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }
}
