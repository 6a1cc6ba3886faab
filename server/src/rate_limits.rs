//! Abuse limits per request class, on the kv GCRA limiter (atomic in Redis, so limits hold across
//! instances; per instance, counted in `kv_fallback_total`, while Redis is down).
//!
//! Classes: `auth` (per client IP and per account on login, per IP on register and refresh, per
//! account on password change), `write` (per user, on every operation that stores user content:
//! profile updates now, posts when they land) and `chat` (per user, per message sent).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use agora_api::rt::{RateLimitPolicy, ServiceError};
use agora_kv::{Decision, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

/// `requests` per `window_secs`, all of them allowed in a burst after a quiet window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Requests per window (and the burst).
    pub requests: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// `[rate_limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sign-in, registration and refresh attempts per client IP. Default 30 per 60 s.
    pub auth_per_ip: Limit,
    /// Sign-in attempts per account (the login as typed, normalized). Default 5 per 60 s.
    pub auth_per_account: Limit,
    /// Content writes per user. Default 60 per 60 s.
    pub write_per_user: Limit,
    /// Chat messages per user. Default 300 per 60 s.
    pub chat_per_user: Limit,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            auth_per_ip: Limit {
                requests: 30,
                window_secs: 60,
            },
            auth_per_account: Limit {
                requests: 5,
                window_secs: 60,
            },
            write_per_user: Limit {
                requests: 60,
                window_secs: 60,
            },
            chat_per_user: Limit {
                requests: 300,
                window_secs: 60,
            },
        }
    }
}

impl RateLimitConfig {
    /// Problems, for the configuration report.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (name, l) in [
            ("auth_per_ip", self.auth_per_ip),
            ("auth_per_account", self.auth_per_account),
            ("write_per_user", self.write_per_user),
            ("chat_per_user", self.chat_per_user),
        ] {
            if l.requests == 0 || l.window_secs == 0 {
                p.push(format!(
                    "rate_limits.{name}: requests and window_secs must be greater than 0"
                ));
            }
        }
        p
    }
}

/// The limits of this instance.
pub struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    config: RateLimitConfig,
}

impl RateLimits {
    /// Limits on `limiter` (the kv one: Redis or in process).
    pub fn new(limiter: Arc<dyn RateLimiter>, config: RateLimitConfig) -> Self {
        Self { limiter, config }
    }

    /// An authentication attempt from `ip`, for `account` when one is named.
    pub async fn check_auth(&self, ip: IpAddr, account: Option<&str>) -> Result<(), ServiceError> {
        self.check(
            "auth-ip",
            &format!("rl:auth:ip:{ip}"),
            self.config.auth_per_ip,
        )
        .await?;
        if let Some(account) = account {
            let account = account.trim().to_lowercase();
            self.check(
                "auth-account",
                &format!("rl:auth:account:{account}"),
                self.config.auth_per_account,
            )
            .await?;
        }
        Ok(())
    }

    /// A content write by `user`.
    pub async fn check_write(&self, user: uuid::Uuid) -> Result<(), ServiceError> {
        self.check(
            "write",
            &format!("rl:write:user:{user}"),
            self.config.write_per_user,
        )
        .await
    }

    /// A chat message sent by `user`.
    pub async fn check_chat(&self, user: uuid::Uuid) -> Result<(), ServiceError> {
        self.check(
            "chat",
            &format!("rl:chat:user:{user}"),
            self.config.chat_per_user,
        )
        .await
    }

    async fn check(&self, name: &str, key: &str, limit: Limit) -> Result<(), ServiceError> {
        let Some(requests) = NonZeroU32::new(limit.requests) else {
            return Ok(());
        };
        let quota = Quota::new(requests, Duration::from_secs(limit.window_secs), requests);
        match self.limiter.check(key, quota).await {
            Decision::Allowed { .. } => Ok(()),
            Decision::Limited { retry_after } => {
                metrics::counter!("rate_limited_total", "policy" => name.to_owned()).increment(1);
                // Round up: retrying at the advertised second must succeed.
                let retry_after_secs =
                    retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Err(ServiceError::RateLimited {
                    message: "too many attempts; retry later".into(),
                    retry_after_secs: retry_after_secs.max(1),
                    policy: Some(RateLimitPolicy {
                        name: name.to_owned(),
                        quota: limit.requests,
                        window_secs: limit.window_secs,
                    }),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_account_limit_holds_whatever_the_ip() {
        let kv = agora_kv::Kv::in_process(&agora_kv::RedisConfig::default());
        let config = RateLimitConfig {
            auth_per_ip: Limit {
                requests: 100,
                window_secs: 60,
            },
            auth_per_account: Limit {
                requests: 3,
                window_secs: 60,
            },
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::new(kv.rate_limiter().clone(), config);
        for i in 0..3u8 {
            let ip = IpAddr::from([10, 0, 0, i]);
            limits
                .check_auth(ip, Some("Ann"))
                .await
                .expect("within the limit");
        }
        match limits
            .check_auth(IpAddr::from([10, 0, 0, 9]), Some(" ann "))
            .await
        {
            Err(ServiceError::RateLimited {
                retry_after_secs,
                policy: Some(p),
                ..
            }) => {
                assert!(retry_after_secs >= 1);
                assert_eq!(p.name, "auth-account");
            }
            other => panic!("expected 429, got {other:?}"),
        }
        limits
            .check_auth(IpAddr::from([10, 0, 0, 9]), Some("bob"))
            .await
            .expect("another account");
    }
}

#[cfg(test)]
mod class_tests {
    use super::*;

    #[tokio::test]
    async fn write_and_chat_are_separate_budgets_per_user() {
        let kv = agora_kv::Kv::in_process(&agora_kv::RedisConfig::default());
        let two = Limit {
            requests: 2,
            window_secs: 60,
        };
        let config = RateLimitConfig {
            write_per_user: two,
            chat_per_user: two,
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::new(kv.rate_limiter().clone(), config);
        let (ann, bob) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        for _ in 0..2 {
            limits
                .check_write(ann)
                .await
                .expect("within the write limit");
        }
        match limits.check_write(ann).await {
            Err(ServiceError::RateLimited {
                policy: Some(p), ..
            }) => assert_eq!((p.name.as_str(), p.quota), ("write", 2)),
            other => panic!("expected 429, got {other:?}"),
        }
        limits
            .check_chat(ann)
            .await
            .expect("chat has its own budget");
        limits
            .check_write(bob)
            .await
            .expect("bob has his own budget");
    }
}
