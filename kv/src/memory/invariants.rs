//! Property tests of the hand-written in-process implementations, including concurrent use from many threads.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use bytes::Bytes;

use super::{MemoryCache, MemoryCounter, MemoryPresence, MemoryRateLimiter};
use crate::cache::{CacheKey, Fill, FillTarget, Lookup};
use crate::rate_limit::Quota;

/// Key `k` of the cache model: (scope, key) in namespace `n`; scope `None` is an unscoped key.
fn model_key(scope: Option<u8>, key: u8) -> CacheKey {
    let mut k = CacheKey::new("n", format!("k{key}"));
    k.scope = scope.map(|s| format!("s{s}"));
    k
}

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

    /// The cache equals a model in which a value is visible from its write until the next invalidation
    /// covering its key (its scope, its namespace) or its deletion, and a fill computed after a miss lands
    /// only if no such invalidation came between the miss and the fill: the read-compute-invalidate race
    /// never resurrects data, scoped or not.
    #[test]
    fn cache_matches_model(ops in proptest::collection::vec((0u8..6, proptest::option::of(0u8..2), 0u8..2, 0u8..4), 1..120)) {
        let cache = MemoryCache::new(1_000);
        let ttl = Duration::from_secs(3_600);
        // (scope, key) → visible value; (scope, key) → (fill of the last miss, invalidation epoch at it).
        let mut visible: HashMap<(Option<u8>, u8), u8> = HashMap::new();
        let mut fills: HashMap<(Option<u8>, u8), (Fill, u64)> = HashMap::new();
        // Invalidation epochs: per scope (None = unscoped keys, covered by namespace bumps only) and namespace.
        let mut scope_epoch: HashMap<Option<u8>, u64> = HashMap::new();
        let mut namespace_epoch = 0u64;
        let epoch = |scope_epoch: &HashMap<Option<u8>, u64>, ns: u64, scope: Option<u8>| {
            ns * 1_000_000 + scope.map_or(0, |_| scope_epoch.get(&scope).copied().unwrap_or(0))
        };
        for (op, scope, key, value) in ops {
            let k = model_key(scope, key);
            let at = (scope, key);
            match op {
                0 => match cache.lookup(&k, FillTarget::Primary) {
                    Lookup::Hit(v) => prop_assert_eq!(Some(v.as_ref()[0]), visible.get(&at).copied(), "hit {:?}", at),
                    Lookup::Miss(fill) => {
                        prop_assert_eq!(visible.get(&at), None, "miss {:?}", at);
                        fills.insert(at, (fill, epoch(&scope_epoch, namespace_epoch, scope)));
                    }
                },
                1 => {
                    if let Some((fill, seen)) = fills.remove(&at) {
                        cache.store(&k, Some((fill.version, fill.scope_version)), Bytes::from(vec![value]), ttl);
                        if seen == epoch(&scope_epoch, namespace_epoch, scope) {
                            visible.insert(at, value);
                        }
                    }
                }
                2 => {
                    cache.store(&k, None, Bytes::from(vec![value]), ttl);
                    visible.insert(at, value);
                }
                3 => {
                    cache.remove(&k);
                    visible.remove(&at);
                }
                4 => match scope {
                    Some(s) => {
                        cache.bump_scopes("n", &[format!("s{s}")]);
                        *scope_epoch.entry(Some(s)).or_insert(0) += 1;
                        visible.retain(|(sc, _), _| *sc != Some(s));
                    }
                    None => {
                        cache.bump("n");
                        namespace_epoch += 1;
                        visible.clear();
                    }
                },
                _ => {
                    // Another namespace's invalidations touch nothing here.
                    cache.bump("other");
                    cache.bump_scopes("other", &["s0".to_owned()]);
                }
            }
        }
        for ((scope, key), value) in &visible {
            let lookup = cache.lookup(&model_key(*scope, *key), FillTarget::Primary);
            prop_assert!(matches!(&lookup, Lookup::Hit(v) if v.as_ref() == [*value]), "{:?} {:?}", (scope, key), lookup);
        }
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
