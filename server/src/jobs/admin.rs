//! `list_jobs` and `retry_job`: the admin API over the job queue. Both are audited.

use agora_api::rt::{ErrorCode, Principal, RequestCtx, ServiceError};
use agora_api::types;
use agora_db::audit::{AuditAction, AuditOutcome};
use agora_db::jobs::{Job, JobFilter, JobState};
use agora_db::{Db, DbError};

use crate::db_errors::{ResourceKind, service_error};
use crate::identity::Identity;
use crate::paging::{page_size, parse_id_token, split_page, stored};

/// Job page tokens are `j1.<last job id>` (UUIDv7 ids sort by enqueue time).
const PAGE_TOKEN_PREFIX: &str = "j1.";

fn state_of(state: types::JobState) -> JobState {
    match state {
        types::JobState::Ready => JobState::Ready,
        types::JobState::Running => JobState::Running,
        types::JobState::Succeeded => JobState::Succeeded,
        types::JobState::Dead => JobState::Dead,
    }
}

fn state_name(state: JobState) -> types::JobState {
    match state {
        JobState::Ready => types::JobState::Ready,
        JobState::Running => types::JobState::Running,
        JobState::Succeeded => types::JobState::Succeeded,
        JobState::Dead => types::JobState::Dead,
    }
}

fn job(j: Job) -> Result<types::Job, ServiceError> {
    Ok(types::Job {
        id: j.id,
        queue: stored(j.queue, "job queue")?,
        kind: stored(j.kind, "job kind")?,
        state: state_name(j.state),
        priority: i32::from(j.priority),
        attempts: j.attempts,
        // The schema's CHECK keeps it at least 1.
        max_attempts: u32::try_from(j.max_attempts)
            .ok()
            .and_then(std::num::NonZeroU32::new)
            .unwrap_or(std::num::NonZeroU32::MIN),
        run_at: j.run_at,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        worker: j.worker,
        last_error: j.last_error,
    })
}

/// `list_jobs`: newest first, filtered, keyset-paginated.
pub async fn list_jobs(
    db: &Db,
    identity: &Identity,
    ctx: &RequestCtx<Principal>,
    query: types::ListJobsQuery,
) -> Result<types::JobResultsPage, ServiceError> {
    let limit = page_size(query.limit);
    let before = query
        .page_token
        .as_deref()
        .map(|t| parse_id_token(t, PAGE_TOKEN_PREFIX))
        .transpose()?;
    let filter = JobFilter {
        state: query.state.map(state_of),
        queue: query.queue.map(|q| q.to_string()),
        kind: query.kind.map(|k| k.to_string()),
    };
    identity
        .audit(
            ctx,
            Some(ctx.principal.user_id),
            AuditAction::JobsRead,
            None,
            AuditOutcome::Success,
        )
        .await;
    let rows = db
        .list_jobs(&filter, before, limit + 1)
        .await
        .map_err(|e| service_error(e, ResourceKind::Job))?;
    let (rows, next_page) = split_page(rows, limit, |j| format!("{PAGE_TOKEN_PREFIX}{}", j.id));
    Ok(types::JobResultsPage {
        items: rows.into_iter().map(job).collect::<Result<_, _>>()?,
        next_page,
    })
}

/// `retry_job`: a dead job becomes due now, with the audit event in the same transaction.
pub async fn retry_job(
    db: &Db,
    identity: &Identity,
    ctx: &RequestCtx<Principal>,
    id: uuid::Uuid,
) -> Result<types::Job, ServiceError> {
    let audit = identity.audit_event(
        ctx,
        Some(ctx.principal.user_id),
        AuditAction::JobRetry,
        Some(format!("job:{id}")),
        AuditOutcome::Success,
    );
    match db.retry_dead_job(id, &audit).await {
        Ok(j) => {
            tracing::info!(job.id = %id, job.kind = %j.kind, "dead job retried by an admin");
            job(j)
        }
        Err(DbError::NotFound) => Err(match db.get_job(id).await {
            Ok(j) => ServiceError::Conflict {
                code: ErrorCode::JobNotDead,
                message: format!("the job is {}, not dead", j.state),
            },
            Err(DbError::NotFound) => ServiceError::NotFound {
                message: "job not found".into(),
            },
            Err(e) => service_error(e, ResourceKind::Job),
        }),
        Err(DbError::Conflict { .. }) => Err(pending_duplicate()),
        Err(e) => Err(service_error(e, ResourceKind::Job)),
    }
}

fn pending_duplicate() -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::JobPendingDuplicate,
        message: "a waiting job of the same kind and idempotency key exists; it will do the work"
            .into(),
    }
}
