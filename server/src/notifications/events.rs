//! What a user's live connections receive: a message on the broker channel `user:{id}`, which
//! the real-time gateway forwards to each of the user's sockets (on any instance, through Redis
//! pub/sub).
//!
//! Each message is an [`Envelope`] line, then the frame's JSON exactly as the sockets get it
//! (forwarded without decoding and encoding it again):
//!
//! ```text
//! {"traceparent":"00-4bf9…-01","published_at_us":1796342400000000}
//! {"type":"message","message":{…}}
//! ```
//!
//! The envelope carries the publisher's W3C trace context (so a delivery joins the sender's
//! trace) and the publish time (for the publish → written-to-socket latency).

use agora_api::rt::TraceContext;
use agora_api::types;
use serde::{Deserialize, Serialize};

/// The broker channel of `user`'s events.
pub fn user_channel(user: uuid::Uuid) -> String {
    format!("user:{user}")
}

/// The header line of a message on a user's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The publishing operation's trace (a child span of it), when it ran in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// When it was published: microseconds since the Unix epoch (the publisher's clock).
    pub published_at_us: u64,
}

impl Envelope {
    /// How long ago it was published (zero if the clocks disagree the other way).
    pub fn age(&self) -> std::time::Duration {
        std::time::Duration::from_micros(now_us().saturating_sub(self.published_at_us))
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The envelope line, then `frame` (compact JSON, which holds no raw newline).
fn seal(envelope: &Envelope, frame: &[u8]) -> Result<bytes::Bytes, serde_json::Error> {
    let mut payload = serde_json::to_vec(envelope)?;
    payload.push(b'\n');
    payload.extend_from_slice(frame);
    Ok(payload.into())
}

/// The envelope and the frame text of a message on a user's channel; `None` when it is not one.
pub fn open(payload: &[u8]) -> Option<(Envelope, &str)> {
    let split = payload.iter().position(|b| *b == b'\n')?;
    let envelope = serde_json::from_slice(&payload[..split]).ok()?;
    let frame = std::str::from_utf8(&payload[split + 1..]).ok()?;
    Some((envelope, frame))
}

/// Publishes one server frame on each of `users`' channels, in the current operation's trace.
pub(crate) async fn publish_frame(
    kv: &agora_kv::Kv,
    users: &[uuid::Uuid],
    frame: &types::ServerFrame,
) {
    let traceparent = TraceContext::current().map(|t| t.child_traceparent());
    publish(kv, users, serde_json::to_vec(frame), traceparent).await;
}

/// Publishes `event` on `user`'s channel, in the trace `traceparent` names.
pub(crate) async fn publish_event(
    kv: &agora_kv::Kv,
    user: uuid::Uuid,
    event: &UserEvent<'_>,
    traceparent: Option<String>,
) {
    publish(kv, &[user], serde_json::to_vec(event), traceparent).await;
}

/// Seals `body` once and publishes it on each of `users`' channels concurrently (a group's
/// members do not wait for each other).
async fn publish(
    kv: &agora_kv::Kv,
    users: &[uuid::Uuid],
    body: Result<Vec<u8>, serde_json::Error>,
    traceparent: Option<String>,
) {
    let envelope = Envelope {
        traceparent,
        published_at_us: now_us(),
    };
    let payload = match body.and_then(|b| seal(&envelope, &b)) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode a real-time event");
            return;
        }
    };
    let channels: Vec<String> = users.iter().map(|u| user_channel(*u)).collect();
    let broker = kv.broker();
    futures::future::join_all(
        channels
            .iter()
            .map(|channel| broker.publish(channel, payload.clone())),
    )
    .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_to_its_envelope_and_frame() {
        let envelope = Envelope {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            published_at_us: 1_796_342_400_000_000,
        };
        let frame = br#"{"type":"typing","text":"line\nbreak"}"#;
        let payload = seal(&envelope, frame).expect("encodes");
        let (opened, text) = open(&payload).expect("opens");
        assert_eq!(opened, envelope);
        assert_eq!(text.as_bytes(), frame);
        // A bare frame (no envelope) is not a message of this channel.
        assert_eq!(open(br#"{"type":"typing"}"#), None);
    }
}
