//! In-process counters with expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Sweep, lock, now};
use crate::BoxFuture;
use crate::counter::Counter;

#[derive(Debug, Default)]
struct Inner {
    counts: HashMap<String, (u64, Instant)>,
    sweep: Sweep,
}

/// Counters for one process.
#[derive(Debug, Default)]
pub struct MemoryCounter {
    inner: Mutex<Inner>,
}

impl MemoryCounter {
    /// An empty counter store.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn incr_at(&self, key: &str, by: u64, ttl: Duration, now: Instant) -> u64 {
        let mut inner = lock(&self.inner);
        let len = inner.counts.len();
        if inner.sweep.due(len) {
            inner.counts.retain(|_, (_, expires)| *expires > now);
        }
        let entry = inner.counts.entry(key.to_owned()).or_insert((0, now + ttl));
        if entry.1 <= now {
            *entry = (0, now + ttl);
        }
        entry.0 = entry.0.saturating_add(by);
        entry.0
    }
}

impl Counter for MemoryCounter {
    fn incr_with_expiry<'a>(&'a self, key: &'a str, by: u64, ttl: Duration) -> BoxFuture<'a, u64> {
        Box::pin(std::future::ready(self.incr_at(key, by, ttl, now())))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, u64> {
        let now = now();
        let value = match lock(&self.inner).counts.get(key) {
            Some((value, expires)) if *expires > now => *value,
            _ => 0,
        };
        Box::pin(std::future::ready(value))
    }
}
