//! Where a read goes: replica selection, fallback to the primary, read-your-writes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// A boxed future, for the object-safe [`WriteMarks`].
pub type MarkFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Shares "this user wrote recently" between instances, so read-your-writes holds behind a load
/// balancer too (the server backs it with Redis, falling back per instance when Redis is down).
pub trait WriteMarks: Send + Sync + 'static {
    /// Marks `user` for `window`.
    fn mark(&self, user: Uuid, window: Duration) -> MarkFuture<'_, ()>;
    /// Whether `user` is marked.
    fn is_marked(&self, user: Uuid) -> MarkFuture<'_, bool>;
}

/// How a read may be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPolicy {
    /// Any healthy replica (or the primary).
    Anyone,
    /// On behalf of a user: the primary while that user's last write is recent, so nobody sees
    /// their own write vanish because of replica lag.
    ForUser(Uuid),
    /// Always the primary (reads that feed a write decision).
    Primary,
}

/// Users who wrote recently, with when. Bounded: expired entries are swept on insert.
#[derive(Debug, Default)]
pub(crate) struct RecentWriters {
    map: Mutex<HashMap<Uuid, Instant>>,
}

impl RecentWriters {
    pub fn record(&self, user: Uuid, window: Duration) {
        let now = Instant::now();
        if let Ok(mut map) = self.map.lock() {
            // Sweep on insert: the map only holds users who wrote within the window.
            if map.len() > 1024 {
                map.retain(|_, at| now.duration_since(*at) < window);
            }
            map.insert(user, now);
        }
    }

    pub fn is_recent(&self, user: Uuid, window: Duration) -> bool {
        self.map
            .lock()
            .ok()
            .and_then(|map| map.get(&user).map(|at| at.elapsed() < window))
            .unwrap_or(false)
    }
}
