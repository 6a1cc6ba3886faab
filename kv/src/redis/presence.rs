//! Redis presence: a sorted set per set name, scored by each member's expiry (Redis time, ms).
//!
//! Every member this process adds is mirrored in an in-process fallback, so during an outage
//! the fallback answers with this process's members (and an admission bound holds per
//! process). A change that cannot reach Redis (an outage, or a burst that trips the breaker) is
//! kept and replayed before the next presence call that reaches Redis:
//! - a removal, so a departed member does not linger there for its whole TTL (for the gateway,
//!   a lease that would count against the user's connection limit and show them online);
//! - an addition (with what is left of its TTL), so a member admitted during the outage counts
//!   in the cluster-wide bound and shows online to other processes once Redis is back.
//!
//! Re-adding a member cancels its pending removal, removing it cancels its pending addition.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::Script;

use super::{RedisCore, millis};
use crate::BoxFuture;
use crate::memory::MemoryPresence;
use crate::presence::Presence;

/// KEYS[1] = set; ARGV = member, ttl ms. Scores the member with its expiry, drops expired members, and keeps the
/// key itself alive as long as its longest-lived member (so an abandoned set disappears on its own).
const ADD_SOURCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
";
static ADD: LazyLock<Script> = LazyLock::new(|| Script::new(ADD_SOURCE));

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

/// Changes of each kind kept for replay at most; beyond, removals are left to expire on their
/// own and additions stay known to this process only.
const MAX_PENDING: usize = 100_000;

/// Kept changes replayed in one pipeline at most.
const REPLAY_BATCH: usize = 1_000;

/// A (set, member) pair.
type Entry = (String, String);

/// Changes that did not reach Redis.
#[derive(Debug, Default)]
struct Pending {
    removals: HashSet<Entry>,
    /// With the member's expiry on this process's clock.
    additions: HashMap<Entry, Instant>,
    /// A replay is in flight (one at a time: every presence call would otherwise resend the
    /// same batch while Redis struggles).
    replaying: bool,
}

/// The Redis [`Presence`].
#[derive(Debug)]
pub(crate) struct RedisPresence {
    core: Arc<RedisCore>,
    fallback: MemoryPresence,
    pending: Mutex<Pending>,
}

impl RedisPresence {
    pub(crate) fn new(core: Arc<RedisCore>) -> Self {
        Self {
            core,
            fallback: MemoryPresence::new(),
            pending: Mutex::new(Pending::default()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replays the changes that did not reach Redis, in one pipeline; those that fail again
    /// stay pending. Expired additions are dropped unreplayed.
    async fn flush_pending(&self) {
        let now = Instant::now();
        let (removals, additions): (Vec<Entry>, Vec<(Entry, Duration)>) = {
            let mut pending = self.pending();
            if pending.replaying || (pending.removals.is_empty() && pending.additions.is_empty()) {
                return;
            }
            pending.additions.retain(|_, expires| *expires > now);
            let removals: Vec<Entry> = pending
                .removals
                .iter()
                .take(REPLAY_BATCH)
                .cloned()
                .collect();
            let additions: Vec<(Entry, Duration)> = pending
                .additions
                .iter()
                .take(REPLAY_BATCH)
                .map(|(entry, expires)| (entry.clone(), *expires - now))
                .collect();
            if removals.is_empty() && additions.is_empty() {
                return;
            }
            pending.replaying = true;
            (removals, additions)
        };
        let result = self
            .core
            .run("presence.replay", |mut conn| {
                let mut pipe = redis::pipe();
                for (set, member) in &removals {
                    pipe.cmd("ZREM")
                        .arg(self.core.key("presence", set))
                        .arg(member)
                        .ignore();
                }
                // EVAL rather than EVALSHA: a pipeline cannot fall back on NOSCRIPT, and this
                // path is rare.
                for ((set, member), left) in &additions {
                    pipe.cmd("EVAL")
                        .arg(ADD_SOURCE)
                        .arg(1)
                        .arg(self.core.key("presence", set))
                        .arg(member)
                        .arg(millis(*left))
                        .ignore();
                }
                async move { pipe.query_async::<()>(&mut conn).await }
            })
            .await;
        let now = Instant::now();
        let mut pending = self.pending();
        pending.replaying = false;
        if result.is_err() {
            return;
        }
        // A member added or removed while the replay was in flight may have been overtaken by
        // it in Redis: this process's fallback holds its latest state, so what disagrees with
        // it is kept for the next replay.
        for entry in removals {
            pending.removals.remove(&entry);
            if let Some(expires) = self.fallback.expiry_at(&entry.0, &entry.1, now) {
                pending.additions.insert(entry, expires);
            }
        }
        for (entry, _) in additions {
            pending.additions.remove(&entry);
            let gone = self.fallback.expiry_at(&entry.0, &entry.1, now).is_none();
            if gone && pending.removals.len() < MAX_PENDING {
                pending.removals.insert(entry);
            }
        }
    }

    fn keep_removal(&self, set: &str, member: &str) {
        let mut pending = self.pending();
        let entry = (set.to_owned(), member.to_owned());
        pending.additions.remove(&entry);
        if pending.removals.len() < MAX_PENDING {
            pending.removals.insert(entry);
        }
    }

    fn keep_addition(&self, set: &str, member: &str, ttl: Duration) {
        let mut pending = self.pending();
        let entry = (set.to_owned(), member.to_owned());
        pending.removals.remove(&entry);
        if pending.additions.len() < MAX_PENDING {
            pending.additions.insert(entry, Instant::now() + ttl);
        }
    }

    /// Forgets a kept change of `member`: a newer one is on its way to Redis.
    fn settle(&self, set: &str, member: &str) {
        let mut pending = self.pending();
        if !pending.removals.is_empty() || !pending.additions.is_empty() {
            let entry = (set.to_owned(), member.to_owned());
            pending.removals.remove(&entry);
            pending.additions.remove(&entry);
        }
    }

    async fn add_impl(&self, set: &str, member: &str, ttl: Duration) {
        let key = self.core.key("presence", set);
        self.settle(set, member);
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
        self.fallback.add(set, member, ttl).await;
        if result.is_err() {
            self.core.health().count_fallback("presence");
            self.keep_addition(set, member, ttl);
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
        self.settle(set, member);
        // Members admitted during an outage reach Redis first, so they count in its bound.
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
            Ok(n) => {
                let admitted = usize::try_from(n).ok();
                if admitted.is_some() {
                    self.fallback.add(set, member, ttl).await;
                }
                admitted
            }
            // Without Redis the bound holds per process: this process's members only.
            Err(_) => {
                self.core.health().count_fallback("presence");
                let admitted = self.fallback.admit(set, member, ttl, max).await;
                if admitted.is_some() {
                    self.keep_addition(set, member, ttl);
                } else {
                    // A timed-out admission may still have run in Redis.
                    self.keep_removal(set, member);
                }
                admitted
            }
        }
    }

    async fn remove_impl(&self, set: &str, member: &str) {
        self.fallback.remove(set, member).await;
        let key = self.core.key("presence", set);
        self.settle(set, member);
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
            self.keep_removal(set, member);
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
