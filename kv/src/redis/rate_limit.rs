//! Redis GCRA rate limiter (one limit shared by all instances); per-instance limiter while Redis fails.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::RedisCore;
use crate::BoxFuture;
use crate::memory::MemoryRateLimiter;
use crate::rate_limit::{Decision, Quota, RateLimiter};

/// KEYS[1] = TAT key; ARGV = emission interval µs, burst offset µs. Returns {1, remaining} or {0, retry µs}.
/// Same arithmetic as `rate_limit::gcra`, on Redis server time so every instance shares one clock.
/// Numbers are formatted with `%.0f`: Lua would print a µs timestamp in exponent notation and lose digits.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local offset = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > offset then
  return {0, ahead - offset}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil(ahead / 1000)))
return {1, math.floor((offset - ahead) / interval)}
",
    )
});

/// The Redis [`RateLimiter`].
#[derive(Debug)]
pub(crate) struct RedisRateLimiter {
    core: Arc<RedisCore>,
    fallback: MemoryRateLimiter,
}

impl RedisRateLimiter {
    pub(crate) fn new(core: Arc<RedisCore>) -> Self {
        Self {
            core,
            fallback: MemoryRateLimiter::new(),
        }
    }

    async fn check_impl(&self, key: &str, quota: Quota) -> Decision {
        let redis_key = self.core.key("rate", key);
        let interval = micros(quota.emission_interval());
        let offset = micros(quota.burst_offset());
        let result = self
            .core
            .run("rate_limit.check", |mut conn| async move {
                GCRA.key(&redis_key)
                    .arg(interval)
                    .arg(offset)
                    .invoke_async::<(u8, u64)>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok((1, remaining)) => Decision::Allowed {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            },
            Ok((_, retry_us)) => Decision::Limited {
                retry_after: Duration::from_micros(retry_us),
            },
            Err(_) => {
                self.core.health().count_fallback("rate_limit");
                self.fallback.check(key, quota).await
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl RateLimiter for RedisRateLimiter {
    fn check<'a>(&'a self, key: &'a str, quota: Quota) -> BoxFuture<'a, Decision> {
        Box::pin(self.check_impl(key, quota))
    }
}
