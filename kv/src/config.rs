//! `[redis]` configuration: where Redis is (optional), and every timeout, size and threshold as a named default.
//!
//! The server embeds [`RedisConfig`] under `[redis]`; `REDIS_URL` maps to `redis.url`. Without a URL every
//! primitive runs in process (the embedded deployment shape). Durations are whole milliseconds with the unit in
//! the key name, so a config file reads without a duration syntax.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// Default key prefix: every Redis key and pub/sub channel starts with `agora:`.
pub const DEFAULT_KEY_PREFIX: &str = "agora";
/// Default bb8 pool size. Connections are multiplexed, so a few carry many concurrent commands.
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// Default time to open one TCP connection to Redis (pool and pub/sub).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Default bound on one Redis call including pool checkout; past it the call falls back.
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 250;
/// Default number of consecutive Redis failures that opens the breaker.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// Default time the breaker stays open (calls go straight to the fallback) before one probe call.
pub const DEFAULT_BREAKER_COOLDOWN_MS: u64 = 5_000;
/// Default interval of PINGs on the pub/sub connection; a PING that times out forces a reconnect.
pub const DEFAULT_PUBSUB_PING_INTERVAL_MS: u64 = 5_000;
/// Default first delay before reconnecting the pub/sub connection; doubles up to the maximum.
pub const DEFAULT_PUBSUB_RECONNECT_MIN_DELAY_MS: u64 = 100;
/// Default maximum delay between pub/sub reconnect attempts.
pub const DEFAULT_PUBSUB_RECONNECT_MAX_DELAY_MS: u64 = 5_000;
/// Default buffer per broker channel and instance; a subscriber further behind loses the oldest messages.
/// The buffer is allocated whole when a channel gets its first subscriber (about 56 bytes a slot), and the
/// real-time gateway holds one channel per connected user: 64 keeps that near 3.5 KiB per user, while a
/// connection drains its channel into its own bounded queue as soon as a message arrives.
pub const DEFAULT_BROKER_CHANNEL_CAPACITY: usize = 64;
/// Default bound on entries of the in-process cache (the embedded cache, and the fallback when Redis is down).
pub const DEFAULT_MEMORY_CACHE_MAX_ENTRIES: usize = 10_000;

/// The `[redis]` section: optional Redis URL plus the limits of both implementations.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (`REDIS_URL`); `None` runs everything in process.
    pub url: Option<String>,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Maximum connections in the command pool.
    pub pool_size: u32,
    /// Time to open one connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Bound on one Redis call (checkout + round trip), in milliseconds.
    pub command_timeout_ms: u64,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// Time the open breaker fails fast before a probe, in milliseconds.
    pub breaker_cooldown_ms: u64,
    /// Interval between liveness PINGs on the pub/sub connection, in milliseconds.
    pub pubsub_ping_interval_ms: u64,
    /// First reconnect delay of the pub/sub connection, in milliseconds.
    pub pubsub_reconnect_min_delay_ms: u64,
    /// Largest reconnect delay of the pub/sub connection, in milliseconds.
    pub pubsub_reconnect_max_delay_ms: u64,
    /// Messages buffered per channel for slow subscribers on one instance.
    pub broker_channel_capacity: usize,
    /// Entries kept by the in-process cache.
    pub memory_cache_max_entries: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            breaker_cooldown_ms: DEFAULT_BREAKER_COOLDOWN_MS,
            pubsub_ping_interval_ms: DEFAULT_PUBSUB_PING_INTERVAL_MS,
            pubsub_reconnect_min_delay_ms: DEFAULT_PUBSUB_RECONNECT_MIN_DELAY_MS,
            pubsub_reconnect_max_delay_ms: DEFAULT_PUBSUB_RECONNECT_MAX_DELAY_MS,
            broker_channel_capacity: DEFAULT_BROKER_CHANNEL_CAPACITY,
            memory_cache_max_entries: DEFAULT_MEMORY_CACHE_MAX_ENTRIES,
        }
    }
}

// The URL may carry a password, so Debug never prints it.
/// What `agora config check` prints: every setting, the URL without its password.
impl serde::Serialize for RedisConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("RedisConfig", 12)?;
        if let Some(url) = &self.url {
            s.serialize_field("url", &redact_url(url))?;
        } else {
            s.skip_field("url")?;
        }
        s.serialize_field("key_prefix", &self.key_prefix)?;
        s.serialize_field("pool_size", &self.pool_size)?;
        s.serialize_field("connect_timeout_ms", &self.connect_timeout_ms)?;
        s.serialize_field("command_timeout_ms", &self.command_timeout_ms)?;
        s.serialize_field("breaker_threshold", &self.breaker_threshold)?;
        s.serialize_field("breaker_cooldown_ms", &self.breaker_cooldown_ms)?;
        s.serialize_field("pubsub_ping_interval_ms", &self.pubsub_ping_interval_ms)?;
        s.serialize_field(
            "pubsub_reconnect_min_delay_ms",
            &self.pubsub_reconnect_min_delay_ms,
        )?;
        s.serialize_field(
            "pubsub_reconnect_max_delay_ms",
            &self.pubsub_reconnect_max_delay_ms,
        )?;
        s.serialize_field("broker_channel_capacity", &self.broker_channel_capacity)?;
        s.serialize_field("memory_cache_max_entries", &self.memory_cache_max_entries)?;
        s.end()
    }
}

/// `redis://user:secret@host` → `redis://user:<redacted>@host` (also `redis://:secret@host`).
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => format!("{scheme}://<redacted>@{host}"),
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown_ms", &self.breaker_cooldown_ms)
            .field("pubsub_ping_interval_ms", &self.pubsub_ping_interval_ms)
            .field(
                "pubsub_reconnect_min_delay_ms",
                &self.pubsub_reconnect_min_delay_ms,
            )
            .field(
                "pubsub_reconnect_max_delay_ms",
                &self.pubsub_reconnect_max_delay_ms,
            )
            .field("broker_channel_capacity", &self.broker_channel_capacity)
            .field("memory_cache_max_entries", &self.memory_cache_max_entries)
            .finish()
    }
}

impl RedisConfig {
    /// An in-process configuration (no URL) with every default.
    pub fn in_process() -> Self {
        Self::default()
    }

    /// The same configuration pointed at `url`.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Checks every value and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Every problem of the section, each `redis.<key>: <what is wrong>` (the style of every
    /// configuration section, so the server reports them together with their sources).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.url
            && let Err(e) = redis::Client::open(url.as_str())
        {
            // The redis error text does not echo the URL, so no password reaches the message.
            problems.push(format!("redis.url: not a valid Redis URL: {e}"));
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            problems.push("redis.key_prefix: must be non-empty and without whitespace".to_owned());
        }
        let positive = [
            ("redis.pool_size", u64::from(self.pool_size)),
            ("redis.connect_timeout_ms", self.connect_timeout_ms),
            ("redis.command_timeout_ms", self.command_timeout_ms),
            ("redis.breaker_threshold", u64::from(self.breaker_threshold)),
            ("redis.breaker_cooldown_ms", self.breaker_cooldown_ms),
            (
                "redis.pubsub_ping_interval_ms",
                self.pubsub_ping_interval_ms,
            ),
            (
                "redis.pubsub_reconnect_min_delay_ms",
                self.pubsub_reconnect_min_delay_ms,
            ),
            (
                "redis.broker_channel_capacity",
                self.broker_channel_capacity as u64,
            ),
            (
                "redis.memory_cache_max_entries",
                self.memory_cache_max_entries as u64,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                problems.push(format!("{name}: must be greater than 0"));
            }
        }
        if self.pubsub_reconnect_max_delay_ms < self.pubsub_reconnect_min_delay_ms {
            problems.push(
                "redis.pubsub_reconnect_max_delay_ms: must be >= redis.pubsub_reconnect_min_delay_ms"
                    .to_owned(),
            );
        }
        problems
    }

    /// [`Self::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// [`Self::command_timeout_ms`] as a duration.
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    /// [`Self::breaker_cooldown_ms`] as a duration.
    pub fn breaker_cooldown(&self) -> Duration {
        Duration::from_millis(self.breaker_cooldown_ms)
    }

    /// [`Self::pubsub_ping_interval_ms`] as a duration.
    pub fn pubsub_ping_interval(&self) -> Duration {
        Duration::from_millis(self.pubsub_ping_interval_ms)
    }

    /// [`Self::pubsub_reconnect_min_delay_ms`] as a duration.
    pub fn pubsub_reconnect_min_delay(&self) -> Duration {
        Duration::from_millis(self.pubsub_reconnect_min_delay_ms)
    }

    /// [`Self::pubsub_reconnect_max_delay_ms`] as a duration.
    pub fn pubsub_reconnect_max_delay(&self) -> Duration {
        Duration::from_millis(self.pubsub_reconnect_max_delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_documented_defaults() {
        let parsed: RedisConfig = serde_json::from_str("{}").expect("empty section parses");
        assert_eq!(parsed, RedisConfig::default());
        assert_eq!(parsed.command_timeout_ms, DEFAULT_COMMAND_TIMEOUT_MS);
        assert!(parsed.url.is_none());
        parsed.validate().expect("defaults are valid");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<RedisConfig>(r#"{"pool_sise": 3}"#);
        assert!(err.is_err());
    }

    #[test]
    fn validate_reports_every_problem_and_hides_the_url() {
        let config = RedisConfig {
            url: Some("notredis://secret@host".to_owned()),
            pool_size: 0,
            command_timeout_ms: 0,
            ..RedisConfig::default()
        };
        let err = config.validate().expect_err("three problems");
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(!err.to_string().contains("secret"));
        assert!(!format!("{config:?}").contains("secret"));
    }
}
