//! What a user's live connections receive when their notifications change: a JSON message on
//! the broker channel `user:{id}`, which the real-time gateway forwards to each of the user's
//! sockets (on any instance, through Redis pub/sub).

use agora_api::types;
use serde::Serialize;

/// The broker channel of `user`'s events.
pub fn user_channel(user: uuid::Uuid) -> String {
    format!("user:{user}")
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
