//! Redis implementations: a bb8-redis pool for commands, one pub/sub connection, every call behind the breaker.
//!
//! [`RedisCore::run`] is the single door to Redis: breaker admission, pool checkout and the command under one
//! timeout (`command_timeout_ms`), outcome recorded in the breaker, errors counted. Each primitive turns an error
//! into its in-process fallback, so no Redis failure reaches a caller.
//!
//! Pool notes: bb8 tests each connection with a PING on checkout (bb8-redis cannot otherwise tell that a
//! multiplexed connection died, and a dead one would stay in the pool forever). That costs one extra round trip
//! per call; TODO-perf: a manager that detects a closed multiplexed connection without the PING.
//!
//! Key layout (all under `key_prefix`): `{prefix}:cache:{namespace}:version`,
//! `{prefix}:cache:{namespace}:v{version}:{key}`, `{prefix}:counter:{key}`, `{prefix}:rate:{key}`,
//! `{prefix}:presence:{set}`, channels `{prefix}:ch:{channel}`. Scripts build the versioned cache key inside
//! Lua, which a single Redis (or a primary with replicas) allows; TODO-cluster: hash tags before Redis Cluster.

mod broker;
mod cache;
mod counter;
mod presence;
mod pubsub;
mod rate_limit;

pub(crate) use broker::RedisBroker;
pub(crate) use cache::RedisCache;
pub(crate) use counter::RedisCounter;
pub(crate) use presence::RedisPresence;
pub(crate) use pubsub::{PubSubTiming, spawn as spawn_pubsub};
pub(crate) use rate_limit::RedisRateLimiter;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::Pool;
use redis::RedisResult;
use redis::aio::MultiplexedConnection;

use crate::breaker::{Breaker, BreakerConfig, BreakerPhase, Outcome};
use crate::config::RedisConfig;
use crate::error::{ConfigError, KvError};
use crate::status::Health;

/// What the Redis primitives of one instance share.
#[derive(Debug)]
pub(crate) struct RedisCore {
    pool: Pool<RedisConnectionManager>,
    health: Arc<Health>,
    command_timeout: Duration,
    prefix: String,
}

impl RedisCore {
    /// Builds the pool without connecting: start-up (and readiness) never waits for Redis.
    pub(crate) fn new(
        url: &str,
        config: &RedisConfig,
    ) -> Result<(Arc<Self>, redis::Client), ConfigError> {
        let invalid = |e: redis::RedisError| ConfigError {
            problems: vec![format!("redis.url: not a valid Redis URL: {e}")],
        };
        let client = redis::Client::open(url).map_err(invalid)?;
        let manager =
            RedisConnectionManager::new(client.get_connection_info().clone()).map_err(invalid)?;
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .connection_timeout(config.connect_timeout())
            .build_unchecked(manager);
        let breaker = Breaker::new(BreakerConfig {
            threshold: config.breaker_threshold,
            cooldown: config.breaker_cooldown(),
        });
        let core = Arc::new(Self {
            pool,
            health: Health::redis(breaker),
            command_timeout: config.command_timeout(),
            prefix: config.key_prefix.clone(),
        });
        Ok((core, client))
    }

    pub(crate) fn health(&self) -> &Arc<Health> {
        &self.health
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// `{prefix}:{kind}:{rest}`.
    pub(crate) fn key(&self, kind: &str, rest: &str) -> String {
        format!("{}:{kind}:{rest}", self.prefix)
    }

    fn breaker(&self) -> &Breaker {
        self.health
            .breaker
            .as_ref()
            .expect("a Redis core is always built with a breaker")
    }

    /// Runs one Redis call through the breaker under the command timeout.
    ///
    /// `f` gets a handle on a pooled multiplexed connection; the pooled guard is held until `f` finishes, so the
    /// pool size still bounds concurrent calls.
    pub(crate) async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, KvError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let breaker = self.breaker();
        let Some(permit) = breaker.admit(now()) else {
            metrics::counter!("redis_calls_total", "op" => op, "result" => "breaker_open")
                .increment(1);
            return Err(KvError::BreakerOpen);
        };
        let call = async {
            let pooled = self
                .pool
                .get()
                .await
                .map_err(|e| KvError::Pool(e.to_string()))?;
            let conn = (*pooled).clone();
            let result = f(conn).await.map_err(KvError::from);
            drop(pooled);
            result
        };
        let result = match tokio::time::timeout(self.command_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(KvError::Timeout(self.command_timeout)),
        };
        let outcome = match &result {
            Err(e) if e.counts_as_outage() => Outcome::Failure,
            _ => Outcome::Success,
        };
        let probe = permit.is_probe();
        if let Some(phase) = breaker.record(permit, outcome, now()) {
            self.on_transition(phase, probe);
        }
        match &result {
            Ok(_) => {
                metrics::counter!("redis_calls_total", "op" => op, "result" => "ok").increment(1)
            }
            Err(e) => {
                tracing::debug!(redis.op = op, error = %e, "redis call failed");
                metrics::counter!("redis_calls_total", "op" => op, "result" => e.kind())
                    .increment(1);
            }
        }
        result
    }

    fn on_transition(&self, phase: BreakerPhase, probe: bool) {
        match phase {
            BreakerPhase::Open => {
                tracing::warn!(
                    redis.probe = probe,
                    "redis breaker open: using in-process fallbacks"
                );
                metrics::counter!("redis_breaker_transitions_total", "to" => "open").increment(1);
            }
            BreakerPhase::Closed { failures: 0 } if probe => {
                tracing::info!("redis breaker closed: redis is back");
                metrics::counter!("redis_breaker_transitions_total", "to" => "closed").increment(1);
            }
            _ => {}
        }
        self.health.publish();
    }
}

/// The clock of the breaker: tokio's, so tests with paused time control cool-downs.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Milliseconds for Redis `PX` arguments: at least 1 (Redis rejects 0) and saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
