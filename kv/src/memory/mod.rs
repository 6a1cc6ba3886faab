//! In-process implementations: the embedded deployment shape, and each Redis implementation's fallback.
//!
//! Each is a `std::sync::Mutex` around plain maps, never held across an await (the futures are ready at once).
//! Expired entries are dropped when touched and by an amortized sweep (every `len` operations), so memory stays
//! bounded by live keys without a background task. Time is `tokio::time::Instant`, so tests can pause it.

mod broker;
mod cache;
mod counter;
#[cfg(test)]
mod invariants;
mod presence;
mod rate_limit;

pub use broker::MemoryBroker;
pub use cache::MemoryCache;
pub use counter::MemoryCounter;
pub use presence::MemoryPresence;
pub use rate_limit::MemoryRateLimiter;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Now, from tokio's clock (pausable in tests), as a std instant for the pure algorithms.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Locks a map; a panic cannot leave a map operation half-done, so a poisoned lock is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Decides when to sweep a map: once per `len` operations, so the sweep costs O(1) amortized per operation.
#[derive(Debug, Default)]
pub(crate) struct Sweep {
    ops: usize,
}

impl Sweep {
    /// Minimum operations between sweeps, so tiny maps are not swept on every call.
    const MIN_INTERVAL: usize = 64;

    pub(crate) fn due(&mut self, len: usize) -> bool {
        self.ops += 1;
        if self.ops >= len.max(Self::MIN_INTERVAL) {
            self.ops = 0;
            true
        } else {
            false
        }
    }
}
