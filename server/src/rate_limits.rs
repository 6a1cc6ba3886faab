//! Abuse limits per request class, on the kv GCRA limiter (atomic in Redis, so limits hold across
//! instances; per instance, counted in `kv_fallback_total`, while Redis is down).
//!
//! The contract names each operation's class (`x-agora-rate-limit`) and the generated adapter
//! spends it through [`agora_api::rt::RateLimiter`] before the request is validated, so nothing
//! here is called by hand — except the per-account budget of `login`, whose account is only known
//! once the body is read. A class is spent per user on authenticated operations and per client
//! address on public ones. Classes: `auth` (per client address always, plus per account: the
//! signed-in user, or the login as typed), `write` (content writes), `session` (sign-outs and
//! session revocations), `read` (looking up other users), `chat` (messages), and any other class
//! the contract names, budgeted under `rate_limits.classes.<class>`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use agora_api::rt::{PolicyFuture, RateLimitPolicy, ServiceError, Subject};
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
    /// Look-ups of other users (profiles) per user. Default 600 per 60 s.
    pub read_per_user: Limit,
    /// Sign-outs and session revocations per user. Default 30 per 60 s.
    pub session_per_user: Limit,
    /// Budgets of the other classes the contract names, per user (per client address on public
    /// operations). Default: `analytics` (`track_events`) 60 per 60 s.
    pub classes: BTreeMap<String, Limit>,
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
            read_per_user: Limit {
                requests: 600,
                window_secs: 60,
            },
            session_per_user: Limit {
                requests: 30,
                window_secs: 60,
            },
            // `track_events`: its own budget, so a flood of analytics cannot spend `write`.
            classes: BTreeMap::from([(
                "analytics".to_owned(),
                Limit {
                    requests: 60,
                    window_secs: 60,
                },
            )]),
        }
    }
}

impl RateLimitConfig {
    /// Problems, for the configuration report: every limit must allow something, and every
    /// class the contract names must have a budget.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let named = [
            ("auth_per_ip".to_owned(), self.auth_per_ip),
            ("auth_per_account".to_owned(), self.auth_per_account),
            ("write_per_user".to_owned(), self.write_per_user),
            ("chat_per_user".to_owned(), self.chat_per_user),
            ("read_per_user".to_owned(), self.read_per_user),
            ("session_per_user".to_owned(), self.session_per_user),
        ];
        let custom = self
            .classes
            .iter()
            .map(|(class, l)| (format!("classes.{class}"), *l));
        for (name, l) in named.into_iter().chain(custom) {
            if l.requests == 0 || l.window_secs == 0 {
                p.push(format!(
                    "rate_limits.{name}: requests and window_secs must be greater than 0"
                ));
            }
        }
        for class in self.classes.keys() {
            if self.built_in(class).is_some() {
                p.push(format!(
                    "rate_limits.classes.{class}: `{class}` has its own settings (rate_limits.{class}_per_…)"
                ));
            }
        }
        for class in agora_api::RATE_LIMIT_CLASSES {
            if self.limit_of(class).is_none() {
                p.push(format!(
                    "rate_limits.classes.{class}: the contract names rate-limit class `{class}`, which has no budget; set rate_limits.classes.{class}.requests and .window_secs"
                ));
            }
        }
        p
    }

    /// The per-user (or per-address) budget of a class (for `auth`, its per-account half).
    fn limit_of(&self, class: &str) -> Option<Limit> {
        self.built_in(class)
            .or_else(|| self.classes.get(class).copied())
    }

    /// The budget of a class that has a named setting of its own.
    fn built_in(&self, class: &str) -> Option<Limit> {
        match class {
            "auth" => Some(self.auth_per_account),
            "write" => Some(self.write_per_user),
            "chat" => Some(self.chat_per_user),
            "read" => Some(self.read_per_user),
            "session" => Some(self.session_per_user),
            _ => None,
        }
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

    /// Spends one request of `class` for `subject` (what the adapter calls).
    pub async fn consume(&self, class: &str, subject: Subject) -> Result<(), ServiceError> {
        if class == "auth" {
            self.check(
                "auth-ip",
                &format!("rl:auth:ip:{}", subject.ip),
                self.config.auth_per_ip,
            )
            .await?;
            if let Some(user) = subject.user {
                self.check_auth_account(&format!("user:{user}")).await?;
            }
            return Ok(());
        }
        let limit = self.config.limit_of(class).ok_or_else(|| {
            // The configuration check refuses a contract class without a budget.
            ServiceError::internal(format!("rate-limit class {class:?} has no budget"))
        })?;
        let key = match subject.user {
            Some(user) => format!("rl:{class}:user:{user}"),
            None => format!("rl:{class}:ip:{}", subject.ip),
        };
        self.check(class, &key, limit).await
    }

    /// A sign-in attempt for `account` (a login as typed, or `user:<id>`), whatever the address:
    /// the per-account half of the `auth` class, which `login` spends once it has read the body.
    pub async fn check_auth_account(&self, account: &str) -> Result<(), ServiceError> {
        let account = account.trim().to_lowercase();
        self.check(
            "auth-account",
            &format!("rl:auth:account:{account}"),
            self.config.auth_per_account,
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

impl agora_api::rt::RateLimiter for RateLimits {
    fn consume<'a>(&'a self, class: &'static str, subject: Subject) -> PolicyFuture<'a, ()> {
        Box::pin(RateLimits::consume(self, class, subject))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn from(ip: IpAddr) -> Subject {
        Subject { user: None, ip }
    }

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
            limits.consume("auth", from(ip)).await.expect("per ip");
            limits
                .check_auth_account("Ann")
                .await
                .expect("within the limit");
        }
        match limits.check_auth_account(" ann ").await {
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
            .check_auth_account("bob")
            .await
            .expect("another account");
    }
}

#[cfg(test)]
mod class_tests {
    use super::*;
    use std::net::IpAddr;

    fn user(id: uuid::Uuid) -> Subject {
        Subject {
            user: Some(id),
            ip: IpAddr::from([127, 0, 0, 1]),
        }
    }

    #[tokio::test]
    async fn classes_are_separate_budgets_per_user() {
        let kv = agora_kv::Kv::in_process(&agora_kv::RedisConfig::default());
        let two = Limit {
            requests: 2,
            window_secs: 60,
        };
        let config = RateLimitConfig {
            write_per_user: two,
            chat_per_user: two,
            classes: BTreeMap::from([("uploads".to_owned(), two)]),
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::new(kv.rate_limiter().clone(), config);
        let (ann, bob) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        for _ in 0..2 {
            limits
                .consume("write", user(ann))
                .await
                .expect("within the write limit");
        }
        match limits.consume("write", user(ann)).await {
            Err(ServiceError::RateLimited {
                policy: Some(p), ..
            }) => assert_eq!((p.name.as_str(), p.quota), ("write", 2)),
            other => panic!("expected 429, got {other:?}"),
        }
        limits
            .consume("chat", user(ann))
            .await
            .expect("chat has its own budget");
        limits
            .consume("write", user(bob))
            .await
            .expect("bob has his own budget");
        for _ in 0..2 {
            limits.consume("uploads", user(ann)).await.expect("custom");
        }
        assert!(limits.consume("uploads", user(ann)).await.is_err());
    }

    #[test]
    fn a_contract_class_without_a_budget_is_a_configuration_problem() {
        let config = RateLimitConfig::default();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert!(config.limit_of("no_such_class").is_none());
        let mut shadowing = RateLimitConfig::default();
        shadowing.classes.insert(
            "write".to_owned(),
            Limit {
                requests: 1,
                window_secs: 1,
            },
        );
        assert_eq!(shadowing.problems().len(), 1, "{:?}", shadowing.problems());
    }
}
