//! In-process cache: bounded, TTL per entry, per-namespace and per-scope versions for O(1) invalidation.
//!
//! When full, the entry that expires soonest is evicted (an expiry-ordered index makes that O(log n)); entries
//! of an old namespace version are dropped when read or evicted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{lock, now};
use crate::BoxFuture;
use crate::cache::{Cache, CacheKey, Fill, FillTarget, Lookup};

#[derive(Debug)]
struct Entry {
    version: u64,
    scope_version: u64,
    value: Bytes,
    expires: Instant,
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    versions: HashMap<String, u64>,
    /// (namespace, scope) → version; bounded by [`MAX_SCOPES`].
    scopes: HashMap<(String, String), u64>,
    entries: HashMap<CacheKey, Entry>,
    /// (expiry, insertion sequence) → key, for eviction and expiry sweeps.
    by_expiry: BTreeMap<(Instant, u64), CacheKey>,
    next_seq: u64,
}

/// Scope versions kept before they are all forgotten (each forgotten scope's namespace is bumped, so no entry
/// written under a forgotten version can be read again).
const MAX_SCOPES: usize = 100_000;

impl Inner {
    fn version(&self, namespace: &str) -> u64 {
        self.versions.get(namespace).copied().unwrap_or(0)
    }

    fn scope_version(&self, key: &CacheKey) -> u64 {
        key.scope().map_or(0, |scope| {
            self.scopes
                .get(&(key.namespace().to_owned(), scope.to_owned()))
                .copied()
                .unwrap_or(0)
        })
    }

    fn bump(&mut self, namespace: &str) {
        let next = self.version(namespace) + 1;
        self.versions.insert(namespace.to_owned(), next);
    }

    fn bump_scope(&mut self, namespace: &str, scope: &str) {
        if self.scopes.len() >= MAX_SCOPES {
            let namespaces: std::collections::HashSet<String> =
                self.scopes.keys().map(|(ns, _)| ns.clone()).collect();
            for ns in namespaces {
                self.bump(&ns);
            }
            self.scopes.clear();
        }
        let slot = self
            .scopes
            .entry((namespace.to_owned(), scope.to_owned()))
            .or_insert(0);
        *slot += 1;
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_expiry.remove(&(entry.expires, entry.seq));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        key: &CacheKey,
        version: u64,
        scope_version: u64,
        value: Bytes,
        expires: Instant,
        max_entries: usize,
        now: Instant,
    ) {
        self.remove(key);
        // Expired entries go first; then, if still full, the ones closest to expiring anyway.
        while let Some((&(expires_at, seq), _)) = self.by_expiry.first_key_value() {
            if expires_at > now && self.entries.len() < max_entries {
                break;
            }
            if let Some(evicted) = self.by_expiry.remove(&(expires_at, seq)) {
                self.entries.remove(&evicted);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires, seq), key.clone());
        self.entries.insert(
            key.clone(),
            Entry {
                version,
                scope_version,
                value,
                expires,
                seq,
            },
        );
    }
}

/// Cache for one process.
#[derive(Debug)]
pub struct MemoryCache {
    max_entries: usize,
    inner: Mutex<Inner>,
}

impl MemoryCache {
    /// A cache holding at most `max_entries` entries.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Number of entries held (including not yet swept expired ones).
    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry (namespace versions are kept, so outstanding fills stay guarded).
    pub fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.entries.clear();
        inner.by_expiry.clear();
    }

    pub(crate) fn lookup(&self, key: &CacheKey, target: FillTarget) -> Lookup {
        let now = now();
        let mut inner = lock(&self.inner);
        let version = inner.version(key.namespace());
        let scope_version = inner.scope_version(key);
        let fill = Fill {
            version,
            scope_version,
            target,
        };
        match inner.entries.get(key) {
            Some(entry)
                if entry.version == version
                    && entry.scope_version == scope_version
                    && entry.expires > now =>
            {
                Lookup::Hit(entry.value.clone())
            }
            Some(_) => {
                inner.remove(key);
                Lookup::Miss(fill)
            }
            None => Lookup::Miss(fill),
        }
    }

    /// Stores `value`; with `seen` (the versions at the miss), only if neither moved since.
    pub(crate) fn store(
        &self,
        key: &CacheKey,
        seen: Option<(u64, u64)>,
        value: Bytes,
        ttl: Duration,
    ) {
        let now = now();
        let mut inner = lock(&self.inner);
        let current = (inner.version(key.namespace()), inner.scope_version(key));
        if seen.is_some_and(|v| v != current) {
            // Computed from data read before the namespace or scope was invalidated.
            return;
        }
        let max = self.max_entries;
        inner.insert(key, current.0, current.1, value, now + ttl, max, now);
    }

    pub(crate) fn remove(&self, key: &CacheKey) {
        lock(&self.inner).remove(key);
    }

    pub(crate) fn bump(&self, namespace: &str) {
        lock(&self.inner).bump(namespace);
    }

    pub(crate) fn bump_scopes(&self, namespace: &str, scopes: &[String]) {
        let mut inner = lock(&self.inner);
        for scope in scopes {
            inner.bump_scope(namespace, scope);
        }
    }
}

impl Cache for MemoryCache {
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Lookup> {
        Box::pin(std::future::ready(self.lookup(key, FillTarget::Primary)))
    }

    fn fill<'a>(
        &'a self,
        key: &'a CacheKey,
        fill: Fill,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, ()> {
        self.store(key, Some((fill.version, fill.scope_version)), value, ttl);
        Box::pin(std::future::ready(()))
    }

    fn set<'a>(&'a self, key: &'a CacheKey, value: Bytes, ttl: Duration) -> BoxFuture<'a, ()> {
        self.store(key, None, value, ttl);
        Box::pin(std::future::ready(()))
    }

    fn delete<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, ()> {
        self.remove(key);
        Box::pin(std::future::ready(()))
    }

    fn invalidate_namespace<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, ()> {
        self.bump(namespace);
        Box::pin(std::future::ready(()))
    }

    fn invalidate_scopes<'a>(
        &'a self,
        namespace: &'a str,
        scopes: &'a [String],
        _ttl: Duration,
    ) -> BoxFuture<'a, ()> {
        self.bump_scopes(namespace, scopes);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn evicts_soonest_expiring_when_full() {
        let cache = MemoryCache::new(2);
        let long = CacheKey::new("t", "long");
        let short = CacheKey::new("t", "short");
        let third = CacheKey::new("t", "third");
        cache
            .set(&long, Bytes::from_static(b"l"), Duration::from_secs(60))
            .await;
        cache
            .set(&short, Bytes::from_static(b"s"), Duration::from_secs(1))
            .await;
        cache
            .set(&third, Bytes::from_static(b"3"), Duration::from_secs(30))
            .await;
        assert_eq!(cache.len(), 2);
        assert!(matches!(cache.get(&short).await, Lookup::Miss(_)));
        assert!(matches!(cache.get(&long).await, Lookup::Hit(_)));
        assert!(matches!(cache.get(&third).await, Lookup::Hit(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn forgetting_scopes_bumps_their_namespaces() {
        let cache = MemoryCache::new(10);
        let key = CacheKey::new("t", "k");
        let mut scoped = key.clone();
        scoped.scope = Some("s0".to_owned());
        cache
            .set(&scoped, Bytes::from_static(b"old"), Duration::from_secs(60))
            .await;
        // Bump s0, fill anew, then overflow the scope table: the old s0 entry must not come back.
        cache
            .invalidate_scopes("t", &["s0".to_owned()], Duration::from_secs(60))
            .await;
        let scopes: Vec<String> = (1..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        cache
            .invalidate_scopes("t", &scopes, Duration::from_secs(60))
            .await;
        assert!(matches!(cache.get(&scoped).await, Lookup::Miss(_)));
        assert!(lock(&cache.inner).scopes.len() < MAX_SCOPES);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_with_paused_time() {
        let cache = MemoryCache::new(10);
        let key = CacheKey::new("t", "k");
        cache
            .set(&key, Bytes::from_static(b"v"), Duration::from_secs(5))
            .await;
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(matches!(cache.get(&key).await, Lookup::Hit(_)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(matches!(cache.get(&key).await, Lookup::Miss(_)));
        assert!(cache.is_empty(), "expired entry dropped on read");
    }
}
