//! Redis counters with expiry; per-instance in-process counters while Redis fails.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::{RedisCore, millis};
use crate::BoxFuture;
use crate::counter::Counter;
use crate::memory::MemoryCounter;

/// KEYS[1] = counter; ARGV = by, ttl ms. The expiry is set only when the key has none, i.e. on the first
/// increment of a window, in the same atomic step as the increment (INCR then EXPIRE from the client could leave
/// a counter without expiry forever if the client died in between).
static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
",
    )
});

/// The Redis [`Counter`].
#[derive(Debug)]
pub(crate) struct RedisCounter {
    core: Arc<RedisCore>,
    fallback: MemoryCounter,
}

impl RedisCounter {
    pub(crate) fn new(core: Arc<RedisCore>) -> Self {
        Self {
            core,
            fallback: MemoryCounter::new(),
        }
    }

    async fn incr_impl(&self, key: &str, by: u64, ttl: Duration) -> u64 {
        let redis_key = self.core.key("counter", key);
        // INCRBY takes a signed 64-bit increment.
        let step = i64::try_from(by).unwrap_or(i64::MAX);
        let result = self
            .core
            .run("counter.incr", |mut conn| async move {
                INCR.key(&redis_key)
                    .arg(step)
                    .arg(millis(ttl))
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(value) => u64::try_from(value).unwrap_or(0),
            Err(_) => {
                self.core.health().count_fallback("counter");
                self.fallback.incr_with_expiry(key, by, ttl).await
            }
        }
    }

    async fn get_impl(&self, key: &str) -> u64 {
        let redis_key = self.core.key("counter", key);
        let result = self
            .core
            .run("counter.get", |mut conn| async move {
                redis::cmd("GET")
                    .arg(&redis_key)
                    .query_async::<Option<i64>>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(value) => value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
            Err(_) => {
                self.core.health().count_fallback("counter");
                self.fallback.get(key).await
            }
        }
    }
}

impl Counter for RedisCounter {
    fn incr_with_expiry<'a>(&'a self, key: &'a str, by: u64, ttl: Duration) -> BoxFuture<'a, u64> {
        Box::pin(self.incr_impl(key, by, ttl))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, u64> {
        Box::pin(self.get_impl(key))
    }
}
