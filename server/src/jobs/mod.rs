//! The server's background jobs: every kind it runs, their handlers, and the workers that
//! `agora serve` (with `jobs.in_process`) or `agora worker` start. Domains enqueue through their
//! repositories, in the transaction of the write that causes the job.

pub mod admin;
pub mod cli;

use agora_jobs::{Queue, Registry, RunningWorkers, Workers};

use crate::config::Config;

/// The row that enqueues `job` as a child of the request's trace, for a repository call to
/// enqueue in its transaction. A payload that does not encode (plain ids and strings always do)
/// is logged and left out: the write itself still happens.
pub fn traced<J: agora_jobs::JobKind>(
    job: &J,
    trace: &agora_api::rt::TraceContext,
) -> Option<agora_db::jobs::NewJob> {
    match agora_jobs::new_job(
        job,
        agora_jobs::trace::child_traceparent(&trace.trace_id, trace.sampled),
    ) {
        Ok(row) => Some(row),
        Err(e) => {
            tracing::error!(job.kind = J::KIND, error = %e, "job does not encode");
            None
        }
    }
}

/// What the handlers need: the database, the Redis-or-in-process primitives, the configuration.
#[derive(Clone)]
pub struct JobDeps {
    /// The database.
    pub db: agora_db::Db,
    /// Cache and broker (handlers invalidate and publish).
    pub kv: agora_kv::Kv,
    /// The whole configuration.
    pub config: Config,
    /// The mailer, when email is on.
    pub mailer: Option<std::sync::Arc<crate::email::Mailer>>,
    /// The Web Push sender, when push is on.
    pub pusher: Option<std::sync::Arc<crate::push::Pusher>>,
}

/// Every kind this release runs, with its handler.
pub fn registry(deps: &JobDeps) -> Registry {
    let notifications = crate::notifications::Notifications::new(
        deps.db.clone(),
        deps.kv.clone(),
        deps.config.notifications.clone(),
    );
    let mut registry = Registry::new()
        .register(notifications.deliverer(deps.mailer.is_some(), deps.pusher.is_some()));
    if let Some(pusher) = &deps.pusher {
        registry = registry.register(crate::push::SendPushHandler {
            db: deps.db.clone(),
            pusher: pusher.clone(),
        });
    }
    if let Some(mailer) = &deps.mailer {
        registry = registry.register(crate::email::SendEmailHandler {
            db: deps.db.clone(),
            mailer: mailer.clone(),
        });
    }
    let feed = crate::feed::Feed::new(
        deps.db.clone(),
        deps.config.feed.clone(),
        crate::feed::FeedPages::new(deps.kv.cache().clone()),
    )
    .worker();
    let registry = registry
        .register::<crate::feed::jobs::FanoutPost, _>(feed.clone())
        .register::<crate::feed::jobs::BackfillFeed, _>(feed.clone())
        .register::<crate::feed::jobs::PruneFeed, _>(feed.clone())
        .register::<crate::feed::jobs::PurgePost, _>(feed);
    let retention_days = deps.config.analytics.retention_days;
    let registry = registry
        .register(crate::analytics::WriteAnalyticsHandler {
            db: deps.db.clone(),
        })
        .register(crate::analytics::write::PurgeAnalyticsHandler {
            db: deps.db.clone(),
        })
        .every(std::time::Duration::from_secs(3600), move || {
            crate::analytics::write::PurgeAnalytics { retention_days }
        });
    agora_jobs::maintenance::register(registry, deps.db.clone(), &deps.config.jobs)
}

/// Starts workers for `queues` (all when empty).
pub fn start_workers(deps: &JobDeps, queues: &[Queue]) -> RunningWorkers {
    let mut workers = Workers::new(deps.db.clone(), registry(deps), deps.config.jobs.clone());
    if !queues.is_empty() {
        workers = workers.queues(queues);
    }
    workers.start()
}
