//! Property tests of the hand-written in-process implementations, including concurrent use from many threads.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{MemoryCounter, MemoryPresence, MemoryRateLimiter};
use crate::rate_limit::Quota;

fn quota(rate: u32, per_ms: u64, burst: u32) -> Quota {
    Quota::new(
        NonZeroU32::new(rate).expect("rate > 0"),
        Duration::from_millis(per_ms),
        NonZeroU32::new(burst).expect("burst > 0"),
    )
}

proptest! {
    /// Threads racing on one key never get more than burst + elapsed / T between them: check-and-update is atomic.
    #[test]
    fn concurrent_gcra_respects_the_bound(
        threads in 2usize..6,
        rate in 1u32..20,
        burst in 1u32..10,
        steps_us in proptest::collection::vec(0u64..50_000, 1..60),
    ) {
        let limiter = Arc::new(MemoryRateLimiter::new());
        let q = quota(rate, 1_000, burst);
        let t0 = Instant::now();
        let steps = Arc::new(steps_us);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let limiter = limiter.clone();
                let steps = steps.clone();
                std::thread::spawn(move || {
                    let mut now = t0;
                    let mut allowed = Vec::new();
                    for step in steps.iter() {
                        now += Duration::from_micros(*step);
                        if limiter.check_at("k", &q, now).is_allowed() {
                            allowed.push(now);
                        }
                    }
                    allowed
                })
            })
            .collect();
        let mut allowed: Vec<Instant> = Vec::new();
        for h in handles {
            allowed.extend(h.join().expect("thread"));
        }
        // Threads interleave arbitrarily, so bound by the latest instant any allowed request carried.
        let latest = allowed.iter().max().copied().unwrap_or(t0);
        let bound = u128::from(burst) + (latest - t0).as_nanos() / q.emission_interval().as_nanos();
        prop_assert!(allowed.len() as u128 <= bound, "{} allowed > bound {}", allowed.len(), bound);
    }

    /// Presence equals a model where each member lives until its latest add + ttl, minus removals.
    #[test]
    fn presence_matches_model(ops in proptest::collection::vec((0u8..3, 0u8..4, 1u64..500, 0u64..300), 1..80)) {
        let presence = MemoryPresence::new();
        let mut model: HashMap<String, Instant> = HashMap::new();
        let t0 = Instant::now();
        let mut now = t0;
        for (kind, member, ttl_ms, advance_ms) in ops {
            now += Duration::from_millis(advance_ms);
            let member = format!("m{member}");
            match kind {
                0 | 1 => {
                    presence.add_at("set", &member, Duration::from_millis(ttl_ms), now);
                    model.insert(member, now + Duration::from_millis(ttl_ms));
                }
                _ => {
                    presence.remove_now("set", &member);
                    model.remove(&member);
                }
            }
            let mut expected: Vec<String> =
                model.iter().filter(|(_, e)| **e > now).map(|(m, _)| m.clone()).collect();
            expected.sort();
            prop_assert_eq!(presence.members_at("set", now), expected);
        }
        // Long after every TTL nothing is left, and the set itself is gone.
        prop_assert!(presence.members_at("set", now + Duration::from_secs(3_600)).is_empty());
        prop_assert!(presence.is_empty());
    }

    /// Concurrent increments are never lost within a window.
    #[test]
    fn concurrent_increments_are_not_lost(threads in 2usize..6, per_thread in 1u64..200) {
        let counter = Arc::new(MemoryCounter::new());
        let now = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        counter.incr_at("k", 1, Duration::from_secs(60), now);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        prop_assert_eq!(counter.incr_at("k", 0, Duration::from_secs(60), now), threads as u64 * per_thread);
    }
}
