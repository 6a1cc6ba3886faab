//! Job settings (the server embeds them under `[jobs]`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Queue;

/// Worker settings for one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Jobs of this queue run at once per worker process (0 pauses the queue in this process).
    pub concurrency: u32,
}

/// Job settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Whether `agora serve` runs workers in its own process (the embedded shape). Set `false`
    /// when `agora worker` processes run the jobs (the cluster shape). Default `true`.
    pub in_process: bool,
    /// How long a claimed job is leased before its worker must renew it. A worker that dies
    /// holds its jobs at most this long. Default 30 s.
    pub lease_secs: u64,
    /// How often workers look for due jobs without a wake-up (scheduled retries, a missed
    /// notification). Default 1000 ms.
    pub poll_interval_ms: u64,
    /// On shutdown, how long running jobs may finish before they are released for another worker.
    /// Default 10 s.
    pub drain_secs: u64,
    /// How often the queue gauges (depth, oldest due age) are refreshed. Default 15 s.
    pub stats_interval_secs: u64,
    /// Succeeded jobs are deleted after this long (dead ones are kept until discarded).
    /// Default 86400 s (one day).
    pub succeeded_retention_secs: u64,
    /// Per-queue settings by queue name (`fanout`, `notify`, `email`, `push`, `analytics`,
    /// `maintenance`); a missing queue uses its default concurrency.
    pub queues: BTreeMap<String, QueueConfig>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { concurrency: 1 }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            in_process: true,
            lease_secs: 30,
            poll_interval_ms: 1000,
            drain_secs: 10,
            stats_interval_secs: 15,
            succeeded_retention_secs: 86_400,
            queues: BTreeMap::new(),
        }
    }
}

impl JobsConfig {
    /// Every problem of the section, each `jobs.<key>: <what is wrong>`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.lease_secs < 2 {
            p.push("jobs.lease_secs: must be at least 2 (the lease is renewed every third)".into());
        }
        for (key, v) in [
            ("poll_interval_ms", self.poll_interval_ms),
            ("stats_interval_secs", self.stats_interval_secs),
            ("succeeded_retention_secs", self.succeeded_retention_secs),
        ] {
            if v == 0 {
                p.push(format!("jobs.{key}: must be greater than 0"));
            }
        }
        for (name, q) in &self.queues {
            if Queue::parse(name).is_none() {
                let known: Vec<&str> = Queue::ALL.iter().map(|q| q.as_str()).collect();
                p.push(format!(
                    "jobs.queues.{name}: no such queue (known: {})",
                    known.join(", ")
                ));
            } else if q.concurrency > 256 {
                p.push(format!("jobs.queues.{name}.concurrency: at most 256"));
            }
        }
        p
    }

    /// The concurrency of `queue` in one worker process.
    pub fn concurrency(&self, queue: Queue) -> u32 {
        self.queues
            .get(queue.as_str())
            .map_or(queue.default_concurrency(), |q| q.concurrency)
    }

    /// The lease duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(2))
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_queues_are_named() {
        assert!(JobsConfig::default().problems().is_empty());
        let mut c = JobsConfig::default();
        c.queues
            .insert("fanuot".into(), QueueConfig { concurrency: 2 });
        c.lease_secs = 1;
        let p = c.problems();
        assert!(
            p.iter()
                .any(|m| m.starts_with("jobs.queues.fanuot: no such queue")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.starts_with("jobs.lease_secs")), "{p:?}");
    }

    #[test]
    fn concurrency_falls_back_to_the_queue_default() {
        let mut c = JobsConfig::default();
        c.queues
            .insert("email".into(), QueueConfig { concurrency: 7 });
        assert_eq!(c.concurrency(Queue::Email), 7);
        assert_eq!(
            c.concurrency(Queue::Fanout),
            Queue::Fanout.default_concurrency()
        );
    }
}
