//! The job metrics. Labels are kinds and queues: closed sets named in code, never user input.

use std::time::Duration;

use agora_db::jobs::QueueStats;

use crate::Queue;

pub(crate) fn started(kind: &str, queue: Queue, waited: Duration) {
    metrics::counter!("jobs_started_total", "kind" => kind.to_owned()).increment(1);
    metrics::histogram!("job_queue_latency_seconds", "queue" => queue.as_str())
        .record(waited.as_secs_f64());
}

pub(crate) fn succeeded(kind: &str, ran: Duration) {
    metrics::counter!("jobs_succeeded_total", "kind" => kind.to_owned()).increment(1);
    metrics::histogram!("job_run_duration_seconds", "kind" => kind.to_owned())
        .record(ran.as_secs_f64());
}

pub(crate) fn failed(kind: &str, ran: Duration, dead: bool) {
    metrics::counter!("jobs_failed_total", "kind" => kind.to_owned()).increment(1);
    metrics::histogram!("job_run_duration_seconds", "kind" => kind.to_owned())
        .record(ran.as_secs_f64());
    if dead {
        metrics::counter!("jobs_dead_total", "kind" => kind.to_owned()).increment(1);
    }
}

pub(crate) fn buried(kind: &str) {
    metrics::counter!("jobs_dead_total", "kind" => kind.to_owned()).increment(1);
}

pub(crate) fn lease_lost(kind: &str) {
    metrics::counter!("jobs_lease_lost_total", "kind" => kind.to_owned()).increment(1);
}

pub(crate) fn released(kind: &str) {
    metrics::counter!("jobs_released_total", "kind" => kind.to_owned()).increment(1);
}

/// Publishes the queue gauges from one stats query (every queue gets a value, zero when empty).
pub(crate) fn record_stats(stats: &[QueueStats]) {
    let now = chrono::Utc::now();
    for queue in Queue::ALL {
        let s = stats.iter().find(|s| s.queue == queue.as_str());
        let q = queue.as_str();
        let get = |f: fn(&QueueStats) -> i64| s.map_or(0.0, |s| f(s) as f64);
        metrics::gauge!("jobs_queue_depth", "queue" => q).set(get(|s| s.due));
        metrics::gauge!("jobs_scheduled", "queue" => q).set(get(|s| s.scheduled));
        metrics::gauge!("jobs_running", "queue" => q).set(get(|s| s.running));
        metrics::gauge!("jobs_dead", "queue" => q).set(get(|s| s.dead));
        let age = s
            .and_then(|s| s.oldest_due_at)
            .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!("jobs_oldest_due_age_seconds", "queue" => q).set(age);
    }
}

/// Descriptions for `/metrics` (call once with the recorder installed).
pub fn describe() {
    metrics::describe_counter!(
        "jobs_enqueued_total",
        "Jobs committed to the queue, by kind."
    );
    metrics::describe_counter!("jobs_started_total", "Job attempts started, by kind.");
    metrics::describe_counter!(
        "jobs_succeeded_total",
        "Job attempts that succeeded, by kind."
    );
    metrics::describe_counter!("jobs_failed_total", "Job attempts that failed, by kind.");
    metrics::describe_counter!(
        "jobs_dead_total",
        "Jobs that went dead (out of attempts, permanent failure, or a lost worker), by kind."
    );
    metrics::describe_counter!(
        "jobs_lease_lost_total",
        "Attempts abandoned because their lease expired and another worker took the job."
    );
    metrics::describe_counter!(
        "jobs_released_total",
        "Running jobs handed back at shutdown after the drain window, by kind."
    );
    metrics::describe_counter!(
        "jobs_listener_reconnects_total",
        "Times the PostgreSQL LISTEN connection for job wake-ups was re-established."
    );
    metrics::describe_histogram!(
        "job_run_duration_seconds",
        metrics::Unit::Seconds,
        "How long one attempt ran, by kind."
    );
    metrics::describe_histogram!(
        "job_queue_latency_seconds",
        metrics::Unit::Seconds,
        "From when a job was due to when an attempt started, by queue."
    );
    metrics::describe_gauge!(
        "jobs_queue_depth",
        "Jobs due and waiting for a worker, by queue."
    );
    metrics::describe_gauge!(
        "jobs_scheduled",
        "Jobs waiting for a later run_at (retries included), by queue."
    );
    metrics::describe_gauge!("jobs_running", "Jobs leased by a worker, by queue.");
    metrics::describe_gauge!("jobs_dead", "Dead jobs kept for an operator, by queue.");
    metrics::describe_gauge!(
        "jobs_oldest_due_age_seconds",
        metrics::Unit::Seconds,
        "How long the oldest due job has waited, by queue."
    );
}
