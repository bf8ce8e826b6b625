//! The stock each product had left when this replica last heard of it: from the inventory
//! worker's stock notice after a placement (it read the stock under the product's lock), or
//! from PostgreSQL when a placement was checked against it. A notice of a change that does
//! not say what it left (a cancellation, an adjustment) and any product write forget the
//! product's level.
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
use uuid::Uuid;

/// Most products remembered; a product forgotten is only checked by its worker.
const MAX_ENTRIES: u64 = 10_000;

pub struct StockLevels {
    left: Cache<Uuid, i32>,
}

impl Default for StockLevels {
    fn default() -> Self {
        StockLevels {
            left: Cache::builder().max_capacity(MAX_ENTRIES).build(),
        }
    }
}

impl StockLevels {
    /// The stock of `products` changed, leaving what `left` says of those it names.
    pub fn changed(&self, products: &[Uuid], left: &HashMap<Uuid, i32>) {
        for id in products {
            match left.get(id) {
                Some(stock) => self.left.insert(*id, *stock),
                None => self.left.invalidate(id),
            }
        }
    }

    /// What the products of `ids` that exist have left, read from PostgreSQL now, and
    /// remembered.
    pub async fn read(&self, db: &PgPool, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, i32>> {
        let stock = super::repo::stock_left(db, ids).await?;
        self.learnt(&stock);
        Ok(stock.into_iter().collect())
    }

    fn learnt(&self, stock: &[(Uuid, i32)]) {
        for (id, left) in stock {
            self.left.insert(*id, *left);
        }
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
        levels.learnt(&[(cup, 0)]);
        assert!(levels.may_lack([(cup, 1)]));
        levels.forget_all();
        assert!(!levels.may_lack([(cup, 1)]));
    }
}
