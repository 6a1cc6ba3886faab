//! `analytics.*` settings.

use serde::{Deserialize, Serialize};

/// Analytics buffering and retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Accept events at all. Default on.
    pub enabled: bool,
    /// Events buffered per process before new ones are dropped. Default 10000.
    pub buffer_events: usize,
    /// Events per `write_analytics` job. Default 500.
    pub batch_size: usize,
    /// A partial batch is enqueued after this long. Default 1000.
    pub flush_interval_ms: u64,
    /// Events older than this are deleted (whole daily partitions on PostgreSQL). Default 90.
    pub retention_days: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            enabled: true,
            buffer_events: 10_000,
            batch_size: 500,
            flush_interval_ms: 1000,
            retention_days: 90,
        }
    }
}

impl AnalyticsConfig {
    /// Every problem of the section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.buffer_events == 0 {
            p.push("analytics.buffer_events: must be at least 1".into());
        }
        if self.batch_size == 0 || self.batch_size > 5000 {
            p.push("analytics.batch_size: between 1 and 5000".into());
        }
        if self.flush_interval_ms < 10 {
            p.push("analytics.flush_interval_ms: at least 10".into());
        }
        if self.retention_days == 0 {
            p.push("analytics.retention_days: at least 1".into());
        }
        p
    }
}
