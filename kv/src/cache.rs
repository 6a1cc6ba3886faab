//! The cache: byte values under namespaced, versioned keys with a TTL, plus the caching policy table.
//!
//! A namespace has a version counter that is part of every key, so `invalidate_namespace` is one increment, O(1),
//! whatever the number of keys; entries of old versions are never read again and expire with their TTL.
//!
//! A miss hands out a [`Fill`] that remembers the namespace version seen at the miss, and
//! [`Cache::fill`] stores under that version. A value computed from data read before an invalidation is therefore
//! written where nobody reads it, instead of resurrecting stale data (the read-compute-invalidate race).
//! Per-key [`Cache::delete`] has no such guard: a racing fill can bring back a stale value for at most the TTL;
//! data that must never be stale is invalidated by namespace — or by *scope*.
//!
//! A scoped key ([`CachePolicy::scoped_key`]) also carries the version of its scope (say, one user's feed pages),
//! so [`Cache::invalidate_scopes`] drops every key of a few scopes at once with the same guard against racing
//! fills: what one user's relationship change invalidates is gone for the very next read, and nobody else's
//! entries are touched.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BoxFuture;

/// One cached thing: what, key format, TTL, invalidation, behaviour on miss and on Redis failure.
/// `runbooks/caching.md` lists every entry of [`POLICIES`] (a test enforces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Namespace and name in the runbook: lowercase letters, digits and `_` (it becomes part of Redis keys).
    pub name: &'static str,
    /// The key inside the namespace, e.g. `{user_id}`.
    pub key_format: &'static str,
    /// How long an entry lives.
    pub ttl: Duration,
    /// What removes an entry before its TTL (which writes delete it or bump the namespace).
    pub invalidation: &'static str,
    /// What the caller does on a miss (normally: read the database, then fill).
    pub on_miss: &'static str,
    /// What happens while Redis fails (normally: the per-instance in-process cache, else the database).
    pub on_redis_failure: &'static str,
    /// Whether the per-instance in-process cache stands in while Redis fails. `false` for data whose
    /// invalidations must reach every instance (they travel through Redis): then a failing Redis is a miss.
    pub fallback: bool,
}

impl CachePolicy {
    /// The cache key of `key` in this policy's namespace.
    pub fn key(&self, key: impl Into<String>) -> CacheKey {
        let mut k = CacheKey::new(self.name, key);
        k.fallback = self.fallback;
        k
    }

    /// The cache key of `key` in `scope` of this policy's namespace ([`Cache::invalidate_scopes`]).
    pub fn scoped_key(&self, scope: impl Into<String>, key: impl Into<String>) -> CacheKey {
        let mut k = self.key(key);
        k.scope = Some(scope.into());
        k
    }

    /// How long a scope's version must outlive its last bump: longer than any entry written under the previous
    /// version can live (its TTL, after a fill that took up to twice the TTL to compute).
    pub fn scope_version_ttl(ttl: Duration) -> Duration {
        (ttl * 3).max(Duration::from_secs(60))
    }
}

/// The unread in-app notifications of one user (`get_unread_count`, the badge every client polls).
pub const UNREAD_NOTIFICATIONS: CachePolicy = CachePolicy {
    name: "unread_notifications",
    key_format: "{user_id}",
    ttl: Duration::from_secs(30),
    invalidation: "key deleted when a notification of the user is recorded or marked read",
    on_miss: "count the user's unread rows (read-your-writes routing), then fill",
    on_redis_failure: "per-instance memory cache, else the database",
    fallback: true,
};

/// An account's profile (`get_me`, `get_user`, and every post's author summary could follow).
pub const USER_PROFILE: CachePolicy = CachePolicy {
    name: "user_profile",
    key_format: "{user_id}",
    ttl: Duration::from_secs(60),
    invalidation: "key deleted after `update_me` commits, again a moment later (a fill that read the old row before the commit cannot outlive it), and on every instance through the broker channel `cache.invalidate`",
    on_miss: "read the user (read-your-writes routing), then fill",
    on_redis_failure: "per-instance memory cache (other instances' updates arrive through the in-process broker only when they share it), else the database",
    fallback: true,
};

/// Which account a handle names (`get_user_by_handle`): handles never change.
pub const USER_HANDLE: CachePolicy = CachePolicy {
    name: "user_handle",
    key_format: "{lowercased handle}",
    ttl: Duration::from_secs(300),
    invalidation: "none needed: a handle names one account for its life; a deleted account's entry leads to a profile miss and a 404",
    on_miss: "read the user by handle, then fill both this and `user_profile`",
    on_redis_failure: "default",
    fallback: true,
};

/// A page of one reader's home feed, rendered (`get_home_feed`): the feed's hot path.
pub const FEED_PAGE: CachePolicy = CachePolicy {
    name: "feed_page",
    key_format: "scope {reader_id}, key {page_token or first}:{limit}",
    ttl: Duration::from_secs(10),
    invalidation: "the reader's scope is bumped after every write that changes what they may see or how it renders for them: their ties (friendship, follow, block, both sides), their own posts and likes, fan-out and rebuilds of their feed; the namespace is bumped when a post is edited or deleted or an account is deleted; others' likes and comments (counts) and profile edits show within the TTL",
    on_miss: "read the page from the database (read-your-writes routing), then fill",
    on_redis_failure: "no fallback: a miss, and the database answers (a per-instance copy would miss other instances' invalidations, which would show a removed friend's posts)",
    fallback: false,
};

/// How long after an invalidating write the key is deleted a second time.
pub const SECOND_DELETE_AFTER: Duration = Duration::from_secs(1);

/// Every cached thing; add a row here and in the runbook.
pub const POLICIES: &[CachePolicy] = &[UNREAD_NOTIFICATIONS, USER_PROFILE, USER_HANDLE, FEED_PAGE];

/// A key inside a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    namespace: String,
    key: String,
    pub(crate) scope: Option<String>,
    pub(crate) fallback: bool,
}

impl CacheKey {
    /// `namespace` must be a policy name (lowercase letters, digits, `_`); `key` may be anything.
    pub fn new(namespace: impl Into<String>, key: impl Into<String>) -> Self {
        let namespace = namespace.into();
        debug_assert!(
            is_valid_namespace(&namespace),
            "cache namespace {namespace:?} must be [a-z0-9_]+"
        );
        Self {
            namespace,
            key: key.into(),
            scope: None,
            fallback: true,
        }
    }

    /// The scope inside the namespace, if the key has one.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Whether the in-process fallback may stand in for Redis ([`CachePolicy::fallback`]).
    pub fn fallback(&self) -> bool {
        self.fallback
    }

    /// The namespace (policy name).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key inside the namespace.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Whether `name` can be a namespace: it becomes a segment of Redis keys, so no `:` or whitespace.
pub fn is_valid_namespace(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The result of [`Cache::get`].
#[derive(Debug)]
pub enum Lookup {
    /// The cached bytes.
    Hit(Bytes),
    /// Not cached (or Redis failed); compute the value and pass this to [`Cache::fill`].
    Miss(Fill),
}

/// Where and under which namespace version a missed value may be stored.
#[derive(Debug, Clone, Copy)]
pub struct Fill {
    pub(crate) version: u64,
    /// The scope's version at the miss (0 for unscoped keys).
    pub(crate) scope_version: u64,
    pub(crate) target: FillTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FillTarget {
    /// The lookup went to the primary store (Redis, or memory when in process).
    Primary,
    /// The lookup fell back to the per-instance memory cache while Redis failed.
    Fallback,
    /// Redis failed and the key allows no fallback: the value is not stored anywhere.
    Nowhere,
}

/// Namespaced byte cache with TTLs. Object-safe (boxed futures) so services hold an `Arc<dyn Cache>`.
///
/// None of these fail: Redis errors turn into misses and best-effort writes, with the in-process fallback
/// while Redis is down, so callers only ever handle "hit" or "compute it".
pub trait Cache: Send + Sync {
    /// Looks `key` up.
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Lookup>;
    /// Stores a value computed after the miss that produced `fill` (dropped if the namespace moved on).
    fn fill<'a>(
        &'a self,
        key: &'a CacheKey,
        fill: Fill,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, ()>;
    /// Stores `value` under the current namespace version (write-through).
    fn set<'a>(&'a self, key: &'a CacheKey, value: Bytes, ttl: Duration) -> BoxFuture<'a, ()>;
    /// Removes one key.
    fn delete<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, ()>;
    /// Invalidates every key of `namespace` at once (bumps its version).
    fn invalidate_namespace<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, ()>;
    /// Invalidates every key of each of `scopes` in `namespace` (bumps their versions; one round trip). `ttl` is
    /// the policy's: the scope versions are kept for [`CachePolicy::scope_version_ttl`] of it. If Redis cannot
    /// be told, the whole namespace is invalidated once it answers again.
    fn invalidate_scopes<'a>(
        &'a self,
        namespace: &'a str,
        scopes: &'a [String],
        ttl: Duration,
    ) -> BoxFuture<'a, ()>;
}

impl dyn Cache {
    /// The usual read path: a hit decodes JSON; a miss (or undecodable entry) runs `compute` and caches its value
    /// for `policy.ttl`. Errors of `compute` pass through and are not cached.
    pub async fn get_or_compute<T, E, F, Fut>(
        &self,
        policy: &CachePolicy,
        key: &str,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_compute_key(policy, &policy.key(key), compute)
            .await
    }

    /// [`Self::get_or_compute`] for a key made by the caller (a [`CachePolicy::scoped_key`]).
    pub async fn get_or_compute_key<T, E, F, Fut>(
        &self,
        policy: &CachePolicy,
        key: &CacheKey,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let fill = match self.get(key).await {
            Lookup::Hit(bytes) => match serde_json::from_slice(&bytes) {
                Ok(value) => {
                    metrics::counter!("cache_requests_total", "policy" => policy.name, "result" => "hit")
                        .increment(1);
                    return Ok(value);
                }
                Err(e) => {
                    // An entry written by an older shape of T: recompute and overwrite rather than fail.
                    tracing::warn!(cache.policy = policy.name, error = %e, "undecodable cache entry");
                    None
                }
            },
            Lookup::Miss(fill) => Some(fill),
        };
        metrics::counter!("cache_requests_total", "policy" => policy.name, "result" => "miss")
            .increment(1);
        let value = compute().await?;
        match serde_json::to_vec(&value) {
            Ok(bytes) => match fill {
                Some(fill) => self.fill(key, fill, bytes.into(), policy.ttl).await,
                None => self.set(key, bytes.into(), policy.ttl).await,
            },
            Err(e) => {
                tracing::warn!(cache.policy = policy.name, error = %e, "cache value does not serialize")
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn policy_names_are_unique_namespaces() {
        let mut seen = HashSet::new();
        for policy in POLICIES {
            assert!(is_valid_namespace(policy.name), "{}", policy.name);
            assert!(seen.insert(policy.name), "duplicate policy {}", policy.name);
            assert!(!policy.ttl.is_zero(), "{} has no TTL", policy.name);
        }
    }

    #[test]
    fn runbook_lists_every_policy() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../runbooks/caching.md");
        let runbook = std::fs::read_to_string(path).expect("runbooks/caching.md exists");
        assert!(
            runbook.contains("## Policy table"),
            "the runbook keeps a policy table section"
        );
        for policy in POLICIES {
            assert!(
                runbook.contains(&format!("`{}`", policy.name)),
                "runbooks/caching.md does not list cache policy `{}`",
                policy.name
            );
        }
    }

    #[test]
    fn namespaces_reject_separators() {
        assert!(is_valid_namespace("user_profile"));
        assert!(!is_valid_namespace("user:profile"));
        assert!(!is_valid_namespace(""));
        assert!(!is_valid_namespace("User"));
    }
}
