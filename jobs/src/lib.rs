//! Background jobs for Agora: work that must happen because of a write, but not on the request
//! path (feed fan-out, notifications, email, push, analytics).
//!
//! - **Durable and transactional.** A job is a row in the `jobs` table of the application
//!   database, inserted in the same transaction as the write that causes it (repositories take
//!   [`agora_db::jobs::NewJob`]s and insert them with their own rows), so a job exists exactly when
//!   its cause committed: no lost jobs after a crash, no phantom jobs after a rollback.
//! - **At least once.** A worker claims a job under a lease it renews while running
//!   ([`worker`]); a worker that dies loses the lease and the job runs again elsewhere. Handlers
//!   are therefore idempotent, and a kind may give an idempotency key: while a job with that key
//!   waits, enqueuing another is a no-op.
//! - **Typed.** A kind is a serde type implementing [`JobKind`] (its name, queue, priority,
//!   attempts and backoff are constants); its handler implements [`Handler`]. A worker claims only
//!   the kinds it has handlers for, so a kind enqueued by a newer release during a rolling deploy
//!   waits for a worker that knows it.
//! - **Named queues** ([`Queue`]) with their own concurrency, so a flood of analytics cannot
//!   delay notifications.
//!
//! Why not a library: the Rust job queues with both PostgreSQL and SQLite backends (apalis,
//! graphile_worker, fang, sqlxmq) are built on sqlx or libpq, and the one on diesel-async
//! (crates.io's `crates_io_worker`) is PostgreSQL-only and not published for reuse. A second
//! database driver stack next to diesel-async would mean two pools, two migration systems and
//! no shared transaction with the write that enqueues — the property this crate exists for.

pub mod backoff;
pub mod config;
mod kind;
pub mod maintenance;
pub mod metrics;
mod registry;
pub mod trace;
mod wakeup;
pub mod worker;

pub use backoff::Backoff;
pub use config::{JobsConfig, QueueConfig};
pub use kind::{EncodeError, JobKind, Queue, new_job};
pub use registry::{Handler, JobContext, JobError, Registry};
pub use worker::{RunningWorkers, Workers};
