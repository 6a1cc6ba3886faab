//! `agora jobs …`: the operator's view of the queue. Changes (retry, discard) are audited like
//! admin API calls, with the operating-system user as the user agent.

use std::fmt::Write as _;

use agora_db::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use agora_db::jobs::{Job, JobFilter, JobState, QueueStats};
use agora_db::{Db, DbError};

/// Why a jobs command failed.
#[derive(Debug, thiserror::Error)]
pub enum JobsCliError {
    /// No such job (in a state the command accepts).
    #[error("{0}")]
    NotFound(String),
    /// The job is in the wrong state, or a duplicate waits.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("{0}")]
    Db(#[from] DbError),
}

fn cli_audit(action: AuditAction, job: uuid::Uuid) -> NewAuditEvent {
    let os_user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    NewAuditEvent {
        target: Some(format!("job:{job}")),
        user_agent: Some(format!("agora jobs (os user {os_user})")),
        ..NewAuditEvent::new(
            action,
            AuditOutcome::Success,
            format!("cli:{}", uuid::Uuid::now_v7()),
        )
    }
}

/// `agora jobs stats`: one line per queue.
pub fn render_stats(stats: &[QueueStats], now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = format!(
        "{:<12} {:>8} {:>10} {:>8} {:>10} {:>6}  {}\n",
        "QUEUE", "DUE", "SCHEDULED", "RUNNING", "SUCCEEDED", "DEAD", "OLDEST DUE"
    );
    for queue in agora_jobs::Queue::ALL {
        let s = stats
            .iter()
            .find(|s| s.queue == queue.as_str())
            .cloned()
            .unwrap_or_else(|| QueueStats {
                queue: queue.as_str().to_owned(),
                ..QueueStats::default()
            });
        out.push_str(&stats_line(&s, now));
    }
    // Queues this release does not know (a newer release's) are shown too.
    for s in stats
        .iter()
        .filter(|s| agora_jobs::Queue::parse(&s.queue).is_none())
    {
        out.push_str(&stats_line(s, now));
    }
    out
}

fn stats_line(s: &QueueStats, now: chrono::DateTime<chrono::Utc>) -> String {
    let oldest = s.oldest_due_at.map_or_else(
        || "-".to_owned(),
        |t| format!("{}s", (now - t).num_seconds().max(0)),
    );
    format!(
        "{:<12} {:>8} {:>10} {:>8} {:>10} {:>6}  {}\n",
        s.queue, s.due, s.scheduled, s.running, s.succeeded, s.dead, oldest
    )
}

/// `agora jobs list`: one line per job, newest first.
pub fn render_list(jobs: &[Job]) -> String {
    let mut out = format!(
        "{:<36} {:<9} {:<11} {:<24} {:>8}  {:<20}  {}\n",
        "ID", "STATE", "QUEUE", "KIND", "ATTEMPTS", "RUN AT", "LAST ERROR"
    );
    for j in jobs {
        let error = j.last_error.as_deref().unwrap_or("-");
        let error: String = error.chars().take(60).collect();
        let _ = writeln!(
            out,
            "{:<36} {:<9} {:<11} {:<24} {:>8}  {:<20}  {}",
            j.id,
            j.state.as_str(),
            j.queue,
            j.kind,
            format!("{}/{}", j.attempts, j.max_attempts),
            j.run_at.format("%Y-%m-%dT%H:%M:%SZ"),
            error.replace('\n', " ")
        );
    }
    out
}

/// `agora jobs show`: every field and the payload.
pub fn render_job(j: &Job) -> String {
    let payload = serde_json::from_str::<serde_json::Value>(&j.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| j.payload.clone());
    let opt = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("-".into(), |t| t.to_rfc3339());
    let mut out = String::new();
    let _ = writeln!(out, "id:              {}", j.id);
    let _ = writeln!(out, "state:           {}", j.state);
    let _ = writeln!(out, "queue:           {}", j.queue);
    let _ = writeln!(out, "kind:            {}", j.kind);
    let _ = writeln!(out, "priority:        {}", j.priority);
    let _ = writeln!(out, "attempts:        {}/{}", j.attempts, j.max_attempts);
    let _ = writeln!(out, "run_at:          {}", j.run_at.to_rfc3339());
    let _ = writeln!(out, "created_at:      {}", j.created_at.to_rfc3339());
    let _ = writeln!(out, "started_at:      {}", opt(j.started_at));
    let _ = writeln!(out, "finished_at:     {}", opt(j.finished_at));
    let _ = writeln!(out, "lease_until:     {}", opt(j.lease_until));
    let _ = writeln!(
        out,
        "worker:          {}",
        j.worker.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "idempotency_key: {}",
        j.idempotency_key.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "trace_parent:    {}",
        j.trace_parent.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "last_error:      {}",
        j.last_error.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "payload:\n{payload}");
    out
}

/// `agora jobs list` filters.
pub async fn list(db: &Db, filter: &JobFilter, limit: u32) -> Result<Vec<Job>, JobsCliError> {
    Ok(db.list_jobs(filter, None, limit).await?)
}

/// `agora jobs show ID`.
pub async fn show(db: &Db, id: uuid::Uuid) -> Result<Job, JobsCliError> {
    db.get_job(id).await.map_err(|e| match e {
        DbError::NotFound => JobsCliError::NotFound(format!("no job {id}")),
        e => e.into(),
    })
}

/// `agora jobs retry ID`: a dead job becomes due now.
pub async fn retry(db: &Db, id: uuid::Uuid) -> Result<Job, JobsCliError> {
    match db
        .retry_dead_job(id, &cli_audit(AuditAction::JobRetry, id))
        .await
    {
        Ok(job) => Ok(job),
        Err(DbError::NotFound) => Err(match db.get_job(id).await {
            Ok(j) => JobsCliError::Conflict(format!(
                "job {id} is {}, not dead: only dead jobs are retried",
                j.state
            )),
            Err(DbError::NotFound) => JobsCliError::NotFound(format!("no job {id}")),
            Err(e) => e.into(),
        }),
        Err(DbError::Conflict { .. }) => Err(JobsCliError::Conflict(format!(
            "job {id}: a waiting job of the same kind and idempotency key exists; it will do the work (discard this one)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `agora jobs retry --all-dead [--queue Q]`: every dead job (of the queue) becomes due now.
/// Returns the retried jobs and the ones skipped because a duplicate waits.
pub async fn retry_all_dead(
    db: &Db,
    queue: Option<String>,
) -> Result<(Vec<Job>, Vec<uuid::Uuid>), JobsCliError> {
    let filter = JobFilter {
        state: Some(JobState::Dead),
        queue,
        kind: None,
    };
    let (mut retried, mut skipped) = (Vec::new(), Vec::new());
    let mut before = None;
    loop {
        let page = db.list_jobs(&filter, before, 500).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for j in page {
            match db
                .retry_dead_job(j.id, &cli_audit(AuditAction::JobRetry, j.id))
                .await
            {
                Ok(job) => retried.push(job),
                Err(DbError::Conflict { .. }) => skipped.push(j.id),
                // Retried or discarded by someone else meanwhile.
                Err(DbError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok((retried, skipped))
}

/// `agora jobs discard ID`: deletes a dead or waiting job.
pub async fn discard(db: &Db, id: uuid::Uuid) -> Result<(), JobsCliError> {
    match db
        .discard_job(id, &cli_audit(AuditAction::JobDiscard, id))
        .await
    {
        Ok(()) => Ok(()),
        Err(DbError::NotFound) => Err(match db.get_job(id).await {
            Ok(j) => JobsCliError::Conflict(format!(
                "job {id} is {}: only dead or waiting jobs are discarded",
                j.state
            )),
            Err(DbError::NotFound) => JobsCliError::NotFound(format!("no job {id}")),
            Err(e) => e.into(),
        }),
        Err(e) => Err(e.into()),
    }
}
