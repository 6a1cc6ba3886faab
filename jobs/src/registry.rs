//! Handlers by kind: what a worker can run.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use uuid::Uuid;

use crate::{Backoff, JobKind, Queue};

/// What a handler knows about the attempt it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job.
    pub id: Uuid,
    /// This attempt, 1-based.
    pub attempt: u32,
    /// Attempts allowed; the last attempt is `attempt == max_attempts`.
    pub max_attempts: u32,
    /// When the job was enqueued.
    pub enqueued_at: chrono::DateTime<chrono::Utc>,
    /// The enqueuing request's `traceparent`, if any.
    pub trace_parent: Option<String>,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying (a dependency was down, a timeout): the job runs again after the kind's
    /// backoff, until it is out of attempts.
    #[error("{0}")]
    Retry(String),
    /// Retrying cannot help (the payload is invalid, the target refuses for good): dead now.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A transient failure.
    pub fn retry(e: impl std::fmt::Display) -> Self {
        JobError::Retry(e.to_string())
    }

    /// A failure retrying cannot fix.
    pub fn permanent(e: impl std::fmt::Display) -> Self {
        JobError::Permanent(e.to_string())
    }
}

/// Database errors are transient from a job's point of view (the database comes back; a row
/// that is missing now was deleted, which the handler decides about itself).
impl From<agora_db::DbError> for JobError {
    fn from(e: agora_db::DbError) -> Self {
        JobError::Retry(e.to_string())
    }
}

/// Runs jobs of kind `J`. Must be idempotent: an attempt may run again after a crash, and a
/// handler may be cancelled at any await point (shutdown past the drain window, a lost lease).
pub trait Handler<J: JobKind>: Send + Sync + 'static {
    /// Runs one attempt.
    fn run(&self, job: J, ctx: JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// A handler with the payload type erased, so a registry can hold every kind.
pub(crate) trait ErasedHandler: Send + Sync {
    fn run<'a>(&'a self, payload: &'a str, ctx: JobContext) -> BoxFuture<'a, Result<(), JobError>>;
}

struct Typed<J, H> {
    handler: H,
    _kind: std::marker::PhantomData<fn() -> J>,
}

impl<J: JobKind, H: Handler<J>> ErasedHandler for Typed<J, H> {
    fn run<'a>(&'a self, payload: &'a str, ctx: JobContext) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let job: J = serde_json::from_str(payload).map_err(|e| {
                JobError::Permanent(format!("the {} payload does not decode: {e}", J::KIND))
            })?;
            self.handler.run(job, ctx).await
        })
    }
}

/// How a registered kind is scheduled.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) queue: Queue,
    pub(crate) backoff: Backoff,
    pub(crate) handler: Arc<dyn ErasedHandler>,
}

/// A job a worker process enqueues on a schedule (one waiting instance across the cluster, by
/// its idempotency key).
#[derive(Clone)]
pub(crate) struct Periodic {
    pub(crate) every: Duration,
    pub(crate) make: Arc<dyn Fn() -> Option<agora_db::jobs::NewJob> + Send + Sync>,
}

/// The kinds a worker process can run, with their handlers.
#[derive(Clone, Default)]
pub struct Registry {
    pub(crate) kinds: BTreeMap<&'static str, Registered>,
    pub(crate) periodic: Vec<Periodic>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("periodic", &self.periodic.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs kind `J` with `handler`. A kind registered twice keeps the later handler.
    pub fn register<J: JobKind, H: Handler<J>>(mut self, handler: H) -> Self {
        self.kinds.insert(
            J::KIND,
            Registered {
                queue: J::QUEUE,
                backoff: J::BACKOFF,
                handler: Arc::new(Typed::<J, H> {
                    handler,
                    _kind: std::marker::PhantomData,
                }),
            },
        );
        self
    }

    /// Enqueues `job()` every `every` while workers for its queue run. The kind must give an
    /// idempotency key, so that many worker processes keep at most one waiting.
    pub fn every<J: JobKind>(
        mut self,
        every: Duration,
        job: impl Fn() -> J + Send + Sync + 'static,
    ) -> Self {
        self.periodic.push(Periodic {
            every,
            make: Arc::new(move || crate::new_job(&job(), None).ok()),
        });
        self
    }

    /// The kind names registered for `queue`.
    pub fn kinds_of(&self, queue: Queue) -> Vec<String> {
        self.kinds
            .iter()
            .filter(|(_, r)| r.queue == queue)
            .map(|(k, _)| (*k).to_owned())
            .collect()
    }

    /// Every registered kind.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }
}
