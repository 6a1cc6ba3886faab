//! The jobs repository: the rows of the durable job queue (the `agora-jobs` crate runs them).
//!
//! A job is inserted in the same transaction as the write that causes it ([`JobWrites`], used by
//! other repositories), so it exists exactly when that write committed. A claim moves due jobs to
//! `running` with a lease token and a lease deadline in one statement — `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL, so concurrent claimers never take one row twice; SQLite serializes writers, so
//! its one `UPDATE … RETURNING` is a claim by itself. Every later transition names the job *and*
//! its lease token: a worker whose lease expired (and whose job another worker took) can no
//! longer complete, fail or renew it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::conn::{PgConn, SqliteConn};
use crate::pool::{Db, Target};
use crate::schema::{audit_events, jobs};
use crate::sql_types::{DbTime, DbUuid};
use crate::text_enum::text_enum;
use crate::{Conn, DbError, dispatch};

/// The PostgreSQL channel enqueues notify (payload: the queue name).
pub const NOTIFY_CHANNEL: &str = "agora_jobs";

text_enum! {
    /// Where a job is in its life.
    pub enum JobState {
        /// Waiting for its `run_at` (or due, and waiting for a worker).
        Ready => "ready",
        /// Claimed by a worker that holds its lease.
        Running => "running",
        /// Done; deleted after the retention period.
        Succeeded => "succeeded",
        /// Out of attempts, or failed permanently; kept until retried or discarded.
        Dead => "dead",
    }
}

/// A job to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The queue whose workers run it.
    pub queue: String,
    /// The job kind (which handler runs it).
    pub kind: String,
    /// The kind's payload, as JSON.
    pub payload: String,
    /// Higher runs first within a queue.
    pub priority: i16,
    /// Attempts before the job is dead.
    pub max_attempts: i32,
    /// Not before this instant.
    pub run_at: DateTime<Utc>,
    /// While a job of the same kind and key is ready, enqueuing another is a no-op.
    pub idempotency_key: Option<String>,
    /// The W3C `traceparent` of the request that enqueued it.
    pub trace_parent: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// UUIDv7 (sorts by enqueue time).
    pub id: Uuid,
    /// Its queue.
    pub queue: String,
    /// Its kind (text: a newer release may have enqueued a kind this one does not know).
    pub kind: String,
    /// The payload, as JSON.
    pub payload: String,
    /// Higher runs first.
    pub priority: i16,
    /// Where it is.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When it is (or was) due.
    pub run_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it succeeded or died.
    pub finished_at: Option<DateTime<Utc>>,
    /// While running: the lease deadline.
    pub lease_until: Option<DateTime<Utc>>,
    /// While running: the token of the claim that holds the lease.
    pub lease_token: Option<Uuid>,
    /// The worker that claimed it last.
    pub worker: Option<String>,
    /// The error of the latest failed attempt.
    pub last_error: Option<String>,
    /// Its de-duplication key.
    pub idempotency_key: Option<String>,
    /// The enqueuing request's `traceparent`.
    pub trace_parent: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = jobs)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct Row {
    id: DbUuid,
    queue: String,
    kind: String,
    payload: String,
    priority: i16,
    state: String,
    attempts: i32,
    max_attempts: i32,
    run_at: DbTime,
    created_at: DbTime,
    started_at: Option<DbTime>,
    finished_at: Option<DbTime>,
    lease_until: Option<DbTime>,
    lease_token: Option<DbUuid>,
    worker: Option<String>,
    last_error: Option<String>,
    idempotency_key: Option<String>,
    trace_parent: Option<String>,
}

impl From<Row> for Job {
    fn from(r: Row) -> Self {
        Job {
            id: r.id.0,
            queue: r.queue,
            kind: r.kind,
            payload: r.payload,
            priority: r.priority,
            // The CHECK constraint admits only the four states.
            state: JobState::parse(&r.state).unwrap_or(JobState::Dead),
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at.0,
            created_at: r.created_at.0,
            started_at: r.started_at.map(|t| t.0),
            finished_at: r.finished_at.map(|t| t.0),
            lease_until: r.lease_until.map(|t| t.0),
            lease_token: r.lease_token.map(|t| t.0),
            worker: r.worker,
            last_error: r.last_error,
            idempotency_key: r.idempotency_key,
            trace_parent: r.trace_parent,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = jobs)]
struct Insert<'a> {
    id: DbUuid,
    queue: &'a str,
    kind: &'a str,
    payload: &'a str,
    priority: i16,
    state: &'static str,
    attempts: i32,
    max_attempts: i32,
    run_at: DbTime,
    created_at: DbTime,
    idempotency_key: Option<&'a str>,
    trace_parent: Option<&'a str>,
}

/// Job inserts on a connection, for repositories that enqueue inside their own transaction.
pub(crate) trait JobWrites {
    /// Inserts `jobs`; each entry is the new id, or `None` when a ready job of the same kind and
    /// idempotency key absorbed it. On PostgreSQL also notifies the workers, which PostgreSQL
    /// delivers only if the transaction commits.
    async fn enqueue_in_txn(
        &mut self,
        jobs: &[NewJob],
    ) -> Result<Vec<Option<Uuid>>, diesel::result::Error>;
}

macro_rules! insert_jobs {
    ($c:expr, $jobs:expr) => {{
        let now = DbTime::now();
        let mut ids = Vec::with_capacity($jobs.len());
        for job in $jobs {
            let row = Insert {
                id: DbUuid(Uuid::now_v7()),
                queue: &job.queue,
                kind: &job.kind,
                payload: &job.payload,
                priority: job.priority,
                state: JobState::Ready.as_str(),
                attempts: 0,
                max_attempts: job.max_attempts.max(1),
                run_at: DbTime::truncate(job.run_at),
                created_at: now,
                idempotency_key: job.idempotency_key.as_deref(),
                trace_parent: job.trace_parent.as_deref(),
            };
            let id: Option<DbUuid> = diesel::insert_into(jobs::table)
                .values(&row)
                .on_conflict_do_nothing()
                .returning(jobs::id)
                .get_result($c)
                .await
                .optional()?;
            ids.push(id.map(|id| id.0));
        }
        ids
    }};
}

impl JobWrites for PgConn {
    async fn enqueue_in_txn(
        &mut self,
        jobs: &[NewJob],
    ) -> Result<Vec<Option<Uuid>>, diesel::result::Error> {
        let ids = insert_jobs!(self, jobs);
        let mut queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(NOTIFY_CHANNEL)
                .bind::<diesel::sql_types::Text, _>(queue)
                .execute(self)
                .await?;
        }
        Ok(ids)
    }
}

impl JobWrites for SqliteConn {
    async fn enqueue_in_txn(
        &mut self,
        jobs: &[NewJob],
    ) -> Result<Vec<Option<Uuid>>, diesel::result::Error> {
        // One process owns a SQLite file: the in-process wake-up (`Db::jobs_committed`) is the
        // notification.
        Ok(insert_jobs!(self, jobs))
    }
}

/// Wakes this process's workers when a transaction that enqueued jobs commits.
pub trait JobWakeup: Send + Sync + 'static {
    /// Jobs were committed to `queue`.
    fn wake(&self, queue: &str);
}

/// What a claim asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The queue.
    pub queue: &'a str,
    /// The kinds this worker can run (others stay for a worker that knows them).
    pub kinds: &'a [String],
    /// At most this many jobs.
    pub limit: u32,
    /// The claiming worker's name, for operators.
    pub worker: &'a str,
    /// How long the lease lasts before it must be renewed.
    pub lease: std::time::Duration,
}

/// How a failed attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back to `ready`, due at the retry time.
    Retrying,
    /// Out of attempts (or permanent): `dead`.
    Dead,
    /// A ready job with the same kind and key exists and will do the work: this one was deleted.
    Superseded,
    /// The lease was no longer this worker's (it expired and another worker took the job).
    LeaseLost,
}

/// Filters for listing jobs.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
}

/// Counts of one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Ready and due now.
    pub due: i64,
    /// Ready, due later.
    pub scheduled: i64,
    /// Running.
    pub running: i64,
    /// Succeeded and not yet deleted.
    pub succeeded: i64,
    /// Dead.
    pub dead: i64,
    /// The `run_at` of the oldest due job.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

fn lease_deadline(now: DbTime, lease: std::time::Duration) -> DbTime {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
    DbTime::truncate(now.0 + lease)
}

// The claim's subquery reads the same table the UPDATE writes; diesel needs it aliased.
diesel::alias!(jobs as candidate: Candidate);

macro_rules! claim_candidates {
    ($req:expr, $now:expr) => {
        candidate
            .select(candidate.field(jobs::id))
            .filter(candidate.field(jobs::queue).eq($req.queue))
            .filter(candidate.field(jobs::kind).eq_any($req.kinds))
            .filter(
                candidate
                    .field(jobs::state)
                    .eq(JobState::Ready.as_str())
                    .and(candidate.field(jobs::run_at).le($now))
                    .or(candidate
                        .field(jobs::state)
                        .eq(JobState::Running.as_str())
                        .and(candidate.field(jobs::lease_until).lt($now))
                        .and(
                            candidate
                                .field(jobs::attempts)
                                .lt(candidate.field(jobs::max_attempts)),
                        )),
            )
            .order((
                candidate.field(jobs::priority).desc(),
                candidate.field(jobs::run_at).asc(),
                candidate.field(jobs::id).asc(),
            ))
            .limit(i64::from($req.limit))
    };
}

macro_rules! claim_update {
    ($candidates:expr, $req:expr, $now:expr, $token:expr, $c:expr) => {
        diesel::update(jobs::table.filter(jobs::id.eq_any($candidates)))
            .set((
                jobs::state.eq(JobState::Running.as_str()),
                jobs::attempts.eq(jobs::attempts + 1),
                jobs::started_at.eq(Some($now)),
                jobs::lease_until.eq(Some(lease_deadline($now, $req.lease))),
                jobs::lease_token.eq(Some($token)),
                jobs::worker.eq(Some($req.worker)),
            ))
            .returning(Row::as_returning())
            .get_results::<Row>($c)
            .await
    };
}

impl Db {
    /// Enqueues `jobs` in a transaction of their own (jobs that no other write causes: periodic
    /// ones, operator actions). Each entry is the new id, or `None` when folded into a ready job
    /// with the same kind and key.
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Option<Uuid>>, DbError> {
        let mut conn = self.write().await?;
        let ids = self
            .run("enqueue_jobs", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| c.enqueue_in_txn(jobs).await).await)
            })
            .await?;
        self.jobs_committed(jobs);
        Ok(ids)
    }

    /// Enqueues `jobs` and records `audit` in one transaction (an operator's action that is a
    /// job, e.g. an admin notice).
    pub async fn enqueue_audited(
        &self,
        jobs: &[NewJob],
        audit: &crate::audit::NewAuditEvent,
    ) -> Result<Vec<Option<Uuid>>, DbError> {
        let event = audit.to_row();
        let mut conn = self.write().await?;
        let ids = self
            .run("enqueue_audited", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let ids = c.enqueue_in_txn(jobs).await?;
                    diesel::insert_into(audit_events::table).values(&event).execute(c).await?;
                    Ok::<_, diesel::result::Error>(ids)
                }).await)
            })
            .await?;
        self.jobs_committed(jobs);
        Ok(ids)
    }

    /// Call after a transaction that enqueued `jobs` committed: counts them and wakes this
    /// process's workers (other processes learn of them through NOTIFY or their poll).
    pub(crate) fn jobs_committed(&self, jobs: &[NewJob]) {
        for job in jobs {
            metrics::counter!("jobs_enqueued_total", "kind" => job.kind.clone()).increment(1);
        }
        if let Some(wakeup) = self.job_wakeup() {
            for job in jobs {
                wakeup.wake(&job.queue);
            }
        }
    }

    /// Claims up to `req.limit` due jobs of `req.queue` whose kind is in `req.kinds` (and jobs
    /// whose worker's lease expired, with attempts left): they become `running` under a new lease
    /// token, their attempt counted. Highest priority first, then oldest `run_at`.
    pub async fn claim_jobs(&self, req: &ClaimRequest<'_>) -> Result<Vec<Job>, DbError> {
        if req.kinds.is_empty() || req.limit == 0 {
            return Ok(Vec::new());
        }
        let now = DbTime::now();
        let token = DbUuid(Uuid::new_v4());
        let mut conn = self.write().await?;
        let mut rows: Vec<Row> = self
            .run("claim_jobs", Target::Primary, async {
                match &mut conn {
                    Conn::Pg(c) => {
                        let c: &mut PgConn = c;
                        let candidates = claim_candidates!(req, now).for_update().skip_locked();
                        claim_update!(candidates, req, now, token, c)
                    }
                    Conn::Sqlite(c) => {
                        let c: &mut SqliteConn = c;
                        let candidates = claim_candidates!(req, now);
                        claim_update!(candidates, req, now, token, c)
                    }
                }
            })
            .await?;
        rows.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.run_at.cmp(&b.run_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(rows.into_iter().map(Job::from).collect())
    }

    /// Marks running jobs of `queue` whose lease expired on their last attempt as dead (their
    /// worker died each time: a job that kills its worker must not take the fleet down with it).
    /// Returns their kinds.
    pub async fn bury_lost_jobs(&self, queue: &str) -> Result<Vec<String>, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        self.run("bury_lost_jobs", Target::Primary, async {
            dispatch!(conn, c => diesel::update(jobs::table
                    .filter(jobs::queue.eq(queue))
                    .filter(jobs::state.eq(JobState::Running.as_str()))
                    .filter(jobs::lease_until.lt(now))
                    .filter(jobs::attempts.ge(jobs::max_attempts)))
                .set((
                    jobs::state.eq(JobState::Dead.as_str()),
                    jobs::finished_at.eq(Some(now)),
                    jobs::lease_until.eq(None::<DbTime>),
                    jobs::lease_token.eq(None::<DbUuid>),
                    jobs::last_error.eq(Some("the worker stopped during the last attempt (its lease expired)")),
                ))
                .returning(jobs::kind)
                .get_results(c)
                .await)
        })
        .await
    }

    /// Extends the lease of job `id` held under `token` to now + `lease`; `false` when the lease
    /// is no longer this claim's.
    pub async fn renew_job_lease(
        &self,
        id: Uuid,
        token: Uuid,
        lease: std::time::Duration,
    ) -> Result<bool, DbError> {
        let until = lease_deadline(DbTime::now(), lease);
        let mut conn = self.write().await?;
        let n = self
            .run("renew_job_lease", Target::Primary, async {
                dispatch!(conn, c => diesel::update(held(id, token))
                    .set(jobs::lease_until.eq(Some(until)))
                    .execute(c)
                    .await)
            })
            .await?;
        Ok(n == 1)
    }

    /// Marks job `id` (held under `token`) succeeded; `false` when the lease was lost.
    pub async fn complete_job(&self, id: Uuid, token: Uuid) -> Result<bool, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let n = self
            .run("complete_job", Target::Primary, async {
                dispatch!(conn, c => diesel::update(held(id, token))
                    .set((
                        jobs::state.eq(JobState::Succeeded.as_str()),
                        jobs::finished_at.eq(Some(now)),
                        jobs::lease_until.eq(None::<DbTime>),
                        jobs::lease_token.eq(None::<DbUuid>),
                    ))
                    .execute(c)
                    .await)
            })
            .await?;
        Ok(n == 1)
    }

    /// Records a failed attempt of job `id` (held under `token`): back to `ready` at `retry_at`,
    /// or `dead` when `retry_at` is `None`.
    pub async fn fail_job(
        &self,
        id: Uuid,
        token: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<FailOutcome, DbError> {
        let now = DbTime::now();
        let error = truncate_error(error);
        let mut conn = self.write().await?;
        let Some(retry_at) = retry_at else {
            let n = self
                .run("fail_job", Target::Primary, async {
                    dispatch!(conn, c => diesel::update(held(id, token))
                        .set((
                            jobs::state.eq(JobState::Dead.as_str()),
                            jobs::finished_at.eq(Some(now)),
                            jobs::lease_until.eq(None::<DbTime>),
                            jobs::lease_token.eq(None::<DbUuid>),
                            jobs::last_error.eq(Some(error)),
                        ))
                        .execute(c)
                        .await)
                })
                .await?;
            return Ok(if n == 1 {
                FailOutcome::Dead
            } else {
                FailOutcome::LeaseLost
            });
        };
        let retry_at = DbTime::truncate(retry_at);
        let result = self
            .run("fail_job", Target::Primary, async {
                dispatch!(conn, c => diesel::update(held(id, token))
                    .set((
                        jobs::state.eq(JobState::Ready.as_str()),
                        jobs::run_at.eq(retry_at),
                        jobs::lease_until.eq(None::<DbTime>),
                        jobs::lease_token.eq(None::<DbUuid>),
                        jobs::last_error.eq(Some(error)),
                    ))
                    .execute(c)
                    .await)
            })
            .await;
        match result {
            Ok(1) => Ok(FailOutcome::Retrying),
            Ok(_) => Ok(FailOutcome::LeaseLost),
            Err(DbError::Conflict { .. }) => self.drop_superseded(&mut conn, id, token).await,
            Err(e) => Err(e),
        }
    }

    /// Returns job `id` (held under `token`) to `ready` without counting the attempt: the worker
    /// is shutting down, not the job failing.
    pub async fn release_job(&self, id: Uuid, token: Uuid) -> Result<FailOutcome, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let result = self
            .run("release_job", Target::Primary, async {
                dispatch!(conn, c => diesel::update(held(id, token))
                    .set((
                        jobs::state.eq(JobState::Ready.as_str()),
                        jobs::run_at.eq(now),
                        jobs::attempts.eq(jobs::attempts - 1),
                        jobs::lease_until.eq(None::<DbTime>),
                        jobs::lease_token.eq(None::<DbUuid>),
                    ))
                    .execute(c)
                    .await)
            })
            .await;
        match result {
            Ok(1) => Ok(FailOutcome::Retrying),
            Ok(_) => Ok(FailOutcome::LeaseLost),
            Err(DbError::Conflict { .. }) => self.drop_superseded(&mut conn, id, token).await,
            Err(e) => Err(e),
        }
    }

    async fn drop_superseded(
        &self,
        conn: &mut Conn,
        id: Uuid,
        token: Uuid,
    ) -> Result<FailOutcome, DbError> {
        let n = self
            .run("drop_superseded_job", Target::Primary, async {
                dispatch!(*conn, c => diesel::delete(held(id, token)).execute(c).await)
            })
            .await?;
        Ok(if n == 1 {
            FailOutcome::Superseded
        } else {
            FailOutcome::LeaseLost
        })
    }

    /// One job.
    pub async fn get_job(&self, id: Uuid) -> Result<Job, DbError> {
        let mut conn = self.write().await?;
        let row: Row = self
            .run("get_job", Target::Primary, async {
                dispatch!(conn, c => jobs::table.find(DbUuid(id)).select(Row::as_select()).first(c).await)
            })
            .await?;
        Ok(row.into())
    }

    /// Jobs matching `filter`, newest first, older than `before` (keyset on the UUIDv7 id).
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Job>, DbError> {
        let mut conn = self.write().await?;
        let limit = i64::from(limit);
        let rows: Vec<Row> = self
            .run("list_jobs", Target::Primary, async {
                dispatch!(conn, c => {
                    let mut q = jobs::table
                        .select(Row::as_select())
                        .order(jobs::id.desc())
                        .limit(limit)
                        .into_boxed();
                    if let Some(state) = filter.state {
                        q = q.filter(jobs::state.eq(state.as_str()));
                    }
                    if let Some(queue) = &filter.queue {
                        q = q.filter(jobs::queue.eq(queue.clone()));
                    }
                    if let Some(kind) = &filter.kind {
                        q = q.filter(jobs::kind.eq(kind.clone()));
                    }
                    if let Some(before) = before {
                        q = q.filter(jobs::id.lt(DbUuid(before)));
                    }
                    q.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(Job::from).collect())
    }

    /// Revives dead job `id` and records `audit`, in one transaction: `ready` now, with a fresh
    /// set of attempts (the last error is kept until the next one). `NotFound` when there is no
    /// such dead job; `Conflict` when a ready job with the same kind and key exists (it will do
    /// the work).
    pub async fn retry_dead_job(
        &self,
        id: Uuid,
        audit: &crate::audit::NewAuditEvent,
    ) -> Result<Job, DbError> {
        let now = DbTime::now();
        let event = audit.to_row();
        let mut conn = self.write().await?;
        let row: Row = self
            .run("retry_dead_job", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let row: Row = diesel::update(jobs::table
                            .filter(jobs::id.eq(DbUuid(id)))
                            .filter(jobs::state.eq(JobState::Dead.as_str())))
                        .set((
                            jobs::state.eq(JobState::Ready.as_str()),
                            jobs::attempts.eq(0),
                            jobs::run_at.eq(now),
                            jobs::finished_at.eq(None::<DbTime>),
                        ))
                        .returning(Row::as_returning())
                        .get_result(c)
                        .await?;
                    diesel::insert_into(audit_events::table).values(&event).execute(c).await?;
                    Ok::<_, diesel::result::Error>(row)
                }).await)
            })
            .await?;
        let job = Job::from(row);
        if let Some(wakeup) = self.job_wakeup() {
            wakeup.wake(&job.queue);
        }
        Ok(job)
    }

    /// Deletes job `id` when it is dead or ready (never a running one: its worker holds it) and
    /// records `audit`, in one transaction. `NotFound` when there is no such job in those states.
    pub async fn discard_job(
        &self,
        id: Uuid,
        audit: &crate::audit::NewAuditEvent,
    ) -> Result<(), DbError> {
        let event = audit.to_row();
        let mut conn = self.write().await?;
        self.run("discard_job", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                let n = diesel::delete(jobs::table
                        .filter(jobs::id.eq(DbUuid(id)))
                        .filter(jobs::state.eq_any([JobState::Dead.as_str(), JobState::Ready.as_str()])))
                    .execute(c)
                    .await?;
                if n == 0 {
                    return Err(diesel::result::Error::NotFound);
                }
                diesel::insert_into(audit_events::table).values(&event).execute(c).await?;
                Ok(())
            }).await)
        })
        .await
    }

    /// Deletes up to `limit` jobs that succeeded before `before`; returns how many.
    pub async fn purge_succeeded_jobs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, DbError> {
        let before = DbTime::truncate(before);
        let limit = i64::from(limit);
        let mut conn = self.write().await?;
        self.run("purge_succeeded_jobs", Target::Primary, async {
            dispatch!(conn, c => {
                let old = candidate
                    .select(candidate.field(jobs::id))
                    .filter(candidate.field(jobs::state).eq(JobState::Succeeded.as_str()))
                    .filter(candidate.field(jobs::finished_at).lt(before))
                    .limit(limit);
                diesel::delete(jobs::table.filter(jobs::id.eq_any(old))).execute(c).await
            })
        })
        .await
    }

    /// Counts per queue (every queue that has rows).
    pub async fn job_stats(&self) -> Result<Vec<QueueStats>, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let (by_state, due): (Vec<StateCount>, Vec<DueCount>) =
            self.run("job_stats", Target::Primary, async {
                dispatch!(conn, c => {
                    let by_state = jobs::table
                        .group_by((jobs::queue, jobs::state))
                        .select((jobs::queue, jobs::state, diesel::dsl::count_star()))
                        .load::<StateCount>(c)
                        .await?;
                    let due = jobs::table
                        .filter(jobs::state.eq(JobState::Ready.as_str()))
                        .filter(jobs::run_at.le(now))
                        .group_by(jobs::queue)
                        .select((jobs::queue, diesel::dsl::count_star(), diesel::dsl::min(jobs::run_at)))
                        .load::<DueCount>(c)
                        .await?;
                    Ok::<_, diesel::result::Error>((by_state, due))
                })
            })
            .await?;
        let mut out: std::collections::BTreeMap<String, QueueStats> = Default::default();
        for (queue, state, n) in by_state {
            let s = out.entry(queue.clone()).or_insert_with(|| QueueStats {
                queue,
                ..Default::default()
            });
            match JobState::parse(&state) {
                Some(JobState::Ready) => s.scheduled += n,
                Some(JobState::Running) => s.running += n,
                Some(JobState::Succeeded) => s.succeeded += n,
                Some(JobState::Dead) | None => s.dead += n,
            }
        }
        for (queue, n, oldest) in due {
            let s = out.entry(queue.clone()).or_insert_with(|| QueueStats {
                queue,
                ..Default::default()
            });
            s.due = n;
            s.scheduled -= n;
            s.oldest_due_at = oldest.map(|t| t.0);
        }
        Ok(out.into_values().collect())
    }

    /// Waits for job notifications on a dedicated PostgreSQL connection, calling `on_queue` with
    /// each notified queue, until the connection fails (the caller reconnects). SQLite has no
    /// other process to hear from: returns at once.
    pub async fn listen_for_jobs(&self, mut on_queue: impl FnMut(&str)) -> Result<(), DbError> {
        use diesel_async::SimpleAsyncConnection;
        use futures::StreamExt;
        if self.backend() != crate::Backend::Postgres {
            return Ok(());
        }
        let mut conn =
            PgConn::establish(self.primary_url())
                .await
                .map_err(|e| DbError::Unavailable {
                    reason: e.to_string(),
                })?;
        conn.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .map_err(DbError::from)?;
        let mut stream = std::pin::pin!(conn.notifications_stream());
        while let Some(n) = stream.next().await {
            let n = n.map_err(DbError::from)?;
            on_queue(&n.payload);
        }
        Err(DbError::Unavailable {
            reason: "the notification connection closed".into(),
        })
    }
}

/// (queue, state, rows).
type StateCount = (String, String, i64);
/// (queue, due rows, oldest due `run_at`).
type DueCount = (String, i64, Option<DbTime>);

type ById = diesel::dsl::Filter<jobs::table, diesel::dsl::Eq<jobs::id, DbUuid>>;
type ByIdAndToken = diesel::dsl::Filter<ById, diesel::dsl::Eq<jobs::lease_token, DbUuid>>;
type Held = diesel::dsl::Filter<ByIdAndToken, diesel::dsl::Eq<jobs::state, &'static str>>;

/// The row of job `id` while `token` holds its lease.
fn held(id: Uuid, token: Uuid) -> Held {
    jobs::table
        .filter(jobs::id.eq(DbUuid(id)))
        .filter(jobs::lease_token.eq(DbUuid(token)))
        .filter(jobs::state.eq(JobState::Running.as_str()))
}

/// Errors are for operators; a handler that returns a megabyte of text must not bloat the row.
fn truncate_error(error: &str) -> &str {
    const MAX: usize = 2000;
    if error.len() <= MAX {
        return error;
    }
    let mut end = MAX;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}
