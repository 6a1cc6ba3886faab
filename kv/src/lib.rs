//! Redis-or-in-process primitives (cache, broker, counters, rate limits, presence) behind one breaker.
//!
//! [`Kv::connect`] is the entry point. Without `redis.url` every primitive is in process (the embedded
//! deployment); with it, each primitive talks to Redis and falls back to its in-process twin when Redis fails,
//! so the API keeps answering (see `runbooks/caching.md`):
//!
//! | primitive | Redis | fallback while Redis fails |
//! |---|---|---|
//! | [`Cache`] | versioned keys, TTL | per-instance memory cache (staleness bounded by TTL) |
//! | [`Broker`] | PUBLISH + one pub/sub connection | delivery to this instance's subscribers only |
//! | [`Counter`] | INCRBY + expiry (Lua) | per-instance counters |
//! | [`RateLimiter`] | GCRA in Lua on Redis time | per-instance GCRA (each instance allows the full quota) |
//! | [`Presence`] | sorted set scored by expiry | per-instance sets |
//!
//! Traits return [`BoxFuture`]s rather than using `async fn`, so they stay object-safe: services hold
//! `Arc<dyn Cache>` etc. and tests swap implementations. The box costs one allocation per call, noise next to a
//! network round trip. Typed helpers (`get_or_compute`, `publish_json`) are inherent methods on `dyn Cache` /
//! `dyn Broker` because generic methods cannot be part of an object-safe trait.

pub mod breaker;
pub mod broker;
pub mod cache;
pub mod config;
pub mod counter;
mod error;
pub mod memory;
pub mod presence;
pub mod rate_limit;
mod redis;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use broker::{Broker, Delivery, Received, Subscription};
pub use cache::{Cache, CacheKey, CachePolicy, Fill, Lookup, POLICIES};
pub use config::RedisConfig;
pub use counter::Counter;
pub use error::ConfigError;
pub use presence::Presence;
pub use rate_limit::{Decision, Quota, RateLimiter};
pub use status::{KvStatus, RedisState};

use crate::broker::LocalHub;
use crate::memory::{MemoryBroker, MemoryCache, MemoryCounter, MemoryPresence, MemoryRateLimiter};
use crate::redis::{PubSubTiming, spawn_pubsub};
use crate::redis::{
    RedisBroker, RedisCache, RedisCore, RedisCounter, RedisPresence, RedisRateLimiter,
};
use crate::status::Health;

/// A boxed `Send` future: what the object-safe traits of this crate return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The primitives of one instance, built once at start-up and shared through the application state.
/// Cloning is cheap (shared handles).
#[derive(Clone)]
pub struct Kv {
    cache: Arc<dyn Cache>,
    broker: Arc<dyn Broker>,
    counter: Arc<dyn Counter>,
    rate_limiter: Arc<dyn RateLimiter>,
    presence: Arc<dyn Presence>,
    health: Arc<Health>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Kv {
    /// Builds the primitives: Redis-backed when `config.url` is set, in process otherwise.
    ///
    /// Never waits for Redis and never fails because Redis is unreachable (connections are made on first use and
    /// the pub/sub task connects in the background); fails only on an invalid configuration. Must be called
    /// inside a tokio runtime (it spawns the pub/sub task).
    pub async fn connect(config: &RedisConfig) -> Result<Kv, ConfigError> {
        config.validate()?;
        let Some(url) = config.url.as_deref() else {
            return Ok(Self::in_process(config));
        };
        let (core, client) = RedisCore::new(url, config)?;
        let hub = Arc::new(LocalHub::new(config.broker_channel_capacity));
        let (commands, receiver) = tokio::sync::mpsc::unbounded_channel();
        spawn_pubsub(
            client,
            config.key_prefix.clone(),
            hub.clone(),
            core.health().clone(),
            PubSubTiming {
                connect_timeout: config.connect_timeout(),
                command_timeout: config.command_timeout(),
                ping_interval: config.pubsub_ping_interval(),
                reconnect_min_delay: config.pubsub_reconnect_min_delay(),
                reconnect_max_delay: config.pubsub_reconnect_max_delay(),
            },
            receiver,
        );
        tracing::info!(redis.key_prefix = %config.key_prefix, "kv primitives use redis");
        Ok(Kv {
            cache: Arc::new(RedisCache::new(
                core.clone(),
                config.memory_cache_max_entries,
            )),
            broker: Arc::new(RedisBroker::new(core.clone(), hub, commands)),
            counter: Arc::new(RedisCounter::new(core.clone())),
            rate_limiter: Arc::new(RedisRateLimiter::new(core.clone())),
            presence: Arc::new(RedisPresence::new(core.clone())),
            health: core.health().clone(),
        })
    }

    /// In-process primitives only (the embedded deployment); `config.url` is ignored.
    pub fn in_process(config: &RedisConfig) -> Kv {
        Kv {
            cache: Arc::new(MemoryCache::new(config.memory_cache_max_entries)),
            broker: Arc::new(MemoryBroker::new(config.broker_channel_capacity)),
            counter: Arc::new(MemoryCounter::new()),
            rate_limiter: Arc::new(MemoryRateLimiter::new()),
            presence: Arc::new(MemoryPresence::new()),
            health: Health::disabled(),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// Counters with expiry.
    pub fn counter(&self) -> &Arc<dyn Counter> {
        &self.counter
    }

    /// The GCRA rate limiter.
    pub fn rate_limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.rate_limiter
    }

    /// Presence sets.
    pub fn presence(&self) -> &Arc<dyn Presence> {
        &self.presence
    }

    /// Redis health (`disabled`, `up`, `degraded`, `down`) for GET /v1/meta; never a readiness condition.
    pub fn redis_state(&self) -> RedisState {
        self.health.state()
    }

    /// Redis health with pub/sub details.
    pub fn status(&self) -> KvStatus {
        self.health.status()
    }
}
