//! Revoked sessions, known in process so an access token is checked without a database read.
//!
//! A revocation (logout, refresh-token reuse, …) goes into this instance's deny-set and is
//! published on the broker; every instance's subscriber adds it to its own deny-set, so a revoked
//! session's tokens stop working everywhere within a broadcast's latency. The deny-set is only
//! trusted while it can be complete: on a single embedded instance, or in a cluster while Redis is
//! up. Whenever the pub/sub link may have dropped messages (Redis down, a reconnect, start-up) the
//! set is reloaded from the database — the source of truth — before it is trusted again, and until
//! then the authenticator reads the session from the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_db::{Backend, Db};
use agora_kv::{Kv, RedisState};
use bytes::Bytes;
use uuid::Uuid;

/// The broker channel revocations travel on (a revoked session's id, as text). The real-time
/// gateway listens too, to close the session's sockets.
pub const CHANNEL: &str = "auth.revocations";
/// Above this many entries, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 4096;

/// This instance's view of revoked sessions.
pub struct Revocations {
    denied: Mutex<HashMap<Uuid, Instant>>,
    /// How long a revocation matters: the access-token lifetime plus leeway (after that every
    /// token of the session has expired anyway).
    ttl: Duration,
    kv: Kv,
    db: Db,
    /// Several instances may share the database (PostgreSQL), so others' revocations matter.
    cluster: bool,
    /// Messages may have been missed since the last reload.
    stale: AtomicBool,
    /// The pub/sub reconnect count last seen (a reconnect may have dropped messages).
    reconnects: AtomicU64,
}

impl Revocations {
    /// Subscribes to the broadcast; the set loads from the database on first use.
    pub async fn start(db: Db, kv: Kv, ttl: Duration) -> Arc<Revocations> {
        let cluster = db.backend() == Backend::Postgres;
        let revocations = Arc::new(Revocations {
            denied: Mutex::new(HashMap::new()),
            ttl,
            reconnects: AtomicU64::new(kv.status().pubsub_reconnects),
            kv,
            db,
            cluster,
            stale: AtomicBool::new(true),
        });
        let mut subscription = revocations.kv.broker().subscribe(CHANNEL).await;
        let weak = Arc::downgrade(&revocations);
        tokio::spawn(async move {
            while let Some(message) = subscription.recv().await {
                let Some(revocations) = weak.upgrade() else {
                    return;
                };
                match std::str::from_utf8(&message)
                    .ok()
                    .and_then(|s| Uuid::parse_str(s).ok())
                {
                    Some(session) => revocations.deny_locally(session),
                    None => tracing::warn!("ignoring a malformed revocation message"),
                }
            }
        });
        revocations
    }

    /// Revokes `session` here and tells the other instances.
    pub async fn revoke(&self, session: Uuid) {
        self.deny_locally(session);
        self.kv
            .broker()
            .publish(CHANNEL, Bytes::from(session.to_string()))
            .await;
    }

    /// Whether `session` is known to be revoked.
    pub fn is_denied(&self, session: Uuid) -> bool {
        self.denied
            .lock()
            .map(|d| d.get(&session).is_some_and(|until| *until > Instant::now()))
            .unwrap_or(false)
    }

    /// Whether the deny-set is complete right now (reloading it from the database first when
    /// messages may have been missed). `false` means: ask the database.
    pub async fn complete(&self) -> bool {
        let status = self.kv.status();
        let reachable = match status.state {
            RedisState::Up => true,
            RedisState::Disabled => !self.cluster,
            RedisState::Degraded | RedisState::Down => false,
        };
        if self
            .reconnects
            .swap(status.pubsub_reconnects, Ordering::SeqCst)
            != status.pubsub_reconnects
        {
            self.stale.store(true, Ordering::SeqCst);
        }
        if !reachable {
            self.stale.store(true, Ordering::SeqCst);
            return false;
        }
        if self.stale.load(Ordering::SeqCst) {
            return self.reload().await;
        }
        true
    }

    async fn reload(&self) -> bool {
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        match self.db.recently_revoked_sessions(since).await {
            Ok(sessions) => {
                for session in sessions {
                    self.deny_locally(session);
                }
                self.stale.store(false, Ordering::SeqCst);
                metrics::counter!("auth_revocations_reloads_total").increment(1);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload revoked sessions; checking sessions in the database");
                false
            }
        }
    }

    fn deny_locally(&self, session: Uuid) {
        if let Ok(mut denied) = self.denied.lock() {
            let now = Instant::now();
            if denied.len() > SWEEP_ABOVE {
                denied.retain(|_, until| *until > now);
            }
            denied.insert(session, now + self.ttl);
        }
    }
}
