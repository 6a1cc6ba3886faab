//! Rate limiting with GCRA (generic cell rate algorithm): one timestamp per key, no windows, smooth refill.
//!
//! A quota of `rate` requests `per` period has an emission interval `T = per / rate`; `burst` requests may
//! arrive at once. The state is the theoretical arrival time (TAT) of the next request. A request at `now`:
//! `new_tat = max(tat, now) + T`; it is allowed iff `new_tat - now <= burst × T`, and then TAT becomes `new_tat`.
//! Hence over any interval of length `e` at most `burst + e / T` requests are allowed.
//!
//! Redis runs the same arithmetic atomically in a Lua script on Redis server time (µs), so all instances share
//! one limit; the in-process version uses the same `gcra` function per instance.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use crate::BoxFuture;

/// A rate limit: `rate` requests per `per`, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per period.
    pub rate: NonZeroU32,
    /// The period.
    pub per: Duration,
    /// Requests allowed at once after idling.
    pub burst: NonZeroU32,
}

impl Quota {
    /// `rate` requests per `per`, `burst` at once.
    pub const fn new(rate: NonZeroU32, per: Duration, burst: NonZeroU32) -> Self {
        Self { rate, per, burst }
    }

    /// Time between two requests at the sustained rate (at least 1µs, the resolution of the Redis clock).
    pub fn emission_interval(&self) -> Duration {
        (self.per / self.rate.get()).max(Duration::from_micros(1))
    }

    /// How far ahead of now the TAT may run: `burst × T`.
    pub fn burst_offset(&self) -> Duration {
        self.emission_interval().saturating_mul(self.burst.get())
    }
}

/// The answer of [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; `remaining` more requests would be allowed right now.
    Allowed {
        /// Requests still allowed at this instant.
        remaining: u32,
    },
    /// Refuse (HTTP 429); the next request is allowed after `retry_after`.
    Limited {
        /// Time until a request would be allowed (for `Retry-After`).
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// GCRA rate limiter keyed by caller-chosen strings (e.g. `login:{ip}`).
pub trait RateLimiter: Send + Sync {
    /// Counts one request against `key` under `quota`, atomically.
    fn check<'a>(&'a self, key: &'a str, quota: Quota) -> BoxFuture<'a, Decision>;
}

/// One GCRA step: the decision for a request at `now` given the stored TAT, and the TAT to store if allowed.
pub(crate) fn gcra(
    tat: Option<Instant>,
    now: Instant,
    quota: &Quota,
) -> (Decision, Option<Instant>) {
    let t = quota.emission_interval();
    let offset = quota.burst_offset();
    let start = match tat {
        Some(tat) if tat > now => tat,
        _ => now,
    };
    let new_tat = start + t;
    let ahead = new_tat - now;
    if ahead > offset {
        (
            Decision::Limited {
                retry_after: ahead - offset,
            },
            None,
        )
    } else {
        let remaining = (offset - ahead).as_nanos() / t.as_nanos();
        (
            Decision::Allowed {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            },
            Some(new_tat),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn quota(rate: u32, per_ms: u64, burst: u32) -> Quota {
        Quota::new(
            NonZeroU32::new(rate).expect("rate > 0"),
            Duration::from_millis(per_ms),
            NonZeroU32::new(burst).expect("burst > 0"),
        )
    }

    #[test]
    fn burst_then_sustained_rate() {
        let q = quota(10, 1_000, 3);
        let t0 = Instant::now();
        let mut tat = None;
        for expected_remaining in [2, 1, 0] {
            let (d, next) = gcra(tat, t0, &q);
            assert_eq!(
                d,
                Decision::Allowed {
                    remaining: expected_remaining
                }
            );
            tat = next;
        }
        let (d, next) = gcra(tat, t0, &q);
        assert_eq!(
            d,
            Decision::Limited {
                retry_after: Duration::from_millis(100)
            }
        );
        assert!(next.is_none());
        // After one emission interval exactly one more request fits.
        let (d, _) = gcra(tat, t0 + Duration::from_millis(100), &q);
        assert!(d.is_allowed());
    }

    proptest! {
        /// Over any schedule, allowed requests never exceed burst + elapsed / T, and a refused request's
        /// retry_after is exact: retrying then is allowed.
        #[test]
        fn never_allows_more_than_burst_plus_rate(
            rate in 1u32..50,
            per_ms in 1u64..2_000,
            burst in 1u32..20,
            gaps_us in proptest::collection::vec(0u64..200_000, 1..200),
        ) {
            let q = quota(rate, per_ms, burst);
            let t = q.emission_interval();
            let t0 = Instant::now();
            let mut now = t0;
            let mut tat = None;
            let mut allowed: u128 = 0;
            for gap in gaps_us {
                now += Duration::from_micros(gap);
                let (decision, next) = gcra(tat, now, &q);
                match decision {
                    Decision::Allowed { .. } => {
                        allowed += 1;
                        tat = next;
                    }
                    Decision::Limited { retry_after } => {
                        prop_assert!(!retry_after.is_zero());
                        let (later, _) = gcra(tat, now + retry_after, &q);
                        prop_assert!(later.is_allowed());
                    }
                }
                let elapsed = (now - t0).as_nanos();
                let bound = u128::from(burst) + elapsed / t.as_nanos();
                prop_assert!(allowed <= bound, "allowed {allowed} > bound {bound}");
            }
        }

        /// After idling for burst × T the full burst is available again.
        #[test]
        fn idle_restores_full_burst(rate in 1u32..50, per_ms in 1u64..2_000, burst in 1u32..20, used in 0u32..40) {
            let q = quota(rate, per_ms, burst);
            let t0 = Instant::now();
            let mut tat = None;
            for _ in 0..used {
                if let (Decision::Allowed { .. }, next) = gcra(tat, t0, &q) {
                    tat = next;
                }
            }
            let later = t0 + q.burst_offset();
            let (d, _) = gcra(tat, later, &q);
            prop_assert_eq!(d, Decision::Allowed { remaining: burst - 1 });
        }
    }
}
