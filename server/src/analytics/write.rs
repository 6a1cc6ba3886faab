//! The `write_analytics` job (one batch, one transaction) and the `purge_analytics` retention job.

use agora_db::analytics::NewEvent;
use agora_jobs::{Handler, JobContext, JobError, JobKind, Queue};
use serde::{Deserialize, Serialize};

/// A batch of events to store (the job payload; field names are stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteAnalytics {
    /// The events.
    pub events: Vec<NewEvent>,
}

impl JobKind for WriteAnalytics {
    const KIND: &'static str = "write_analytics";
    const QUEUE: Queue = Queue::Analytics;
}

/// Runs `write_analytics` jobs.
#[derive(Clone)]
pub struct WriteAnalyticsHandler {
    pub(crate) db: agora_db::Db,
}

impl Handler<WriteAnalytics> for WriteAnalyticsHandler {
    async fn run(&self, job: WriteAnalytics, _ctx: JobContext) -> Result<(), JobError> {
        let written = self.db.insert_analytics_events(&job.events).await?;
        metrics::counter!("analytics_events_written_total").increment(written as u64);
        Ok(())
    }
}

/// Deletes events older than the retention (periodic, one waiting across the cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeAnalytics {
    /// Keep this many days.
    pub retention_days: u32,
}

impl JobKind for PurgeAnalytics {
    const KIND: &'static str = "purge_analytics";
    const QUEUE: Queue = Queue::Maintenance;

    fn idempotency_key(&self) -> Option<String> {
        Some("purge_analytics".into())
    }
}

/// Runs `purge_analytics` jobs.
#[derive(Clone)]
pub struct PurgeAnalyticsHandler {
    pub(crate) db: agora_db::Db,
}

impl Handler<PurgeAnalytics> for PurgeAnalyticsHandler {
    async fn run(&self, job: PurgeAnalytics, _ctx: JobContext) -> Result<(), JobError> {
        let before = chrono::Utc::now() - chrono::Duration::days(i64::from(job.retention_days));
        let purged = self.db.purge_analytics_before(before).await?;
        if purged > 0 {
            tracing::info!(purged, "analytics retention");
        }
        Ok(())
    }
}
