//! In-process GCRA rate limiter (per instance).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::{Sweep, lock, now};
use crate::BoxFuture;
use crate::rate_limit::{Decision, Quota, RateLimiter, gcra};

#[derive(Debug, Default)]
struct Inner {
    tats: HashMap<String, Instant>,
    sweep: Sweep,
}

/// Rate limiter for one process.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    inner: Mutex<Inner>,
}

impl MemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn check_at(&self, key: &str, quota: &Quota, now: Instant) -> Decision {
        let mut inner = lock(&self.inner);
        let len = inner.tats.len();
        if inner.sweep.due(len) {
            // A TAT in the past carries no state: a fresh key behaves the same.
            inner.tats.retain(|_, tat| *tat > now);
        }
        let (decision, new_tat) = gcra(inner.tats.get(key).copied(), now, quota);
        if let Some(tat) = new_tat {
            inner.tats.insert(key.to_owned(), tat);
        }
        decision
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn check<'a>(&'a self, key: &'a str, quota: Quota) -> BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(self.check_at(key, &quota, now())))
    }
}
