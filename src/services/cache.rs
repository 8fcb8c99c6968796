//! A cache of what the database says, dropped on announced changes, that never keeps a value
//! read across a change: a look-up notes the cache's generation first, and what it read is
//! kept only if no invalidation came in between (it still serves the call that read it).
//!
//! Keeping a value and invalidating its key are decided under the key's lock (moka's
//! `and_compute_with`), so a value read before an invalidation of its key is never in the cache
//! after it, not even for the moment between an insert and a check of the generation.

use moka::future::Cache;
use moka::ops::compute::Op;
use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The cache's generation when a look-up began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

#[derive(Clone)]
pub struct InvalidatingCache<K, V> {
    entries: Cache<K, V>,
    /// Bumped before every invalidation.
    generation: Arc<AtomicU64>,
}

impl<K, V> InvalidatingCache<K, V>
where
    K: Clone + Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Entries live `ttl` at most: the bound on staleness should an announcement be lost.
    pub fn with_ttl(capacity: u64, ttl: Duration) -> Self {
        Self::from_builder(Cache::builder().max_capacity(capacity).time_to_live(ttl))
    }

    /// Entries stay while used, and go after `idle` unused.
    pub fn with_idle(capacity: u64, idle: Duration) -> Self {
        Self::from_builder(Cache::builder().max_capacity(capacity).time_to_idle(idle))
    }

    fn from_builder(builder: moka::future::CacheBuilder<K, V, Cache<K, V>>) -> Self {
        Self {
            entries: builder.support_invalidation_closures().build(),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::SeqCst))
    }

    /// Whether nothing was invalidated since `since`.
    pub fn unchanged_since(&self, since: Generation) -> bool {
        self.generation() == since
    }

    pub async fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).await
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// Keeps `value`, read after `since`, unless an invalidation came in between.
    pub async fn insert_read_at(&self, key: K, value: V, since: Generation) {
        // Under the key's lock, which `invalidate` takes too: it either comes first (and the
        // generation says so) or removes what this put.
        let kept = self.entries.entry(key.clone()).and_compute_with(|_| {
            std::future::ready(match self.unchanged_since(since) {
                true => Op::Put(value),
                false => Op::Nop,
            })
        });
        kept.await;
        // `invalidate_all` and `invalidate_if` take no key's lock: one may have come between.
        if !self.unchanged_since(since) {
            self.entries.invalidate(&key).await;
        }
    }

    /// Inserts whatever the generation (a fact that no announcement can make stale).
    pub async fn insert(&self, key: K, value: V) {
        self.entries.insert(key, value).await;
    }

    /// The cached value, or what `load` reads (concurrent misses share one load), not kept
    /// if an invalidation came while it loaded.
    pub async fn get_or_load<Q, E, Fut>(&self, key: &Q, load: Fut) -> Result<V, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        E: Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>>,
    {
        let since = self.generation();
        let value = self.entries.try_get_with_by_ref(key, load).await?;
        if !self.unchanged_since(since) {
            self.entries.invalidate(key).await;
        }
        Ok(value)
    }

    pub async fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Under the key's lock: see `insert_read_at`.
        let removed = self.entries.entry_by_ref(key);
        removed
            .and_compute_with(|_| std::future::ready(Op::Remove))
            .await;
    }

    /// Drops the entries `stale` picks, at once (pending predicates would otherwise be
    /// evaluated on every read until moka applies them).
    pub async fn invalidate_if(&self, stale: impl Fn(&K, &V) -> bool + Send + Sync + 'static) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.entries.invalidate_entries_if(stale).is_err() {
            self.entries.invalidate_all();
        }
        self.entries.run_pending_tasks().await;
    }

    /// Drops everything (announcements may have been missed).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> InvalidatingCache<u32, &'static str> {
        InvalidatingCache::with_ttl(100, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_value_read_across_an_invalidation_serves_but_is_not_kept() {
        let cache = cache();
        let since = cache.generation();
        cache.invalidate(&7).await;
        cache.insert_read_at(7, "stale", since).await;
        assert_eq!(cache.get(&7).await, None);

        let since = cache.generation();
        cache.insert_read_at(7, "fresh", since).await;
        assert_eq!(cache.get(&7).await, Some("fresh"));
    }

    #[tokio::test]
    async fn a_load_raced_by_an_invalidation_is_returned_and_dropped() {
        let cache = cache();
        let loaded = cache
            .get_or_load(&1, async {
                cache.invalidate_all();
                Ok::<_, ()>("raced")
            })
            .await;
        assert_eq!(loaded, Ok("raced"));
        assert_eq!(cache.get(&1).await, None);
        let loaded = cache.get_or_load(&1, async { Ok::<_, ()>("kept") }).await;
        assert_eq!(loaded, Ok("kept"));
        assert_eq!(cache.get(&1).await, Some("kept"));
    }

    #[tokio::test]
    async fn invalidate_if_drops_only_what_it_picks() {
        let cache = cache();
        cache.insert(1, "a").await;
        cache.insert(2, "b").await;
        cache.invalidate_if(|_, v| *v == "a").await;
        assert_eq!(cache.get(&1).await, None);
        assert_eq!(cache.get(&2).await, Some("b"));
    }
}
