//! Sets with a TTL per member, for presence ("who is online in this room"): members expire individually.
//!
//! In Redis a set is a sorted set scored by each member's expiry time (Redis server time, so instances with
//! skewed clocks agree); reads drop expired members first. Re-adding a member is the heartbeat that extends it.

use std::time::Duration;

use crate::BoxFuture;

/// Presence sets.
pub trait Presence: Send + Sync {
    /// Adds `member` to `set` (or refreshes it) until `ttl` from now.
    fn add<'a>(&'a self, set: &'a str, member: &'a str, ttl: Duration) -> BoxFuture<'a, ()>;
    /// Adds `member` to `set` until `ttl` from now unless the set already holds `max` other
    /// unexpired members, in one atomic step (so concurrent callers cannot overshoot `max`):
    /// the set's size with `member` in it, or `None` when it is full. Re-admitting a member
    /// refreshes it and always succeeds.
    fn admit<'a>(
        &'a self,
        set: &'a str,
        member: &'a str,
        ttl: Duration,
        max: usize,
    ) -> BoxFuture<'a, Option<usize>>;
    /// Removes `member` from `set` now.
    fn remove<'a>(&'a self, set: &'a str, member: &'a str) -> BoxFuture<'a, ()>;
    /// The unexpired members of `set`, sorted.
    fn members<'a>(&'a self, set: &'a str) -> BoxFuture<'a, Vec<String>>;
}
