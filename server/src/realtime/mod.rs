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

mod connection;

use std::time::Duration;

use agora_api::rt::{FrameSocket, Principal, RequestCtx, ServiceError};
use agora_api::types;

pub use connection::Limits;

/// The close codes of the channel, from the contract.
pub use agora_api::connect_realtime_close_codes as close;

/// What the gateway needs; cheap to share.
#[derive(Clone)]
pub struct Gateway {
    chat: crate::chat::Chat,
    db: agora_db::Db,
    kv: agora_kv::Kv,
    rate_limits: std::sync::Arc<crate::rate_limits::RateLimits>,
    /// The `chat` flag gates chat frames like the chat operations (`x-agora-feature: chat`);
    /// the channel itself stays open for notifications.
    features: std::sync::Arc<dyn agora_api::rt::FeatureFlags>,
    limits: Limits,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway of this instance.
    pub fn new(
        chat: crate::chat::Chat,
        db: agora_db::Db,
        kv: agora_kv::Kv,
        rate_limits: std::sync::Arc<crate::rate_limits::RateLimits>,
        features: std::sync::Arc<dyn agora_api::rt::FeatureFlags>,
        limits: Limits,
    ) -> Self {
        Gateway {
            chat,
            db,
            kv,
            rate_limits,
            features,
            limits,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            heartbeat: Duration::from_secs(25),
            queue_frames: 256,
            invalid_frames: 5,
            replay_per_conversation: 1_000,
        }
    }
}
