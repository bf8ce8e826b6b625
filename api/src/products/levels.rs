//! The stock each product had left when this replica last heard of it: from the inventory
//! worker's stock notice after a placement, confirmed or refused (it read the stock under the
//! product's lock), or from PostgreSQL when a placement was checked against it. A notice of a
//! change that does not say what it left (a cancellation, an adjustment) and any product write
//! forget the product's level.
//!
//! A level only decides whether a placement is worth checking against PostgreSQL before it is
//! published: a product sold out is then refused at once instead of being recorded `REJECTED`
//! (the orders' `sold_out` module). It never refuses anything by itself: notices from several
//! workers may arrive out of order, and a lost one leaves a level behind, so a level that is
//! too low costs one read and is corrected by it; one that is too high lets the placement go
//! to the worker, which decides as it always did.

use moka::sync::Cache;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most products remembered; a product forgotten is only checked by its worker.
const MAX_ENTRIES: u64 = 10_000;

/// Most placements waiting for the next read; more wait to be queued.
const QUEUED: usize = 1_024;

/// What one read found: each product's stock, or why it could not be read.
type Found = Result<Arc<HashMap<Uuid, i32>>, Arc<sqlx::Error>>;

/// A placement waiting for the stock of its products.
struct Ask {
    ids: Vec<Uuid>,
    found: oneshot::Sender<Found>,
}

pub struct StockLevels {
    left: Cache<Uuid, i32>,
    /// The reads' queue, its task started by the first read.
    reads: OnceLock<mpsc::Sender<Ask>>,
}

impl Default for StockLevels {
    fn default() -> Self {
        StockLevels {
            left: Cache::builder().max_capacity(MAX_ENTRIES).build(),
            reads: OnceLock::new(),
        }
    }
}

impl StockLevels {
    /// The stock of `products` changed; `left` says what products had left, changed or not.
    /// A changed product `left` does not name is forgotten.
    pub fn changed(&self, products: &[Uuid], left: &HashMap<Uuid, i32>) {
        for id in products {
            // Looked up first: a removal costs more than a read, and most products of a busy
            // catalogue have no level to forget.
            if !left.contains_key(id) && self.left.contains_key(id) {
                self.left.invalidate(id);
            }
        }
        for (id, stock) in left {
            self.left.insert(*id, *stock);
        }
    }

    /// What the products of `ids` that exist have left, read from PostgreSQL after this call
    /// began, and remembered. The reads are made one at a time, each for every placement
    /// that asked while the one before ran: a sold-out product refused thousands of times a
    /// second costs a few hundred reads, not thousands, and none of them shares a read that
    /// began before it asked.
    pub async fn read(&self, db: &PgPool, ids: &[Uuid]) -> Found {
        let reads = self.reads.get_or_init(|| {
            let (asks, queue) = mpsc::channel(QUEUED);
            tokio::spawn(reading(db.clone(), self.left.clone(), queue));
            asks
        });
        let (found, answer) = oneshot::channel();
        let ask = Ask {
            ids: ids.to_vec(),
            found,
        };
        if reads.send(ask).await.is_err() {
            return Err(Arc::new(sqlx::Error::PoolClosed));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Arc::new(sqlx::Error::PoolClosed)))
    }

    /// Whether any of `lines` (product, quantity) asks for more than its product had left when
    /// last heard of.
    pub fn may_lack(&self, lines: impl IntoIterator<Item = (Uuid, i32)>) -> bool {
        lines
            .into_iter()
            .any(|(id, quantity)| self.left.get(&id).is_some_and(|left| left < quantity))
    }

    /// Every product was written: forget every level.
    pub fn forget_all(&self) {
        self.left.invalidate_all();
    }
}

/// Reads the stock of the products asked for, one read at a time, each for every placement
/// queued when it begins, until the levels are dropped.
async fn reading(db: PgPool, left: Cache<Uuid, i32>, mut queue: mpsc::Receiver<Ask>) {
    while let Some(first) = queue.recv().await {
        let mut asks = vec![first];
        while let Ok(ask) = queue.try_recv() {
            asks.push(ask);
        }
        let mut ids: Vec<Uuid> = asks.iter().flat_map(|a| a.ids.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        let found: Found = match super::repo::stock_left(&db, &ids).await {
            Ok(stock) => {
                learnt(&left, &stock);
                Ok(Arc::new(stock.into_iter().collect()))
            }
            Err(e) => Err(Arc::new(e)),
        };
        for ask in asks {
            // A placement that gave up waiting no longer needs its answer.
            let _ = ask.found.send(found.clone());
        }
    }
}

fn learnt(left: &Cache<Uuid, i32>, stock: &[(Uuid, i32)]) {
    for (id, stock) in stock {
        left.insert(*id, *stock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_is_kept_until_a_change_that_does_not_say_what_it_left() {
        let levels = StockLevels::default();
        let (cup, mug) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(!levels.may_lack([(cup, 1)]), "nothing heard: nothing lacks");
        levels.changed(&[cup, mug], &HashMap::from([(cup, 2)]));
        assert!(!levels.may_lack([(cup, 2), (mug, 1_000)]));
        assert!(levels.may_lack([(mug, 1), (cup, 3)]));
        levels.changed(&[cup], &HashMap::new());
        assert!(!levels.may_lack([(cup, 3)]), "a cancellation forgets it");
        levels.changed(&[], &HashMap::from([(cup, 0)]));
        assert!(levels.may_lack([(cup, 1)]), "a refusal tells what is left");
        learnt(&levels.left, &[(cup, 0)]);
        assert!(levels.may_lack([(cup, 1)]));
        levels.forget_all();
        assert!(!levels.may_lack([(cup, 1)]));
    }
}
