//! The worker runtime: per queue, a loop that claims due jobs up to the queue's concurrency and
//! runs each under a lease it renews; plus the PostgreSQL listener, the queue gauges and the
//! periodic schedules.
//!
//! Life of an attempt: claimed (`running`, attempt counted, lease = now + `lease_secs`) → the
//! handler runs while the lease is renewed every third of its length → succeeded, or failed and
//! back to `ready` after the kind's backoff, or dead when out of attempts or failed permanently.
//! A renewal that finds the lease gone (it expired and another worker claimed the job) cancels
//! the handler, so a slow job is not run twice at the same time for longer than one renewal
//! interval. If renewals fail because the database is unreachable, the handler is cancelled once
//! the lease has certainly expired.
//!
//! Shutdown: stop claiming; running attempts get `drain_secs` to finish; the rest are cancelled
//! and handed back (`ready`, attempt not counted) for another worker.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_db::Db;
use agora_db::jobs::{ClaimRequest, FailOutcome, Job};
use futures::FutureExt;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::registry::Registered;
use crate::wakeup::Wakeups;
use crate::{JobContext, JobError, JobsConfig, Queue, Registry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Claim nothing more; let running attempts finish.
    Draining,
    /// Cancel running attempts and hand their jobs back.
    Cancel,
}

struct Shared {
    db: Db,
    registry: Registry,
    config: JobsConfig,
    name: String,
}

/// Workers for some queues, not started yet.
pub struct Workers {
    shared: Shared,
    queues: Vec<Queue>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("name", &self.shared.name)
            .field("queues", &self.queues)
            .finish()
    }
}

impl Workers {
    /// Workers for every queue, running the kinds in `registry`.
    pub fn new(db: Db, registry: Registry, config: JobsConfig) -> Self {
        Self {
            shared: Shared {
                db,
                registry,
                config,
                name: default_name(),
            },
            queues: Queue::ALL.to_vec(),
        }
    }

    /// Only these queues.
    pub fn queues(mut self, queues: &[Queue]) -> Self {
        self.queues = queues.to_vec();
        self.queues.sort();
        self.queues.dedup();
        self
    }

    /// The name recorded on claimed jobs (default `host:pid`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.shared.name = name.into();
        self
    }

    /// Starts the loops on the current runtime.
    pub fn start(self) -> RunningWorkers {
        let (phase_tx, phase_rx) = watch::channel(Phase::Running);
        let wakeups = Arc::new(Wakeups::new(&self.queues));
        self.shared.db.set_job_wakeup(wakeups.clone());
        let shared = Arc::new(self.shared);
        let mut tasks = JoinSet::new();
        for &queue in &self.queues {
            tasks.spawn(queue_loop(
                shared.clone(),
                queue,
                wakeups.of(queue),
                phase_rx.clone(),
            ));
        }
        tasks.spawn(crate::wakeup::listen(
            shared.db.clone(),
            wakeups,
            until_not_running(phase_rx.clone()),
        ));
        tasks.spawn(stats_loop(shared.clone(), phase_rx.clone()));
        for periodic in &shared.registry.periodic {
            tasks.spawn(periodic_loop(
                shared.clone(),
                periodic.clone(),
                self.queues.clone(),
                phase_rx.clone(),
            ));
        }
        tracing::info!(worker = %shared.name, queues = ?self.queues, kinds = ?shared.registry.kinds().collect::<Vec<_>>(), "job workers started");
        RunningWorkers {
            phase: phase_tx,
            tasks,
            drain: Duration::from_secs(shared.config.drain_secs),
        }
    }

    /// Runs due jobs of these queues one at a time in the calling task until none is left;
    /// returns how many attempts ran. For tests and tools that need the queue empty before they
    /// look (jobs scheduled for later are not waited for).
    pub async fn run_until_idle(&self) -> Result<usize, agora_db::DbError> {
        let (_tx, phase) = watch::channel(Phase::Running);
        let mut ran = 0;
        loop {
            let mut claimed = 0;
            for &queue in &self.queues {
                let kinds = self.shared.registry.kinds_of(queue);
                let jobs = self
                    .shared
                    .db
                    .claim_jobs(&ClaimRequest {
                        queue: queue.as_str(),
                        kinds: &kinds,
                        limit: 1,
                        worker: &self.shared.name,
                        lease: self.shared.config.lease(),
                    })
                    .await?;
                for job in jobs {
                    claimed += 1;
                    run_attempt(&self.shared, job, phase.clone()).await;
                }
            }
            ran += claimed;
            if claimed == 0 {
                return Ok(ran);
            }
        }
    }
}

/// Started workers. Dropping this cancels running attempts (their jobs are handed back); call
/// [`RunningWorkers::shutdown`] to let them finish first.
pub struct RunningWorkers {
    phase: watch::Sender<Phase>,
    tasks: JoinSet<()>,
    drain: Duration,
}

impl std::fmt::Debug for RunningWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningWorkers")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl RunningWorkers {
    /// Stops claiming, gives running attempts the drain window (`jobs.drain_secs`) to finish,
    /// then cancels the rest and hands their jobs back.
    pub async fn shutdown(mut self) {
        let _ = self.phase.send(Phase::Draining);
        let drain = tokio::time::sleep(self.drain);
        tokio::pin!(drain);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => {
                    if next.is_none() {
                        tracing::info!("job workers stopped");
                        return;
                    }
                }
                () = &mut drain => break,
            }
        }
        tracing::warn!("drain window over: handing running jobs back");
        let _ = self.phase.send(Phase::Cancel);
        while self.tasks.join_next().await.is_some() {}
        tracing::info!("job workers stopped");
    }
}

impl Drop for RunningWorkers {
    fn drop(&mut self) {
        let _ = self.phase.send(Phase::Cancel);
    }
}

async fn until_not_running(mut phase: watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p != Phase::Running).await;
}

async fn until_cancelled(phase: &mut watch::Receiver<Phase>) {
    // A dropped sender means the owner is gone: cancel too.
    let _ = phase.wait_for(|p| *p == Phase::Cancel).await;
}

async fn queue_loop(
    shared: Arc<Shared>,
    queue: Queue,
    wake: Arc<Notify>,
    mut phase: watch::Receiver<Phase>,
) {
    let kinds = shared.registry.kinds_of(queue);
    let concurrency = shared.config.concurrency(queue) as usize;
    if kinds.is_empty() || concurrency == 0 {
        return;
    }
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    let poll = shared.config.poll_interval();
    let mut last_bury = Instant::now() - poll;
    loop {
        if *phase.borrow() != Phase::Running {
            break;
        }
        while running.try_join_next().is_some() {}
        let free = permits.available_permits();
        let mut more = false;
        if free > 0 {
            if last_bury.elapsed() >= poll {
                last_bury = Instant::now();
                bury_lost(&shared.db, queue).await;
            }
            let claim = ClaimRequest {
                queue: queue.as_str(),
                kinds: &kinds,
                limit: free as u32,
                worker: &shared.name,
                lease: shared.config.lease(),
            };
            match shared.db.claim_jobs(&claim).await {
                Ok(jobs) => {
                    more = jobs.len() == free;
                    for job in jobs {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            break; // cannot happen: at most `free` jobs were claimed
                        };
                        let shared = shared.clone();
                        let wake = wake.clone();
                        let phase = phase.clone();
                        running.spawn(async move {
                            run_attempt(&shared, job, phase).await;
                            drop(permit);
                            wake.notify_one();
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(queue = %queue, error = %e, "cannot claim jobs; retrying after the poll interval");
                }
            }
        }
        if more {
            continue;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
            changed = phase.changed() => if changed.is_err() { break },
        }
    }
    while running.join_next().await.is_some() {}
}

async fn bury_lost(db: &Db, queue: Queue) {
    match db.bury_lost_jobs(queue.as_str()).await {
        Ok(kinds) => {
            for kind in kinds {
                tracing::error!(queue = %queue, job.kind = %kind, "a job's worker stopped during its last attempt: the job is dead");
                crate::metrics::buried(&kind);
            }
        }
        Err(e) => tracing::warn!(queue = %queue, error = %e, "cannot check for lost jobs"),
    }
}

enum Ending {
    Finished(Result<(), JobError>),
    LeaseLost,
    Cancelled,
}

async fn run_attempt(shared: &Shared, job: Job, mut phase: watch::Receiver<Phase>) {
    let Some(registered) = shared.registry.kinds.get(job.kind.as_str()).cloned() else {
        return; // cannot happen: only registered kinds are claimed
    };
    let Some(token) = job.lease_token else {
        return; // cannot happen: a claimed job holds a lease
    };
    let trace_id = job
        .trace_parent
        .as_deref()
        .and_then(crate::trace::trace_id_of)
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "job",
        job.id = %job.id,
        job.kind = %job.kind,
        job.queue = %job.queue,
        job.attempt = job.attempts,
        trace_id = %trace_id,
    );
    async {
        let waited = job
            .started_at
            .and_then(|s| (s - job.run_at).to_std().ok())
            .unwrap_or_default();
        crate::metrics::started(&job.kind, registered.queue, waited);
        let ctx = JobContext {
            id: job.id,
            attempt: u32::try_from(job.attempts).unwrap_or(1),
            max_attempts: u32::try_from(job.max_attempts).unwrap_or(1),
            enqueued_at: job.created_at,
            trace_parent: job.trace_parent.clone(),
        };
        let lease = shared.config.lease();
        let started = Instant::now();
        let ending = {
            let attempt = AssertUnwindSafe(registered.handler.run(&job.payload, ctx)).catch_unwind();
            tokio::pin!(attempt);
            let every = lease / 3;
            let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    result = &mut attempt => {
                        break Ending::Finished(result.unwrap_or_else(|panic| {
                            Err(JobError::Retry(format!("the handler panicked: {}", panic_message(&panic))))
                        }));
                    }
                    _ = beat.tick() => match shared.db.renew_job_lease(job.id, token, lease).await {
                        Ok(true) => renewed = Instant::now(),
                        Ok(false) => break Ending::LeaseLost,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot renew the job's lease");
                            if renewed.elapsed() >= lease {
                                break Ending::LeaseLost;
                            }
                        }
                    },
                    () = until_cancelled(&mut phase) => break Ending::Cancelled,
                }
            }
        };
        let ran = started.elapsed();
        record(shared, &job, &registered, token, ending, ran).await;
    }
    .instrument(span)
    .await;
}

async fn record(
    shared: &Shared,
    job: &Job,
    registered: &Registered,
    token: uuid::Uuid,
    ending: Ending,
    ran: Duration,
) {
    let db = &shared.db;
    let result = match ending {
        Ending::Finished(Ok(())) => match retrying(|| db.complete_job(job.id, token)).await {
            Ok(true) => {
                crate::metrics::succeeded(&job.kind, ran);
                tracing::debug!(job.duration_ms = ran.as_millis() as u64, "job succeeded");
                return;
            }
            Ok(false) => Ok(FailOutcome::LeaseLost),
            Err(e) => Err(e),
        },
        Ending::Finished(Err(error)) => {
            let last = job.attempts >= job.max_attempts;
            let retry_at = match &error {
                JobError::Retry(_) if !last => {
                    let wait = registered
                        .backoff
                        .delay(u32::try_from(job.attempts).unwrap_or(1));
                    Some(chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
                }
                _ => None,
            };
            let message = error.to_string();
            let outcome = retrying(|| db.fail_job(job.id, token, &message, retry_at)).await;
            if let Ok(o) = &outcome {
                crate::metrics::failed(&job.kind, ran, *o == FailOutcome::Dead);
                match o {
                    FailOutcome::Dead => {
                        tracing::error!(error = %message, job.duration_ms = ran.as_millis() as u64, "job failed for good: dead")
                    }
                    FailOutcome::Retrying => {
                        tracing::warn!(error = %message, retry_at = ?retry_at, "job failed; will retry")
                    }
                    FailOutcome::Superseded => {
                        tracing::info!(error = %message, "job failed; a waiting job with the same key takes over")
                    }
                    FailOutcome::LeaseLost => {}
                }
            }
            outcome
        }
        Ending::LeaseLost => Ok(FailOutcome::LeaseLost),
        Ending::Cancelled => {
            let outcome = retrying(|| db.release_job(job.id, token)).await;
            if outcome.is_ok() {
                crate::metrics::released(&job.kind);
                tracing::info!("job handed back at shutdown");
            }
            outcome
        }
    };
    match result {
        Ok(FailOutcome::LeaseLost) => {
            crate::metrics::lease_lost(&job.kind);
            tracing::warn!(
                "the job's lease was lost (it expired and another worker took the job); this attempt's result is discarded"
            );
        }
        Ok(_) => {}
        Err(e) => {
            // The job stays leased; when the lease expires another worker runs it again.
            tracing::error!(error = %e, "cannot record the job's outcome; it will run again after its lease");
        }
    }
}

/// Outcome writes are retried briefly: losing one means running the job again.
async fn retrying<T, F, Fut>(mut f: F) -> Result<T, agora_db::DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, agora_db::DbError>>,
{
    let mut wait = Duration::from_millis(100);
    for _ in 0..3 {
        match f().await {
            Err(agora_db::DbError::Unavailable { .. } | agora_db::DbError::Timeout { .. }) => {
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
            other => return other,
        }
    }
    f().await
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".into()
    }
}

async fn stats_loop(shared: Arc<Shared>, mut phase: watch::Receiver<Phase>) {
    let every = Duration::from_secs(shared.config.stats_interval_secs.max(1));
    loop {
        match shared.db.job_stats().await {
            Ok(stats) => crate::metrics::record_stats(&stats),
            Err(e) => tracing::warn!(error = %e, "cannot read job queue stats"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = phase.wait_for(|p| *p != Phase::Running) => return,
        }
    }
}

async fn periodic_loop(
    shared: Arc<Shared>,
    periodic: crate::registry::Periodic,
    queues: Vec<Queue>,
    mut phase: watch::Receiver<Phase>,
) {
    loop {
        if let Some(job) = (periodic.make)()
            && Queue::parse(&job.queue).is_some_and(|q| queues.contains(&q))
            && let Err(e) = shared.db.enqueue(&[job]).await
        {
            tracing::warn!(error = %e, "cannot enqueue a periodic job");
        }
        tokio::select! {
            () = tokio::time::sleep(periodic.every) => {}
            _ = phase.wait_for(|p| *p != Phase::Running) => return,
        }
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("{host}:{}", std::process::id())
}
