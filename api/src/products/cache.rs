//! The catalogue's response cache: the serialised JSON of public list pages and product
//! details, kept a short time (`CATALOGUE_CACHE_TTL_MS`), so a hit costs no database work and
//! no JSON encoding.
//!
//! Only public representations live here. The catalogue's read routes answer every caller the
//! same body (they take no caller at all), so nothing cached depends on who asks; a future
//! caller-dependent view (say, ADMINs seeing archived products) must bypass this cache.
//!
//! Entries are keyed by the validated query, so spellings that mean the same page (parameter
//! order, `q` with surrounding spaces, `sort=created_at` or no sort) share one entry, and by
//! generations: one that every product write through the api moves forward (everything is
//! forgotten), one that every stock change moves forward for the pages (any page may show the
//! product), and, for details, one of a fixed set of counters picked by the product's id, which
//! a stock change of that product moves forward. A reader that went to the database before a
//! change committed files its answer under the old generation, where nobody looks any more, so
//! whoever changed a product, or learnt that an order took or gave back its stock, reads the
//! change. The cache is bounded by weight in bytes, whatever queries clients invent.

use super::levels::StockLevels;
use super::model::CatalogueQuery;
use super::quotes::{Quote, Quotes};
use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use moka::sync::Cache;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Most bytes of bodies (and keys) held: a few hundred pages of 20 to 100 products.
pub const MAX_BYTES: u64 = 8 * 1024 * 1024;

/// What a cached body answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Resource {
    Page(CatalogueQuery),
    Product(Uuid),
}

impl Resource {
    /// Heap bytes held by the key besides its fixed size.
    fn heap_bytes(&self) -> usize {
        match self {
            Resource::Page(q) => {
                q.filters.pattern.as_ref().map_or(0, String::len)
                    + q.after.as_ref().map_or(0, |c| c.key.heap_bytes())
            }
            Resource::Product(_) => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    generation: u64,
    /// The pages' stock generation for a page, the product's stripe for a detail.
    stock: u64,
    resource: Resource,
}

/// Stock counters of product details; a stock change forgets the details of the products that
/// share its product's counter (a 1/256th of the catalogue), whatever the catalogue's size.
const STRIPES: usize = 256;

pub struct CatalogueCache {
    /// `None` when the TTL is 0: every read goes to the database.
    entries: Option<Cache<Key, Bytes>>,
    generation: AtomicU64,
    pages_stock: AtomicU64,
    details_stock: [AtomicU64; STRIPES],
    /// `Cache-Control` of every 200 answer, matching the TTL (absent when caching is off).
    cache_control: Option<HeaderValue>,
    quotes: Quotes,
    levels: StockLevels,
}

impl CatalogueCache {
    /// A cache whose entries live `ttl`; zero disables it.
    pub fn new(ttl: Duration) -> Self {
        if ttl.is_zero() {
            return CatalogueCache {
                entries: None,
                generation: AtomicU64::new(0),
                pages_stock: AtomicU64::new(0),
                details_stock: std::array::from_fn(|_| AtomicU64::new(0)),
                cache_control: None,
                quotes: Quotes::new(ttl),
                levels: StockLevels::default(),
            };
        }
        let entries = Cache::builder()
            .max_capacity(MAX_BYTES)
            .weigher(|key: &Key, body: &Bytes| {
                let bytes = std::mem::size_of::<Key>() + key.resource.heap_bytes() + body.len();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        let cache_control =
            HeaderValue::from_str(&format!("public, max-age={}", ttl.as_secs())).ok();
        CatalogueCache {
            entries: Some(entries),
            generation: AtomicU64::new(0),
            pages_stock: AtomicU64::new(0),
            details_stock: std::array::from_fn(|_| AtomicU64::new(0)),
            cache_control,
            quotes: Quotes::new(ttl),
            levels: StockLevels::default(),
        }
    }

    /// The JSON of a page of the catalogue: cached, or loaded by `load` and cached.
    pub async fn page<T, Fut>(
        &self,
        query: CatalogueQuery,
        load: impl FnOnce(CatalogueQuery) -> Fut,
    ) -> Result<Bytes, ApiError>
    where
        T: Serialize,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let for_load = query.clone();
        self.get_or_load(Resource::Page(query), || load(for_load))
            .await
    }

    /// The JSON of one product of the catalogue: cached, or loaded by `load` and cached.
    /// Errors (a 404) are not cached.
    pub async fn product<T, Fut>(
        &self,
        id: Uuid,
        load: impl FnOnce() -> Fut,
    ) -> Result<Bytes, ApiError>
    where
        T: Serialize,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.get_or_load(Resource::Product(id), load).await
    }

    async fn get_or_load<T, Fut>(
        &self,
        resource: Resource,
        load: impl FnOnce() -> Fut,
    ) -> Result<Bytes, ApiError>
    where
        T: Serialize,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let Some(entries) = &self.entries else {
            return encode(&load().await?);
        };
        // Read before the database is: see the module's first paragraph.
        let stock = match &resource {
            Resource::Page(_) => &self.pages_stock,
            Resource::Product(id) => self.stripe(*id),
        };
        let key = Key {
            generation: self.generation.load(Ordering::SeqCst),
            stock: stock.load(Ordering::SeqCst),
            resource,
        };
        if let Some(body) = entries.get(&key) {
            return Ok(body);
        }
        let body = encode(&load().await?)?;
        entries.insert(key, body.clone());
        Ok(body)
    }

    /// The stock each product had left when this replica last heard of it.
    pub fn levels(&self) -> &StockLevels {
        &self.levels
    }

    /// Forgets every cached answer: called after each product write, here and (told over
    /// NATS) in the other replicas.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
        self.quotes.forget_all();
        self.levels.forget_all();
    }

    /// The quotes of the products of `ids` that exist ([`super::quotes`]): remembered, or read
    /// from `db` and remembered.
    pub async fn quotes(&self, db: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<Quote>> {
        // Read before the database is: see the quotes' module.
        let generation = self.generation.load(Ordering::SeqCst);
        let mut quotes = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.quotes.get(id, generation) {
                Some(quote) => quotes.push(quote),
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            for quote in super::repo::quotes(db, &missing).await? {
                self.quotes.insert(generation, quote.clone());
                quotes.push(quote);
            }
        }
        Ok(quotes)
    }

    /// The available stock of `products` changed (an order took or gave it back, or a
    /// warehouse adjusted it): forgets every page and those products' details. `left` says
    /// what products had left, changed or not (a placement refused changes none).
    pub fn stock_changed(&self, products: &[Uuid], left: &HashMap<Uuid, i32>) {
        self.levels.changed(products, left);
        if products.is_empty() {
            // Levels only (a placement refused): no stock shown changed.
            return;
        }
        self.pages_stock.fetch_add(1, Ordering::SeqCst);
        for id in products {
            self.stripe(*id).fetch_add(1, Ordering::SeqCst);
        }
    }

    fn stripe(&self, product: Uuid) -> &AtomicU64 {
        let index = usize::from(product.as_bytes()[15]) % STRIPES;
        &self.details_stock[index]
    }

    /// A 200 answer carrying `body`, with the headers `axum::Json` would set, plus
    /// `Cache-Control` when caching is on.
    pub fn respond(&self, body: Bytes) -> Response {
        let mut res = Response::new(Body::from(body));
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(value) = &self.cache_control {
            headers.insert(header::CACHE_CONTROL, value.clone());
        }
        res
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("encoding the catalogue")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::products::model::{Filters, Sort};

    /// Bytes `cache` holds, once its pending evictions are applied.
    fn weighted_size(cache: &CatalogueCache) -> u64 {
        cache.entries.as_ref().map_or(0, |entries| {
            entries.run_pending_tasks();
            entries.weighted_size()
        })
    }

    fn query(text: &str) -> CatalogueQuery {
        CatalogueQuery {
            filters: Filters {
                pattern: Some(format!("%{text}%")),
                ..Filters::default()
            },
            sort: Sort::default(),
            limit: 20,
            after: None,
        }
    }

    async fn load_page(
        cache: &CatalogueCache,
        q: CatalogueQuery,
        body: &str,
    ) -> Result<Bytes, ApiError> {
        let body = body.to_owned();
        cache
            .page(q, |_| async move { Ok::<_, ApiError>(body) })
            .await
    }

    #[tokio::test]
    async fn a_hit_does_not_load_again_until_invalidated() {
        let cache = CatalogueCache::new(Duration::from_secs(60));
        let first = load_page(&cache, query("cup"), "first").await.unwrap();
        let second = load_page(&cache, query("cup"), "second").await.unwrap();
        assert_eq!(first, second);
        assert_eq!(first.as_ref(), b"\"first\"");

        cache.invalidate();
        let third = load_page(&cache, query("cup"), "third").await.unwrap();
        assert_eq!(third.as_ref(), b"\"third\"");
    }

    #[tokio::test]
    async fn a_stock_change_forgets_the_pages_and_that_products_detail_only() {
        let cache = CatalogueCache::new(Duration::from_secs(60));
        let (changed, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let detail = |id, body: &'static str| {
            let cache = &cache;
            async move {
                cache
                    .product(id, || async move { Ok::<_, ApiError>(body) })
                    .await
                    .unwrap()
            }
        };
        load_page(&cache, query("cup"), "page before")
            .await
            .unwrap();
        detail(changed, "changed before").await;
        detail(other, "other before").await;

        cache.stock_changed(&[changed], &HashMap::new());
        let page = load_page(&cache, query("cup"), "page after").await.unwrap();
        assert_eq!(page.as_ref(), b"\"page after\"");
        assert_eq!(
            detail(changed, "changed after").await.as_ref(),
            b"\"changed after\""
        );
        assert_eq!(
            detail(other, "other after").await.as_ref(),
            b"\"other before\""
        );
    }

    #[tokio::test]
    async fn a_ttl_of_zero_caches_nothing_and_sends_no_cache_control() {
        let cache = CatalogueCache::new(Duration::ZERO);
        load_page(&cache, query("cup"), "first").await.unwrap();
        let second = load_page(&cache, query("cup"), "second").await.unwrap();
        assert_eq!(second.as_ref(), b"\"second\"");
        let res = cache.respond(second);
        assert!(res.headers().get(header::CACHE_CONTROL).is_none());
    }

    #[tokio::test]
    async fn arbitrary_queries_cannot_grow_the_cache_past_its_bound() {
        let cache = CatalogueCache::new(Duration::from_secs(60));
        let body = "x".repeat(64 * 1024);
        // 64 KiB bodies under 400 distinct queries: 25 MiB offered, 8 MiB kept at most.
        for i in 0..400 {
            load_page(&cache, query(&format!("q{i}")), &body)
                .await
                .unwrap();
        }
        let held = weighted_size(&cache);
        assert!(held <= MAX_BYTES, "{held} bytes held");
        assert!(held > MAX_BYTES / 2, "{held} bytes held: the cache is used");
    }

    #[test]
    fn answers_carry_the_json_content_type_and_a_max_age_of_the_ttl() {
        let cache = CatalogueCache::new(Duration::from_millis(2500));
        let res = cache.respond(Bytes::from_static(b"{}"));
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "public, max-age=2");
    }
}
