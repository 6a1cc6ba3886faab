//! Redis presence: a sorted set per set name, scored by each member's expiry (Redis time, ms).

use std::sync::{Arc, LazyLock};
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

/// The Redis [`Presence`].
#[derive(Debug)]
pub(crate) struct RedisPresence {
    core: Arc<RedisCore>,
    fallback: MemoryPresence,
}

impl RedisPresence {
    pub(crate) fn new(core: Arc<RedisCore>) -> Self {
        Self {
            core,
            fallback: MemoryPresence::new(),
        }
    }

    async fn add_impl(&self, set: &str, member: &str, ttl: Duration) {
        let key = self.core.key("presence", set);
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

    async fn remove_impl(&self, set: &str, member: &str) {
        // Also from the fallback, where the member may have been added during an outage.
        self.fallback.remove(set, member).await;
        let key = self.core.key("presence", set);
        let result = self
            .core
            .run("presence.remove", |mut conn| async move {
                redis::cmd("ZREM")
                    .arg(&key)
                    .arg(member)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        if result.is_err() {
            self.core.health().count_fallback("presence");
        }
    }

    async fn members_impl(&self, set: &str) -> Vec<String> {
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

    fn remove<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.remove_impl(set, member))
    }

    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, Vec<String>> {
        Box::pin(self.members_impl(set))
    }
}
