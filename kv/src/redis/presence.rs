//! Redis presence: a sorted set per set name, scored by each member's expiry (Redis time, ms).
//!
//! A removal that cannot reach Redis (an outage, or a burst that trips the breaker) is kept and
//! retried before the next presence call that reaches Redis, so a departed member does not
//! linger there for its whole TTL: for the gateway, that member is a lease that would count
//! against the user's connection limit and show them online. Re-adding the member cancels its
//! pending removal.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use redis::Script;

use super::{RedisCore, millis};
use crate::BoxFuture;
use crate::memory::MemoryPresence;
use crate::presence::Presence;

/// KEYS[1] = set; ARGV = member, ttl ms. Scores the member with its expiry, drops expired members, and keeps the
/// key itself alive as long as its longest-lived member (so an abandoned set disappears on its own).
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
",
    )
});

/// KEYS[1] = set; ARGV = member, ttl ms, max. Like ADD unless the set holds `max` other unexpired
/// members; returns the set's size with the member, or -1 when it is full.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return -1
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return redis.call('ZCARD', KEYS[1])
",
    )
});

/// KEYS[1] = set. Drops expired members and returns the rest.
static MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
",
    )
});

/// Removals kept for retry at most; beyond, the oldest are left to expire on their own.
const MAX_PENDING_REMOVALS: usize = 100_000;

/// The Redis [`Presence`].
#[derive(Debug)]
pub(crate) struct RedisPresence {
    core: Arc<RedisCore>,
    fallback: MemoryPresence,
    /// (Redis key, member) removals that did not reach Redis.
    pending: Mutex<HashSet<(String, String)>>,
}

impl RedisPresence {
    pub(crate) fn new(core: Arc<RedisCore>) -> Self {
        Self {
            core,
            fallback: MemoryPresence::new(),
            pending: Mutex::new(HashSet::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Retries the removals that did not reach Redis, in one pipeline; those that fail again
    /// stay pending.
    async fn flush_pending(&self) {
        let batch: Vec<(String, String)> = {
            let pending = self.pending();
            if pending.is_empty() {
                return;
            }
            pending.iter().take(1_000).cloned().collect()
        };
        let result = self
            .core
            .run("presence.remove", |mut conn| {
                let mut pipe = redis::pipe();
                for (key, member) in &batch {
                    pipe.cmd("ZREM").arg(key).arg(member).ignore();
                }
                async move { pipe.query_async::<()>(&mut conn).await }
            })
            .await;
        if result.is_ok() {
            let mut pending = self.pending();
            for done in &batch {
                pending.remove(done);
            }
        }
    }

    fn keep_for_retry(&self, key: String, member: &str) {
        let mut pending = self.pending();
        if pending.len() < MAX_PENDING_REMOVALS {
            pending.insert((key, member.to_owned()));
        }
    }

    fn cancel_removal(&self, key: &str, member: &str) {
        let mut pending = self.pending();
        if !pending.is_empty() {
            pending.remove(&(key.to_owned(), member.to_owned()));
        }
    }

    async fn add_impl(&self, set: &str, member: &str, ttl: Duration) {
        let key = self.core.key("presence", set);
        self.cancel_removal(&key, member);
        self.flush_pending().await;
        let result = self
            .core
            .run("presence.add", |mut conn| async move {
                ADD.key(&key)
                    .arg(member)
                    .arg(millis(ttl))
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await;
        if result.is_err() {
            self.core.health().count_fallback("presence");
            self.fallback.add(set, member, ttl).await;
        }
    }

    async fn admit_impl(
        &self,
        set: &str,
        member: &str,
        ttl: Duration,
        max: usize,
    ) -> Option<usize> {
        let key = self.core.key("presence", set);
        self.cancel_removal(&key, member);
        self.flush_pending().await;
        let result = self
            .core
            .run("presence.admit", |mut conn| async move {
                ADMIT
                    .key(&key)
                    .arg(member)
                    .arg(millis(ttl))
                    .arg(max)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(n) => usize::try_from(n).ok(),
            // Without Redis the bound holds per instance: this process's members only.
            Err(_) => {
                self.core.health().count_fallback("presence");
                self.fallback.admit(set, member, ttl, max).await
            }
        }
    }

    async fn remove_impl(&self, set: &str, member: &str) {
        // Also from the fallback, where the member may have been added during an outage.
        self.fallback.remove(set, member).await;
        let key = self.core.key("presence", set);
        let result = self
            .core
            .run("presence.remove", |mut conn| {
                let key = key.clone();
                async move {
                    redis::cmd("ZREM")
                        .arg(&key)
                        .arg(member)
                        .query_async::<i64>(&mut conn)
                        .await
                }
            })
            .await;
        if result.is_err() {
            self.core.health().count_fallback("presence");
            self.keep_for_retry(key, member);
        }
    }

    async fn members_impl(&self, set: &str) -> Vec<String> {
        self.flush_pending().await;
        let key = self.core.key("presence", set);
        let result = self
            .core
            .run("presence.members", |mut conn| async move {
                MEMBERS
                    .key(&key)
                    .invoke_async::<Vec<String>>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(mut members) => {
                members.sort();
                members
            }
            Err(_) => {
                self.core.health().count_fallback("presence");
                self.fallback.members(set).await
            }
        }
    }
}

impl Presence for RedisPresence {
    fn add<'a>(&'a self, set: &'a str, member: &'a str, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(self.add_impl(set, member, ttl))
    }

    fn admit<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        ttl: Duration,
        max: usize,
    ) -> BoxFuture<'a, Option<usize>> {
        Box::pin(self.admit_impl(set, member, ttl, max))
    }

    fn remove<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.remove_impl(set, member))
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, Vec<String>> {
        Box::pin(self.members_impl(set))
    }
}
