//! Product analytics: client batches (`track_events`) and server-side events (`signed_up`,
//! `logged_in`, …) are accepted into a bounded in-process buffer and never written on the
//! request path. A flusher turns the buffer into `write_analytics` jobs (one per batch), whose
//! handler inserts the batch in one transaction. A flood cannot slow the API: `track_events` has
//! its own rate-limit class, and a full buffer drops events (counted in
//! `analytics_events_dropped_total`) instead of making requests wait.
//!
//! Events are best effort by design: the buffer lives in process memory, so a crash loses at
//! most the last flush interval's events; once a batch is a job it is durable, and written at
//! most once per event (each event's id is chosen on arrival).

pub mod config;
pub mod track;
pub mod write;

use std::time::Duration;

use agora_db::analytics::NewEvent;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

pub use config::AnalyticsConfig;
pub use write::{WriteAnalytics, WriteAnalyticsHandler};

/// Accepts events; cheap to clone.
#[derive(Clone)]
pub struct Analytics {
    tx: Option<mpsc::Sender<NewEvent>>,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics")
            .field("enabled", &self.tx.is_some())
            .finish()
    }
}

fn dropped(reason: &'static str, n: u64) {
    metrics::counter!("analytics_events_dropped_total", "reason" => reason).increment(n);
}

impl Analytics {
    /// Takes `event` if the buffer has room; `false` when it was dropped (counted).
    pub fn track(&self, event: NewEvent) -> bool {
        let Some(tx) = &self.tx else {
            dropped("disabled", 1);
            return false;
        };
        match tx.try_send(event) {
            Ok(()) => {
                metrics::counter!("analytics_events_accepted_total").increment(1);
                true
            }
            Err(_) => {
                dropped("buffer_full", 1);
                false
            }
        }
    }

    /// A server-side event about `user` happening now.
    pub fn track_server(&self, name: &str, user: Option<Uuid>, properties: serde_json::Value) {
        let now = chrono::Utc::now();
        self.track(NewEvent {
            id: Uuid::now_v7(),
            received_at: now,
            occurred_at: now,
            name: name.to_owned(),
            source: "server".into(),
            user_id: user,
            properties: properties.to_string(),
        });
    }

    /// A handle that drops everything (analytics switched off).
    pub fn disabled() -> Self {
        Analytics { tx: None }
    }

    /// Starts the buffer and its flusher, which enqueues batches into `db` until `shutdown`
    /// (then it flushes what is left).
    pub fn start(db: agora_db::Db, config: &AnalyticsConfig) -> (Analytics, Flusher) {
        let (stop, stopped) = watch::channel(false);
        if !config.enabled {
            return (Analytics::disabled(), Flusher { stop, task: None });
        }
        let (tx, rx) = mpsc::channel(config.buffer_events.max(1));
        let task = tokio::spawn(flush_loop(
            db,
            rx,
            stopped,
            config.batch_size.max(1),
            Duration::from_millis(config.flush_interval_ms.max(10)),
        ));
        (
            Analytics { tx: Some(tx) },
            Flusher {
                stop,
                task: Some(task),
            },
        )
    }
}

/// Stops the flusher after a last flush.
#[derive(Debug)]
pub struct Flusher {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Flusher {
    /// Flushes what is buffered and stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// Largest payload of one `write_analytics` job, so a batch of large events stays a
/// reasonable row.
const MAX_BATCH_BYTES: usize = 512 * 1024;

async fn flush_loop(
    db: agora_db::Db,
    mut rx: mpsc::Receiver<NewEvent>,
    mut stopped: watch::Receiver<bool>,
    batch_size: usize,
    interval: Duration,
) {
    let mut batch = Vec::with_capacity(batch_size);
    let mut bytes = 0;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                bytes += event.properties.len() + event.name.len() + 96;
                batch.push(event);
                if batch.len() >= batch_size || bytes >= MAX_BATCH_BYTES {
                    enqueue(&db, std::mem::take(&mut batch)).await;
                    bytes = 0;
                }
            }
            _ = tick.tick() => {
                if !batch.is_empty() {
                    enqueue(&db, std::mem::take(&mut batch)).await;
                    bytes = 0;
                }
            }
            _ = stopped.changed() => break,
        }
    }
    while let Ok(event) = rx.try_recv() {
        batch.push(event);
        if batch.len() >= batch_size {
            enqueue(&db, std::mem::take(&mut batch)).await;
        }
    }
    enqueue(&db, batch).await;
}

/// Hands a batch to the job queue; when the database refuses (down, slow), the batch is
/// dropped and counted rather than held in memory without bound.
async fn enqueue(db: &agora_db::Db, events: Vec<NewEvent>) {
    if events.is_empty() {
        return;
    }
    let n = events.len() as u64;
    let job = match agora_jobs::new_job(&WriteAnalytics { events }, None) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an analytics batch");
            dropped("encode", n);
            return;
        }
    };
    if let Err(e) = db.enqueue(&[job]).await {
        tracing::warn!(error = %e, events = n, "cannot enqueue an analytics batch; dropped");
        dropped("enqueue_failed", n);
    }
}
