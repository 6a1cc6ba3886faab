//! Redis cache with the per-instance in-process cache as fallback.
//!
//! While Redis fails, reads and writes use the fallback [`MemoryCache`] (a per-instance cache, so other instances'
//! invalidations do not reach it: staleness is bounded by the TTL). Three rules keep the two stores from serving
//! stale data afterwards:
//! - deletes and namespace invalidations always apply to the fallback too;
//! - a namespace whose invalidation could not reach Redis is remembered, and bumped in Redis before Redis is read
//!   again (otherwise Redis would serve what this instance invalidated during the outage);
//! - the first successful Redis call after fallback use clears the fallback, so a later outage starts empty.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::Script;

use super::{RedisCore, millis};
use crate::BoxFuture;
use crate::cache::{Cache, CacheKey, Fill, FillTarget, Lookup};
use crate::error::KvError;
use crate::memory::{MemoryCache, lock};

// Data keys are `{head}{version}{mid}{tail}`: `mid` is `.{scope version}` for scoped keys (KEYS[2] is then the
// scope's version key) and empty otherwise. Lua `false` is a nil reply (a nil would end the returned table).

/// KEYS = version key[, scope version key]; ARGV = head, tail. Returns {version, scope version, value|nil}.
static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local s, mid = 0, ''
if KEYS[2] then
  s = tonumber(redis.call('GET', KEYS[2]) or '0')
  mid = '.' .. s
end
return {v, s, redis.call('GET', ARGV[1] .. v .. mid .. ARGV[2]) or false}
",
    )
});

/// KEYS = version key[, scope version key]; ARGV = head, tail, value, ttl in ms. Stores under the current
/// versions.
static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local mid = ''
if KEYS[2] then
  mid = '.' .. tonumber(redis.call('GET', KEYS[2]) or '0')
end
redis.call('SET', ARGV[1] .. v .. mid .. ARGV[2], ARGV[3], 'PX', ARGV[4])
return v
",
    )
});

/// KEYS = version key[, scope version key]; ARGV = head, tail. Deletes the key of the current versions.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local mid = ''
if KEYS[2] then
  mid = '.' .. tonumber(redis.call('GET', KEYS[2]) or '0')
end
return redis.call('DEL', ARGV[1] .. v .. mid .. ARGV[2])
",
    )
});

/// The end of a data key: `:{key}`, or `:{scope}:{key}` for a scoped key (each scope has its own entries; the
/// scope version in the middle only says which of them are current).
fn data_tail(key: &CacheKey) -> String {
    match key.scope() {
        Some(scope) => format!(":{scope}:{}", key.key()),
        None => format!(":{}", key.key()),
    }
}

/// The Redis [`Cache`].
#[derive(Debug)]
pub(crate) struct RedisCache {
    core: Arc<RedisCore>,
    fallback: MemoryCache,
    fallback_used: AtomicBool,
    /// Namespaces invalidated during an outage, to bump in Redis before reading it again.
    pending: Mutex<HashSet<String>>,
}

struct Keys {
    version: String,
    scope_version: Option<String>,
    head: String,
    tail: String,
}

impl Keys {
    fn script_keys(&self) -> Vec<&str> {
        std::iter::once(self.version.as_str())
            .chain(self.scope_version.as_deref())
            .collect()
    }

    /// The data key under given versions: what the scripts compose in Redis, for a fill that must
    /// land under the versions seen at its miss.
    fn data_key(&self, version: u64, scope_version: u64) -> String {
        match self.scope_version {
            Some(_) => format!("{}{version}.{scope_version}{}", self.head, self.tail),
            None => format!("{}{version}{}", self.head, self.tail),
        }
    }
}

impl RedisCache {
    pub(crate) fn new(core: Arc<RedisCore>, fallback_max_entries: usize) -> Self {
        Self {
            core,
            fallback: MemoryCache::new(fallback_max_entries),
            fallback_used: AtomicBool::new(false),
            pending: Mutex::new(HashSet::new()),
        }
    }

    fn version_key(&self, namespace: &str) -> String {
        self.core.key("cache", &format!("{namespace}:version"))
    }

    fn scope_version_key(&self, namespace: &str, scope: &str) -> String {
        self.core
            .key("cache", &format!("{namespace}:scope:{scope}:version"))
    }

    fn keys(&self, key: &CacheKey) -> Keys {
        Keys {
            version: self.version_key(key.namespace()),
            scope_version: key
                .scope()
                .map(|scope| self.scope_version_key(key.namespace(), scope)),
            head: self.core.key("cache", &format!("{}:v", key.namespace())),
            tail: data_tail(key),
        }
    }

    fn use_fallback(&self, op: &'static str, error: &KvError) {
        tracing::debug!(cache.op = op, error = %error, "cache falls back to in-process");
        self.core.health().count_fallback("cache");
        self.fallback_used.store(true, Ordering::Relaxed);
    }

    fn redis_answered(&self) {
        if self.fallback_used.swap(false, Ordering::Relaxed) {
            self.fallback.clear();
        }
    }

    /// Bumps, in Redis, the namespaces invalidated while Redis failed. Redis must not be read before this succeeds.
    async fn flush_pending(&self) -> Result<(), KvError> {
        let namespaces: Vec<String> = lock(&self.pending).iter().cloned().collect();
        if namespaces.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = namespaces.iter().map(|ns| self.version_key(ns)).collect();
        self.core
            .run("cache.flush_pending", |mut conn| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.incr(key, 1).ignore();
                }
                pipe.query_async::<()>(&mut conn).await
            })
            .await?;
        let mut pending = lock(&self.pending);
        for ns in &namespaces {
            pending.remove(ns);
        }
        tracing::info!(
            cache.namespaces = namespaces.len(),
            "replayed cache invalidations missed during a redis outage"
        );
        Ok(())
    }

    async fn get_impl(&self, key: &CacheKey) -> Lookup {
        let result = match self.flush_pending().await {
            Ok(()) => {
                let k = self.keys(key);
                self.core
                    .run("cache.get", |mut conn| async move {
                        GET.key(k.script_keys())
                            .arg(&k.head)
                            .arg(&k.tail)
                            .invoke_async::<(u64, u64, Option<Vec<u8>>)>(&mut conn)
                            .await
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok((_, _, Some(value))) => {
                self.redis_answered();
                Lookup::Hit(Bytes::from(value))
            }
            Ok((version, scope_version, None)) => {
                self.redis_answered();
                Lookup::Miss(Fill {
                    version,
                    scope_version,
                    target: FillTarget::Primary,
                })
            }
            Err(e) if !key.fallback() => {
                tracing::debug!(error = %e, "cache miss: redis failed and the key has no fallback");
                Lookup::Miss(Fill {
                    version: 0,
                    scope_version: 0,
                    target: FillTarget::Nowhere,
                })
            }
            Err(e) => {
                self.use_fallback("get", &e);
                self.fallback.lookup(key, FillTarget::Fallback)
            }
        }
    }

    async fn fill_impl(&self, key: &CacheKey, fill: Fill, value: Bytes, ttl: Duration) {
        match fill.target {
            FillTarget::Nowhere => {}
            FillTarget::Fallback => {
                self.fallback
                    .store(key, Some((fill.version, fill.scope_version)), value, ttl)
            }
            FillTarget::Primary => {
                // Under the versions seen at the miss: after an invalidation this lands where nobody reads.
                let data_key = self.keys(key).data_key(fill.version, fill.scope_version);
                let result = self
                    .core
                    .run("cache.fill", |mut conn| async move {
                        redis::cmd("SET")
                            .arg(&data_key)
                            .arg(value.as_ref())
                            .arg("PX")
                            .arg(millis(ttl))
                            .query_async::<()>(&mut conn)
                            .await
                    })
                    .await;
                // A lost fill is only a later miss; nothing to fall back to.
                if let Err(e) = result {
                    tracing::debug!(error = %e, "cache fill dropped");
                }
            }
        }
    }

    async fn set_impl(&self, key: &CacheKey, value: Bytes, ttl: Duration) {
        let k = self.keys(key);
        let sent = value.clone();
        let result = self
            .core
            .run("cache.set", |mut conn| async move {
                SET.key(k.script_keys())
                    .arg(&k.head)
                    .arg(&k.tail)
                    .arg(sent.as_ref())
                    .arg(millis(ttl))
                    .invoke_async::<u64>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(_) => self.redis_answered(),
            Err(e) if !key.fallback() => {
                tracing::debug!(error = %e, "cache set dropped: redis failed and the key has no fallback");
            }
            Err(e) => {
                self.use_fallback("set", &e);
                self.fallback.store(key, None, value, ttl);
            }
        }
    }

    async fn delete_impl(&self, key: &CacheKey) {
        self.fallback.remove(key);
        let k = self.keys(key);
        let result = self
            .core
            .run("cache.delete", |mut conn| async move {
                DELETE
                    .key(k.script_keys())
                    .arg(&k.head)
                    .arg(&k.tail)
                    .invoke_async::<u64>(&mut conn)
                    .await
            })
            .await;
        if let Err(e) = result {
            // The key may still be in Redis: invalidate its whole namespace once Redis answers again.
            self.use_fallback("delete", &e);
            lock(&self.pending).insert(key.namespace().to_owned());
        }
    }

    async fn invalidate_impl(&self, namespace: &str) {
        self.fallback.bump(namespace);
        let key = self.version_key(namespace);
        let result = self
            .core
            .run("cache.invalidate_namespace", |mut conn| async move {
                redis::cmd("INCR")
                    .arg(&key)
                    .query_async::<u64>(&mut conn)
                    .await
            })
            .await;
        if let Err(e) = result {
            self.use_fallback("invalidate_namespace", &e);
            lock(&self.pending).insert(namespace.to_owned());
        }
    }

    async fn invalidate_scopes_impl(&self, namespace: &str, scopes: &[String], ttl: Duration) {
        if scopes.is_empty() {
            return;
        }
        self.fallback.bump_scopes(namespace, scopes);
        let keys: Vec<String> = scopes
            .iter()
            .map(|scope| self.scope_version_key(namespace, scope))
            .collect();
        let keep = millis(crate::CachePolicy::scope_version_ttl(ttl));
        let result = self
            .core
            .run("cache.invalidate_scopes", |mut conn| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.incr(key, 1).ignore();
                    pipe.cmd("PEXPIRE").arg(key).arg(keep).ignore();
                }
                pipe.query_async::<()>(&mut conn).await
            })
            .await;
        if let Err(e) = result {
            // Some scopes may still hold old entries in Redis: the whole namespace goes once Redis answers.
            self.use_fallback("invalidate_scopes", &e);
            lock(&self.pending).insert(namespace.to_owned());
        }
    }
}

impl Cache for RedisCache {
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Lookup> {
        Box::pin(self.get_impl(key))
    }

    fn fill<'a>(
        &'a self,
        key: &'a CacheKey,
        fill: Fill,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.fill_impl(key, fill, value, ttl))
    }

    fn set<'a>(&'a self, key: &'a CacheKey, value: Bytes, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(self.set_impl(key, value, ttl))
    }

    fn delete<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, ()> {
        Box::pin(self.delete_impl(key))
    }

    fn invalidate_namespace<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.invalidate_impl(namespace))
    }

    fn invalidate_scopes<'a>(
        &'a self,
        namespace: &'a str,
        scopes: &'a [String],
        ttl: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.invalidate_scopes_impl(namespace, scopes, ttl))
    }
}
