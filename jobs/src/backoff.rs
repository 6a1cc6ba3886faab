//! The wait between attempts: exponential, capped, with jitter so that jobs which failed together
//! (a dependency was down) do not all retry in the same instant.

use std::time::Duration;

/// Exponential backoff: attempt `n` (1-based, the one that just failed) waits a random time
/// between half and all of `min(base · 2^(n-1), max)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure (before jitter).
    pub base: Duration,
    /// No wait is longer than this.
    pub max: Duration,
}

impl Backoff {
    /// 2 s doubling up to 1 h: eight attempts span about an hour and a half.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(3600),
    };

    /// The upper bound of the wait after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << exp)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The wait after failed attempt `attempt`, with `unit` (uniform in `[0, 1)`) choosing the
    /// point in the upper half of the window.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ceiling.mul_f64(0.5 + unit / 2.0)
    }

    /// The wait after failed attempt `attempt`, jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_unit())
    }
}

/// A uniform value in `[0, 1)`. Jitter needs spread, not unpredictability: a v4 UUID's random
/// bits will do.
fn random_unit() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() >> 75) as u64; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(2), Duration::from_secs(2));
        assert_eq!(b.ceiling(4), Duration::from_secs(8));
        assert_eq!(b.ceiling(5), Duration::from_secs(10));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(10));
    }

    proptest! {
        #[test]
        fn delay_stays_in_the_upper_half_of_the_window(attempt in 0u32..100, unit in any::<f64>()) {
            let b = Backoff::DEFAULT;
            let d = b.delay_with(attempt, unit);
            prop_assert!(d <= b.ceiling(attempt));
            prop_assert!(d >= b.ceiling(attempt) / 2);
            prop_assert!(d <= b.max);
        }

        #[test]
        fn ceilings_never_shrink(attempt in 1u32..100) {
            let b = Backoff::DEFAULT;
            prop_assert!(b.ceiling(attempt) <= b.ceiling(attempt + 1));
        }
    }

    #[test]
    fn random_units_are_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
