//! Housekeeping jobs on the `maintenance` queue: deleting succeeded jobs after the retention
//! period. Dead jobs are never deleted here; an operator retries or discards them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Handler, JobContext, JobError, JobKind, Queue, Registry};

/// Deletes succeeded jobs older than the retention period, in batches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeSucceededJobs {}

impl JobKind for PurgeSucceededJobs {
    const KIND: &'static str = "purge_succeeded_jobs";
    const QUEUE: Queue = Queue::Maintenance;
    const MAX_ATTEMPTS: u32 = 3;

    fn idempotency_key(&self) -> Option<String> {
        Some("purge_succeeded_jobs".into())
    }
}

struct Purge {
    db: agora_db::Db,
    retention: Duration,
}

/// Rows per DELETE: short transactions, so a large backlog never holds locks for long.
const BATCH: u32 = 1000;

impl Handler<PurgeSucceededJobs> for Purge {
    async fn run(&self, _job: PurgeSucceededJobs, _ctx: JobContext) -> Result<(), JobError> {
        let retention = chrono::Duration::from_std(self.retention).map_err(JobError::permanent)?;
        let before = chrono::Utc::now() - retention;
        let mut total = 0;
        loop {
            let n = self.db.purge_succeeded_jobs(before, BATCH).await?;
            total += n;
            if n < BATCH as usize {
                break;
            }
        }
        if total > 0 {
            tracing::info!(jobs.deleted = total, "purged succeeded jobs past retention");
        }
        Ok(())
    }
}

/// Adds the housekeeping kinds and their schedules to `registry`.
pub fn register(registry: Registry, db: agora_db::Db, config: &crate::JobsConfig) -> Registry {
    let retention = Duration::from_secs(config.succeeded_retention_secs.max(1));
    // Checking ten times per retention period bounds how long past retention a row lives.
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    registry
        .register::<PurgeSucceededJobs, _>(Purge { db, retention })
        .every(every, PurgeSucceededJobs::default)
}
