//! Atomic counters with expiry: the fixed-window building block of rate limits and quotas.

use std::time::Duration;

use crate::BoxFuture;

/// Counters shared by all instances (Redis) or per instance (in process / fallback).
pub trait Counter: Send + Sync {
    /// Adds `by` to `key` and returns the new value. The first increment of a key (or the first after it expired)
    /// sets its expiry to `ttl`; later increments keep that expiry, so the key counts one fixed window.
    fn incr_with_expiry<'a>(&'a self, key: &'a str, by: u64, ttl: Duration) -> BoxFuture<'a, u64>;
    /// The current value of `key` (0 when absent or expired, or when no store answers).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, u64>;
}
