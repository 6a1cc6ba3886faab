//! Errors of this crate: configuration problems (public) and Redis call failures (internal, turned into fallbacks).

use std::time::Duration;

/// The `[redis]` section is invalid; lists every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid [redis] configuration: {}", problems.join("; "))]
pub struct ConfigError {
    /// One sentence per problem, naming the config key.
    pub problems: Vec<String>,
}

/// Why one Redis call did not produce a value. Never reaches the API: callers fall back instead.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KvError {
    /// The breaker is open: Redis was not tried.
    #[error("redis breaker is open")]
    BreakerOpen,
    /// The call (checkout + round trip) exceeded the command timeout.
    #[error("redis call timed out after {0:?}")]
    Timeout(Duration),
    /// No pooled connection could be obtained.
    #[error("redis pool: {0}")]
    Pool(String),
    /// Redis or the connection reported an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl KvError {
    /// Whether this failure says Redis is unavailable (and so counts towards opening the breaker).
    ///
    /// A reply that does not decode into the expected type is a bug in this crate, not an outage; tripping the
    /// breaker on it would move every instance to the fallback for no reason.
    pub(crate) fn counts_as_outage(&self) -> bool {
        match self {
            KvError::BreakerOpen => false,
            KvError::Timeout(_) | KvError::Pool(_) => true,
            KvError::Redis(e) => e.kind() != redis::ErrorKind::UnexpectedReturnType,
        }
    }

    /// Short label for metrics and logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            KvError::BreakerOpen => "breaker_open",
            KvError::Timeout(_) => "timeout",
            KvError::Pool(_) => "pool",
            KvError::Redis(_) => "redis",
        }
    }
}
