//! Revocations while Redis is unreachable.
//!
//! A revoked session's sockets close when its id arrives on the revocation broadcast
//! ([`crate::identity::revocations::CHANNEL`]). While Redis is unreachable the broadcast reaches
//! only the revoking instance's own subscribers, so each instance of a cluster reads the sessions
//! revoked since its last look from the database, every [`EVERY`], and publishes them to its own
//! subscribers (the broker delivers locally while Redis fails): the sockets close as they would
//! have, a second or so later. On a single embedded instance every revocation is local already.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agora_db::{Backend, Db};
use agora_kv::{Kv, RedisState};
use bytes::Bytes;
use tokio::sync::watch;
use uuid::Uuid;

use crate::identity::revocations::CHANNEL;

/// How often the database is read while Redis is unreachable.
const EVERY: Duration = Duration::from_secs(1);
/// How far back each read looks: covers a slow read, and clocks a little apart.
const OVERLAP: Duration = Duration::from_secs(10);

/// Spawns the watcher; it ends when the gateway (the sender of `stop`) is dropped.
pub(super) fn watch(db: Db, kv: Kv, mut stop: watch::Receiver<Option<Duration>>) {
    if db.backend() != Backend::Postgres {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Sessions already published, until they fall out of the look-back window.
        let mut published: HashMap<Uuid, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
            let status = kv.status();
            if status.state == RedisState::Up && status.pubsub_connected {
                published.clear();
                continue;
            }
            let since = chrono::Utc::now()
                - chrono::Duration::from_std(OVERLAP).unwrap_or(chrono::Duration::MAX);
            let revoked = match db.recently_revoked_sessions(since).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the sessions revoked while Redis is down");
                    continue;
                }
            };
            let now = Instant::now();
            published.retain(|_, at| now.duration_since(*at) < OVERLAP * 2);
            for session in revoked {
                if published.insert(session, now).is_none() {
                    metrics::counter!("realtime_revocations_from_database_total").increment(1);
                    kv.broker()
                        .publish(CHANNEL, Bytes::from(session.to_string()))
                        .await;
                }
            }
        }
    });
}
