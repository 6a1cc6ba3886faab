//! The policy the contract declares on each operation — `x-agora-role`, `x-agora-rate-limit` and
//! `x-agora-feature` — and the three sources the adapter asks to enforce it.
//!
//! The generator copies each operation's policy into its [`Operation`](super::Operation) static,
//! and [`Call`](super::Call) enforces it in one fixed order before any input is looked at:
//! authenticate → role → rate limit → feature gate → validate → service. So a caller who may not
//! call an operation learns nothing about its body schema, an invalid request still spends the
//! caller's budget, and a switched-off feature does no work at all.
//!
//! The server provides the sources: who holds which role (read fresh, once per request), the
//! budgets of each rate-limit class, and the feature flags. Defaults are safe for a server that
//! declares none of them: every role-gated operation is refused, nothing is rate limited, and every
//! feature is on.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use uuid::Uuid;

use super::context::{Principal, RequestCtx};
use super::error::ServiceError;
use super::observe::Operation;

/// The future every policy source returns.
pub type PolicyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 'a>>;

/// Who spends a rate-limit budget: the user when the operation is authenticated, else the client
/// address (which is also given for authenticated calls, for classes that limit both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    /// The authenticated caller, if any.
    pub user: Option<Uuid>,
    /// The client's address (see [`super::TrustedProxies`]).
    pub ip: IpAddr,
}

/// Decides `x-agora-role`.
pub trait Authorizer: Send + Sync + 'static {
    /// Reads the caller's current role (never the token's claim, which lags) and passes when it
    /// grants `required`; otherwise records the refusal (the audit log) and returns
    /// [`ServiceError::Forbidden`]. Called at most once per request.
    fn authorize<'a>(
        &'a self,
        ctx: &'a RequestCtx<Principal>,
        operation: &'static Operation,
        required: &'static str,
    ) -> PolicyFuture<'a, ()>;
}

/// Spends `x-agora-rate-limit` budgets.
pub trait RateLimiter: Send + Sync + 'static {
    /// Consumes one request of `class` for `subject`, or answers [`ServiceError::RateLimited`].
    fn consume<'a>(&'a self, class: &'static str, subject: Subject) -> PolicyFuture<'a, ()>;
}

/// Whether an `x-agora-feature` is on for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureState {
    /// The operation runs.
    On,
    /// The operation answers 503 `feature_disabled` with this `Retry-After`.
    Off {
        /// Seconds a client should wait before asking again.
        retry_after_secs: u64,
    },
}

/// Reads feature flags. Configuration provides one today; a flag service (per-user rollouts)
/// implements the same trait.
pub trait FeatureFlags: Send + Sync + 'static {
    /// The state of `feature` for `caller` (`None` on public operations).
    fn state<'a>(
        &'a self,
        feature: &'static str,
        caller: Option<&'a Principal>,
    ) -> PolicyFuture<'a, FeatureState>;
}

/// Spends the `rate_limit` budget of `subject`, then checks the `feature` gate for `caller`: the
/// one order every operation and every client frame is admitted in.
pub(crate) async fn spend_and_gate(
    rate_limiter: &dyn RateLimiter,
    features: &dyn FeatureFlags,
    rate_limit: Option<&'static str>,
    feature: Option<&'static str>,
    subject: Subject,
    caller: Option<&Principal>,
) -> Result<(), ServiceError> {
    if let Some(class) = rate_limit {
        rate_limiter.consume(class, subject).await?;
    }
    if let Some(feature) = feature
        && let FeatureState::Off { retry_after_secs } = features.state(feature, caller).await?
    {
        return Err(ServiceError::FeatureDisabled {
            feature: feature.to_owned(),
            retry_after_secs,
        });
    }
    Ok(())
}

/// The default [`Authorizer`]: nobody holds any role.
#[derive(Debug, Default)]
pub struct NoRoles;

impl Authorizer for NoRoles {
    fn authorize<'a>(
        &'a self,
        _ctx: &'a RequestCtx<Principal>,
        _operation: &'static Operation,
        required: &'static str,
    ) -> PolicyFuture<'a, ()> {
        Box::pin(async move {
            Err(ServiceError::Forbidden {
                message: format!("this operation requires the {required} role"),
            })
        })
    }
}

/// The default [`RateLimiter`]: no limits.
#[derive(Debug, Default)]
pub struct Unlimited;

impl RateLimiter for Unlimited {
    fn consume<'a>(&'a self, _class: &'static str, _subject: Subject) -> PolicyFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// The default [`FeatureFlags`]: every feature is on.
#[derive(Debug, Default)]
pub struct AllOn;

impl FeatureFlags for AllOn {
    fn state<'a>(
        &'a self,
        _feature: &'static str,
        _caller: Option<&'a Principal>,
    ) -> PolicyFuture<'a, FeatureState> {
        Box::pin(async { Ok(FeatureState::On) })
    }
}
