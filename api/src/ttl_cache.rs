//! The in-process caches whose entries live a configured time (`*_CACHE_TTL_MS`) and that a TTL
//! of zero turns off.

use moka::sync::Cache;
use std::hash::Hash;
use std::time::Duration;

/// A cache of at most `max_entries`, each kept `ttl`; `None` when `ttl` is zero.
pub fn entries<K, V>(ttl: Duration, max_entries: u64) -> Option<Cache<K, V>>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    (!ttl.is_zero()).then(|| {
        Cache::builder()
            .max_capacity(max_entries)
            .time_to_live(ttl)
            .build()
    })
}
