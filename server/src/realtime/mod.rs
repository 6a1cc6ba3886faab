//! The real-time gateway: one WebSocket per device (`connect_realtime`).
//!
//! Every event that concerns a user is published, after its write committed, on the broker
//! channel `user:{id}` (Redis pub/sub through agora-kv, so any instance's sockets get it); each
//! connection subscribes to its user's channel and forwards what arrives. Durable events
//! (messages) carry a position (conversation + sequence): after a reconnect the client sends
//! `resume` and the missed messages are replayed from the database before live delivery goes on,
//! with duplicates of what the replay already sent dropped.
//!
//! Each connection writes through a bounded queue drained by its own writer task: a client that
//! reads too slowly fills its queue and is closed with 4001 (slow consumer), never blocking the
//! publisher or other connections, and never growing memory. The writer also pings every
//! heartbeat interval; a client silent for two intervals is closed with 4002.
//!
//! Each socket holds a lease in its user's connection set ([`presence`]): the cluster-wide
//! per-user limit (4000), presence, and `get_presence` all read it. A socket closes with 4003
//! when its access token expires, unless a `reauth` frame replaced the token first.

mod config;
mod connection;
mod presence;
mod revoked;

use std::sync::Arc;
use std::time::Duration;

use agora_api::rt::{Authenticator, FrameSocket, Principal, RequestCtx, ServiceError};
use agora_api::types;
use tokio::sync::watch;

pub use config::RealtimeConfig;

/// The close codes of the channel, from the contract.
pub use agora_api::connect_realtime_close_codes as close;

/// This instance's live figures, exact (the metrics are process-wide).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) connections: std::sync::atomic::AtomicUsize,
    pub(crate) leases: std::sync::atomic::AtomicUsize,
    /// Leases held per user on this instance (users with none are not kept).
    pub(crate) users: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, usize>>,
}

impl Counts {
    fn users(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<uuid::Uuid, usize>> {
        // Counter updates cannot be left half-done by a panic.
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One more lease of `user` here.
    pub(crate) fn user_in(&self, user: uuid::Uuid) {
        let mut users = self.users();
        *users.entry(user).or_insert(0) += 1;
        metrics::gauge!("realtime_online_users").set(users.len() as f64);
    }

    /// One lease of `user` fewer here; whether it was their last one here.
    pub(crate) fn user_out(&self, user: uuid::Uuid) -> bool {
        let mut users = self.users();
        let last = match users.get_mut(&user) {
            Some(held) if *held > 1 => {
                *held -= 1;
                false
            }
            _ => {
                users.remove(&user);
                true
            }
        };
        metrics::gauge!("realtime_online_users").set(users.len() as f64);
        last
    }

    fn local_users(&self) -> usize {
        self.users().len()
    }
}

/// A snapshot of [`Gateway::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayStats {
    /// Sockets being served.
    pub connections: usize,
    /// Leases held (a socket holds one from admission until its end).
    pub leases: usize,
    /// Users holding a lease on this instance.
    pub users: usize,
}

/// What the gateway needs; cheap to share.
#[derive(Clone)]
pub struct Gateway {
    chat: crate::chat::Chat,
    db: agora_db::Db,
    kv: agora_kv::Kv,
    /// Verifies `reauth` frames' tokens.
    authenticator: Arc<dyn Authenticator>,
    leases: presence::Leases,
    counts: Arc<Counts>,
    limits: RealtimeConfig,
    /// `Some(window)` once the instance drains: sockets close with 1012 spread over the window.
    drain: watch::Sender<Option<Duration>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What the gateway is built from.
pub struct GatewayParts {
    /// Chat (frames that send, type, mark read).
    pub chat: crate::chat::Chat,
    /// The database (replays, friends).
    pub db: agora_db::Db,
    /// The broker and the lease sets.
    pub kv: agora_kv::Kv,
    /// The access-token verifier.
    pub authenticator: Arc<dyn Authenticator>,
}

impl Gateway {
    /// The gateway of this instance.
    pub fn new(parts: GatewayParts, limits: RealtimeConfig) -> Self {
        let counts = Arc::new(Counts::default());
        let leases = presence::Leases::new(
            parts.db.clone(),
            parts.kv.clone(),
            limits.heartbeat(),
            limits.max_connections_per_user,
            counts.clone(),
        );
        let drain = watch::channel(None).0;
        revoked::watch(parts.db.clone(), parts.kv.clone(), drain.subscribe());
        Gateway {
            chat: parts.chat,
            db: parts.db,
            kv: parts.kv,
            authenticator: parts.authenticator,
            leases,
            counts,
            limits,
            drain,
        }
    }

    /// Serves one authenticated connection until it closes.
    pub async fn serve(
        &self,
        ctx: &RequestCtx<Principal>,
        socket: FrameSocket<types::ClientFrame, types::ServerFrame>,
    ) -> Result<(), ServiceError> {
        connection::run(self, ctx, socket).await;
        Ok(())
    }

    /// Starts the drain: new sockets are closed at once, and open ones with 1012 at random
    /// moments over `window`, so their clients reconnect to other instances in a trickle
    /// rather than a stampede.
    pub fn drain(&self, window: Duration) {
        self.drain.send_replace(Some(window));
    }

    /// This instance's sockets and leases right now (every path that ends a socket gives both
    /// back: the cleanup tests read this).
    pub fn stats(&self) -> GatewayStats {
        use std::sync::atomic::Ordering::Relaxed;
        GatewayStats {
            connections: self.counts.connections.load(Relaxed),
            leases: self.counts.leases.load(Relaxed),
            users: self.counts.local_users(),
        }
    }

    /// `get_presence`: whether each asked friend has a socket open (others are left out).
    pub async fn presence(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::PresenceQuery,
    ) -> Result<types::PresenceList, ServiceError> {
        let me = ctx.principal.user_id;
        let friends: std::collections::HashSet<uuid::Uuid> = self
            .db
            .friend_ids(me, agora_db::ReadPolicy::ForUser(me))
            .await
            .map_err(|e| crate::db_errors::service_error(e, crate::db_errors::ResourceKind::User))?
            .into_iter()
            .collect();
        let asked: Vec<uuid::Uuid> = query
            .user_ids
            .into_iter()
            .filter(|u| friends.contains(u))
            .collect();
        let online = self.leases.online(&asked).await;
        Ok(types::PresenceList {
            users: asked
                .into_iter()
                .zip(online)
                .map(|(user_id, online)| types::UserPresence { user_id, online })
                .collect(),
        })
    }
}
