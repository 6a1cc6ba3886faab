//! Job kinds: the trait a payload type implements, the queues, and turning a value into a row.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Backoff;
use agora_db::jobs::NewJob;

/// The named queues. Each has its own worker concurrency (`jobs.queues.<name>.concurrency`), so
/// slow or bursty work on one never starves another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    /// Feed fan-out: inserting a new post into its audience's feeds.
    Fanout,
    /// Creating in-app notifications (and deciding on email and push).
    Notify,
    /// Sending email.
    Email,
    /// Sending Web Push messages.
    Push,
    /// Writing analytics events.
    Analytics,
    /// Housekeeping: retention and other periodic work.
    Maintenance,
}

impl Queue {
    /// Every queue.
    pub const ALL: [Queue; 6] = [
        Queue::Fanout,
        Queue::Notify,
        Queue::Email,
        Queue::Push,
        Queue::Analytics,
        Queue::Maintenance,
    ];

    /// The stored and configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Fanout => "fanout",
            Queue::Notify => "notify",
            Queue::Email => "email",
            Queue::Push => "push",
            Queue::Analytics => "analytics",
            Queue::Maintenance => "maintenance",
        }
    }

    /// The queue named `name`.
    pub fn parse(name: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.as_str() == name)
    }

    /// Concurrent jobs per worker process unless configured.
    pub fn default_concurrency(self) -> u32 {
        match self {
            Queue::Fanout => 4,
            Queue::Notify => 4,
            Queue::Email => 2,
            Queue::Push => 2,
            Queue::Analytics => 1,
            Queue::Maintenance => 1,
        }
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of job: its payload type and how it is scheduled. The payload is stored as JSON, so
/// changing it follows the same rules as a wire format: add optional fields, never rename (an old
/// worker may run a job a new one enqueued, and the other way round).
pub trait JobKind: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stored kind name; never change it once released.
    const KIND: &'static str;
    /// The queue whose workers run it.
    const QUEUE: Queue;
    /// Higher runs first within the queue.
    const PRIORITY: i16 = 0;
    /// Attempts before the job is dead.
    const MAX_ATTEMPTS: u32 = 8;
    /// The wait between attempts.
    const BACKOFF: Backoff = Backoff::DEFAULT;

    /// While a job of this kind with this key is waiting, enqueuing another is a no-op (the
    /// waiting one will see the latest state when it runs).
    fn idempotency_key(&self) -> Option<String> {
        None
    }
}

/// A payload that does not serialize (a map with non-string keys, a failing `Serialize` impl).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a {kind} job: {source}")]
pub struct EncodeError {
    kind: &'static str,
    source: serde_json::Error,
}

/// The row that enqueues `job` now, carrying the enqueuing request's `traceparent` (see
/// [`crate::trace::child_traceparent`]). Hand it to the repository call whose transaction causes
/// it, or to [`agora_db::Db::enqueue`].
pub fn new_job<J: JobKind>(job: &J, trace_parent: Option<String>) -> Result<NewJob, EncodeError> {
    let payload = serde_json::to_string(job).map_err(|source| EncodeError {
        kind: J::KIND,
        source,
    })?;
    Ok(NewJob {
        queue: J::QUEUE.as_str().to_owned(),
        kind: J::KIND.to_owned(),
        payload,
        priority: J::PRIORITY,
        max_attempts: i32::try_from(J::MAX_ATTEMPTS).unwrap_or(i32::MAX),
        run_at: chrono::Utc::now(),
        idempotency_key: job.idempotency_key(),
        trace_parent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_round_trip() {
        for q in Queue::ALL {
            assert_eq!(Queue::parse(q.as_str()), Some(q));
            assert!(q.default_concurrency() >= 1);
        }
        assert_eq!(Queue::parse("nope"), None);
    }
}
