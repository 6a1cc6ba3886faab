//! Waking a queue's workers as soon as a job for it commits: in process through the database
//! handle's hook, across processes through PostgreSQL `LISTEN/NOTIFY`. Both only shorten the wait;
//! the poll interval is the guarantee.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::Queue;

/// One `Notify` per queue.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    queues: BTreeMap<Queue, Arc<Notify>>,
}

impl Wakeups {
    pub(crate) fn new(queues: &[Queue]) -> Self {
        Self {
            queues: queues
                .iter()
                .map(|q| (*q, Arc::new(Notify::new())))
                .collect(),
        }
    }

    pub(crate) fn of(&self, queue: Queue) -> Arc<Notify> {
        self.queues.get(&queue).cloned().unwrap_or_default()
    }
}

impl agora_db::jobs::JobWakeup for Wakeups {
    fn wake(&self, queue: &str) {
        if let Some(n) = Queue::parse(queue).and_then(|q| self.queues.get(&q)) {
            // A stored permit, if nobody waits: the next wait returns at once.
            n.notify_one();
        }
    }
}

/// Relays PostgreSQL notifications to `wakeups` until `stop` resolves, reconnecting with a
/// capped backoff when the listening connection fails. Returns at once on SQLite.
pub(crate) async fn listen(
    db: agora_db::Db,
    wakeups: Arc<Wakeups>,
    stop: impl std::future::Future<Output = ()>,
) {
    use agora_db::jobs::JobWakeup;
    if db.backend() != agora_db::Backend::Postgres {
        return;
    }
    let relay = async {
        let mut wait = Duration::from_millis(500);
        loop {
            let started = std::time::Instant::now();
            match db.listen_for_jobs(|queue| wakeups.wake(queue)).await {
                Ok(()) => return,
                Err(e) => {
                    if started.elapsed() > Duration::from_secs(60) {
                        wait = Duration::from_millis(500);
                    }
                    tracing::warn!(error = %e, retry_ms = wait.as_millis() as u64, "job notifications lost; polling until the listener reconnects");
                    metrics::counter!("jobs_listener_reconnects_total").increment(1);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    };
    tokio::select! {
        () = relay => {}
        () = stop => {}
    }
}
