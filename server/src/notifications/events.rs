//! What a user's live connections receive when their notifications change: a JSON message on
//! the broker channel `user:{id}`, which the real-time gateway forwards to each of the user's
//! sockets (on any instance, through Redis pub/sub).

use agora_api::types;
use serde::Serialize;

/// The broker channel of `user`'s events.
pub fn user_channel(user: uuid::Uuid) -> String {
    format!("user:{user}")
}

/// Publishes one server frame on each of `users`' channels (encoded once).
pub(crate) async fn publish_frame(
    kv: &agora_kv::Kv,
    users: &[uuid::Uuid],
    frame: &types::ServerFrame,
) {
    let payload = match serde_json::to_vec(frame) {
        Ok(p) => bytes::Bytes::from(p),
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode a real-time event");
            return;
        }
    };
    for &user in users {
        kv.broker()
            .publish(&user_channel(user), payload.clone())
            .await;
    }
}

/// Whether the notification is new or an existing one that someone joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new notification.
    Created,
    /// A coalesced notification moved to the top with one more actor.
    Updated,
}

/// One message on a user's channel.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserEvent<'a> {
    /// A notification was created or updated; `unread_count` is the badge after it.
    Notification {
        /// Created or updated.
        change: Change,
        /// The notification as `list_notifications` shows it.
        notification: &'a types::Notification,
        /// Unread notifications now.
        unread_count: i64,
    },
}
