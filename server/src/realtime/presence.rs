//! Connection leases, the per-user connection limit and presence, all from one set per user.
//!
//! Each open socket holds a lease: a member of the presence set `rt:conns:{user}` (agora-kv,
//! so Redis in production) that expires three heartbeat intervals after its last renewal. The
//! set is the cluster-wide count the connection limit checks, atomically, when a socket opens;
//! a crashed instance's leases simply expire. A user is online while their set is non-empty.
//! While Redis is unreachable agora-kv answers from this process's own sets, so the limit and
//! presence hold per instance.
//!
//! Friends learn of the first socket opening and the last one closing through a `presence`
//! frame on their channels; a crash sends no frame (the lease expires silently), which the
//! contract says: `get_presence` is authoritative.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agora_api::types;
use agora_db::{Db, ReadPolicy};
use uuid::Uuid;

use super::Counts;

/// How many heartbeat intervals a lease outlives its last renewal.
const LEASE_HEARTBEATS: u32 = 3;

/// Lease admissions and releases in flight to Redis at once. A connect storm or a mass
/// disconnect (a load balancer dropping thousands of sockets) would otherwise put thousands of
/// commands on the connection at the same moment, the last of them past the command timeout,
/// and trip the breaker for everything else; queued here, each waits its turn before its
/// timeout starts.
const IN_FLIGHT: usize = 64;

/// The leases and presence of this instance's sockets.
#[derive(Clone)]
pub(crate) struct Leases {
    db: Db,
    kv: agora_kv::Kv,
    ttl: Duration,
    max: usize,
    counts: Arc<Counts>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

fn set(user: Uuid) -> String {
    format!("rt:conns:{user}")
}

impl Leases {
    pub(crate) fn new(
        db: Db,
        kv: agora_kv::Kv,
        heartbeat: Duration,
        max: usize,
        counts: Arc<Counts>,
    ) -> Self {
        Leases {
            db,
            kv,
            ttl: heartbeat * LEASE_HEARTBEATS,
            max,
            counts,
            in_flight: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        }
    }

    /// Takes a lease for a new socket: the user's socket count with it, or `None` when the user
    /// holds the most sockets allowed.
    pub(crate) async fn acquire(&self, user: Uuid, connection: Uuid) -> Option<usize> {
        // Never closed, so the permit is always granted.
        let _turn = self.in_flight.acquire().await.ok();
        let admitted = self
            .kv
            .presence()
            .admit(&set(user), &connection.to_string(), self.ttl, self.max)
            .await;
        if admitted.is_some() {
            self.counts.leases.fetch_add(1, Ordering::Relaxed);
            self.counts.user_in(user);
            metrics::gauge!("realtime_leases").increment(1.0);
        }
        admitted
    }

    /// Renews a socket's lease (each heartbeat).
    pub(crate) async fn renew(&self, user: Uuid, connection: Uuid) {
        // Never refused: the socket already holds its place.
        let _ = self
            .kv
            .presence()
            .admit(&set(user), &connection.to_string(), self.ttl, usize::MAX)
            .await;
    }

    /// Gives a socket's lease back; whether the user has no socket left.
    pub(crate) async fn release(&self, user: Uuid, connection: Uuid) -> bool {
        let _turn = self.in_flight.acquire().await.ok();
        let set = set(user);
        self.kv
            .presence()
            .remove(&set, &connection.to_string())
            .await;
        self.counts.leases.fetch_sub(1, Ordering::Relaxed);
        let last_here = self.counts.user_out(user);
        metrics::gauge!("realtime_leases").decrement(1.0);
        // A user with another socket here is online: no need to ask Redis (which a mass
        // disconnect would otherwise flood with reads).
        last_here && self.kv.presence().members(&set).await.is_empty()
    }

    /// Whether each user has a socket open anywhere.
    pub(crate) async fn online(&self, users: &[Uuid]) -> Vec<bool> {
        let sets: Vec<String> = users.iter().map(|u| set(*u)).collect();
        let reads = sets.iter().map(|s| self.kv.presence().members(s));
        futures::future::join_all(reads)
            .await
            .into_iter()
            .map(|members| !members.is_empty())
            .collect()
    }

    /// Tells `user`'s friends that they came online or went offline. Best effort: presence is
    /// not durable, and `get_presence` is the authority.
    pub(crate) async fn announce(&self, user: Uuid, online: bool) {
        let friends = match self.db.friend_ids(user, ReadPolicy::Anyone).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the friends to tell of a presence change");
                return;
            }
        };
        let frame = types::ServerFrame::PresenceFrame(types::PresenceFrame {
            type_: types::PresenceFrameType::Presence,
            user_id: user,
            online,
        });
        crate::notifications::events::publish_frame(&self.kv, &friends, &frame).await;
    }
}
