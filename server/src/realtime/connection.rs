//! One connection's life: the reader loop (client frames, broker events, the heartbeat
//! deadline) and the writer task (the bounded outbound queue and the pings).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_api::rt::frames::Inbound;
use agora_api::rt::{
    ApiFailure, FrameSink, FrameSocket, Principal, RequestCtx, ServiceError, Subject,
};
use agora_api::types;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Gateway, close};
use crate::notifications::events::user_channel;

/// The gateway's limits per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The server pings this often; two intervals without a word from the client close it.
    pub heartbeat: Duration,
    /// Frames the outbound queue holds before the client counts as a slow consumer.
    pub queue_frames: usize,
    /// Invalid frames in a row that close the connection (1007).
    pub invalid_frames: u32,
    /// Messages `resume` replays per conversation.
    pub replay_per_conversation: u32,
}

/// How long a replay waits for room in the outbound queue before the client counts as slow.
const REPLAY_PATIENCE: Duration = Duration::from_secs(5);
/// How long the writer may take to say goodbye once the connection ends.
const CLOSE_PATIENCE: Duration = Duration::from_secs(2);

/// Counts a connection while it lives, whichever way it ends (a panic included).
struct Live;

impl Live {
    fn start() -> Self {
        metrics::gauge!("realtime_connections").increment(1.0);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        metrics::gauge!("realtime_connections").decrement(1.0);
    }
}

/// Why the connection ends, and the close code it ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ending {
    code: u16,
    reason: &'static str,
}

impl Ending {
    const CLIENT_CLOSED: Ending = Ending {
        code: close::NORMAL,
        reason: "closed by the client",
    };
    const SLOW_CONSUMER: Ending = Ending {
        code: close::SLOW_CONSUMER,
        reason: "the client reads too slowly; reconnect and resume",
    };
}

/// The state the reader loop keeps.
struct Connection<'a> {
    gateway: &'a Gateway,
    ctx: &'a RequestCtx<Principal>,
    queue: mpsc::Sender<Arc<str>>,
    /// The highest message sequence sent per conversation (a live copy of a replayed message is
    /// dropped).
    delivered: HashMap<Uuid, i64>,
    invalid_in_a_row: u32,
}

pub(super) async fn run(
    gateway: &Gateway,
    ctx: &RequestCtx<Principal>,
    socket: FrameSocket<types::ClientFrame, types::ServerFrame>,
) {
    let _live = Live::start();
    let me = ctx.principal.user_id;
    let limits = gateway.limits;
    let connection_id = Uuid::now_v7();
    let (sink, mut stream) = socket.split();
    let (queue, outbound) = mpsc::channel(limits.queue_frames.max(1));
    let (end_tx, end_rx) = oneshot::channel();
    let mut writer = tokio::spawn(write(sink, outbound, end_rx, limits.heartbeat));
    // Subscribed before `ready`: every event published after the client sees `ready` arrives.
    let mut events = gateway.kv.broker().subscribe(&user_channel(me)).await;
    // A revoked session's sockets close on every instance: revocations are broadcast.
    let mut revocations = gateway
        .kv
        .broker()
        .subscribe(crate::identity::revocations::CHANNEL)
        .await;
    let session = ctx.principal.session_id.to_string();
    let mut conn = Connection {
        gateway,
        ctx,
        queue,
        delivered: HashMap::new(),
        invalid_in_a_row: 0,
    };
    tracing::info!(%connection_id, "realtime connection opened");
    let ready = types::ServerFrame::ReadyFrame(types::ReadyFrame {
        type_: types::ReadyFrameType::Ready,
        user_id: me,
        connection_id,
        heartbeat_interval_secs: std::num::NonZeroU64::new(limits.heartbeat.as_secs().max(1))
            .unwrap_or(std::num::NonZeroU64::MIN),
    });
    let mut last_alive = Instant::now();
    let mut deadline = tokio::time::interval(limits.heartbeat);
    let ending = match conn.send(&ready) {
        Err(ending) => ending,
        Ok(()) => loop {
            tokio::select! {
                inbound = stream.next() => {
                    last_alive = Instant::now();
                    if let Err(ending) = conn.inbound(inbound).await {
                        break ending;
                    }
                }
                event = events.recv() => {
                    let Some(payload) = event else {
                        break Ending { code: close::INTERNAL, reason: "the event broker stopped" };
                    };
                    if let Err(ending) = conn.forward(payload) {
                        break ending;
                    }
                }
                revoked = revocations.recv() => {
                    match revoked {
                        Some(id) if id.as_ref() == session.as_bytes() => {
                            break Ending { code: close::POLICY, reason: "the session was revoked" };
                        }
                        Some(_) => {}
                        None => break Ending { code: close::INTERNAL, reason: "the event broker stopped" },
                    }
                }
                _ = deadline.tick() => {
                    if last_alive.elapsed() > limits.heartbeat * 2 {
                        break Ending { code: close::HEARTBEAT_TIMEOUT, reason: "no answer to pings" };
                    }
                }
            }
        },
    };
    metrics::counter!("realtime_closes_total", "code" => ending.code.to_string()).increment(1);
    tracing::info!(%connection_id, close_code = ending.code, reason = ending.reason, "realtime connection closed");
    let _ = end_tx.send(ending);
    if tokio::time::timeout(CLOSE_PATIENCE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// The writer task: drains the queue, pings every `heartbeat`, and closes with the ending the
/// reader sends (first, even while frames wait).
async fn write(
    mut sink: FrameSink<types::ServerFrame>,
    mut outbound: mpsc::Receiver<Arc<str>>,
    mut end: oneshot::Receiver<Ending>,
    heartbeat: Duration,
) {
    let mut ping = tokio::time::interval(heartbeat);
    ping.tick().await;
    loop {
        tokio::select! {
            biased;
            ending = &mut end => {
                let ending = ending.unwrap_or(Ending { code: close::INTERNAL, reason: "the connection ended" });
                let _ = tokio::time::timeout(CLOSE_PATIENCE, sink.close(ending.code, ending.reason)).await;
                return;
            }
            frame = outbound.recv() => {
                let Some(text) = frame else { return };
                if sink.send_text(&text).await.is_err() {
                    return;
                }
                metrics::counter!("realtime_frames_out_total").increment(1);
            }
            _ = ping.tick() => {
                if sink.ping().await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Connection<'_> {
    fn me(&self) -> Uuid {
        self.ctx.principal.user_id
    }

    /// Queues serialized frame text; a full queue is a slow consumer.
    fn queue_text(&self, text: Arc<str>) -> Result<(), Ending> {
        match self.queue.try_send(text) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("realtime_slow_consumer_closes_total").increment(1);
                Err(Ending::SLOW_CONSUMER)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Ending::CLIENT_CLOSED),
        }
    }

    fn send(&self, frame: &types::ServerFrame) -> Result<(), Ending> {
        match serde_json::to_string(frame) {
            Ok(text) => self.queue_text(text.into()),
            Err(e) => {
                tracing::error!(error = %e, "a server frame does not serialize");
                Err(Ending {
                    code: close::INTERNAL,
                    reason: "internal error",
                })
            }
        }
    }

    /// An error frame for a refused client frame (the connection stays).
    fn refuse(
        &self,
        error: ServiceError,
        client_message_id: Option<types::ClientMessageId>,
    ) -> Result<(), Ending> {
        let failure = ApiFailure::from_service(error, &self.ctx.request_id);
        let body = &failure.body;
        let details = body
            .details
            .iter()
            .flatten()
            .map(|d| types::ApiErrorDetail {
                location: match d.location.as_str() {
                    "path" => types::ApiErrorDetailLocation::Path,
                    "query" => types::ApiErrorDetailLocation::Query,
                    "header" => types::ApiErrorDetailLocation::Header,
                    _ => types::ApiErrorDetailLocation::Body,
                },
                pointer: d.pointer.clone(),
                rule: d.rule.clone(),
                message: d.message.clone(),
            })
            .collect();
        self.send(&types::ServerFrame::ErrorFrame(types::ErrorFrame {
            type_: types::ErrorFrameType::Error,
            error_code: body.error_code.clone(),
            message: body.message.clone(),
            details,
            client_message_id,
        }))
    }

    /// Forwards a broker event, unless it is a message the client already got.
    fn forward(&mut self, payload: bytes::Bytes) -> Result<(), Ending> {
        let Ok(text) = std::str::from_utf8(&payload) else {
            return Ok(());
        };
        if let Some((conversation, sequence)) = message_position(text) {
            let high = self.delivered.entry(conversation).or_insert(0);
            if sequence <= *high {
                return Ok(());
            }
            *high = sequence;
        }
        self.queue_text(text.into())
    }

    async fn inbound(&mut self, inbound: Inbound<types::ClientFrame>) -> Result<(), Ending> {
        let frame = match inbound {
            Inbound::Frame(frame) => {
                self.invalid_in_a_row = 0;
                frame
            }
            Inbound::Invalid(violations) => {
                return self.invalid(ServiceError::invalid(violations));
            }
            Inbound::Binary => {
                return self.invalid(ServiceError::invalid(vec![agora_api::rt::Violation {
                    location: agora_api::rt::Location::Body,
                    pointer: String::new(),
                    rule: "type",
                    message: "frames are JSON text, not binary".into(),
                }]));
            }
            Inbound::Alive => return Ok(()),
            Inbound::TooBig => {
                return Err(Ending {
                    code: close::TOO_BIG,
                    reason: "a frame exceeded 64 KiB",
                });
            }
            Inbound::Closed => return Err(Ending::CLIENT_CLOSED),
        };
        metrics::counter!("realtime_frames_in_total", "type" => frame_type(&frame)).increment(1);
        if !matches!(frame, types::ClientFrame::PingFrame(_))
            && let Err(e) = self.chat_enabled().await
        {
            let id = match &frame {
                types::ClientFrame::SendMessageFrame(f) => Some(f.client_message_id.clone()),
                _ => None,
            };
            return self.refuse(e, id);
        }
        match frame {
            types::ClientFrame::PingFrame(_) => {
                self.send(&types::ServerFrame::PongFrame(types::PongFrame {
                    type_: types::PongFrameType::Pong,
                }))
            }
            types::ClientFrame::SendMessageFrame(f) => {
                let client_message_id = f.client_message_id.clone();
                match self.send_message(f).await {
                    Ok(()) => Ok(()),
                    Err(e) => self.refuse(e, Some(client_message_id)),
                }
            }
            types::ClientFrame::TypingFrame(f) => {
                match self.gateway.chat.typing(self.me(), f.conversation_id).await {
                    Ok(()) => Ok(()),
                    Err(e) => self.refuse(e, None),
                }
            }
            types::ClientFrame::MarkReadFrame(f) => {
                let position = types::ReadPosition {
                    sequence: f.sequence,
                };
                match self
                    .gateway
                    .chat
                    .mark_read(self.ctx, f.conversation_id, position)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => self.refuse(e, None),
                }
            }
            types::ClientFrame::ResumeFrame(f) => self.resume(f.positions).await,
        }
    }

    /// Chat frames answer `feature_disabled` while the `chat` flag is off, as the chat
    /// operations do.
    async fn chat_enabled(&self) -> Result<(), ServiceError> {
        match self
            .gateway
            .features
            .state("chat", Some(&self.ctx.principal))
            .await?
        {
            agora_api::rt::FeatureState::On => Ok(()),
            agora_api::rt::FeatureState::Off { retry_after_secs } => {
                Err(ServiceError::FeatureDisabled {
                    feature: "chat".into(),
                    retry_after_secs,
                })
            }
        }
    }

    fn invalid(&mut self, error: ServiceError) -> Result<(), Ending> {
        self.invalid_in_a_row += 1;
        if self.invalid_in_a_row >= self.gateway.limits.invalid_frames {
            return Err(Ending {
                code: close::INVALID_FRAMES,
                reason: "too many invalid frames",
            });
        }
        self.refuse(error, None)
    }

    /// A `send_message` frame: the same budget and rules as the REST operation. The stored
    /// message reaches this socket like every member's, through the broker.
    async fn send_message(&mut self, f: types::SendMessageFrame) -> Result<(), ServiceError> {
        self.gateway
            .rate_limits
            .consume(
                "chat",
                Subject {
                    user: Some(self.me()),
                    ip: self.ctx.client_ip,
                },
            )
            .await?;
        let body = types::MessageCreate {
            text: f.text,
            client_message_id: f.client_message_id,
        };
        let (message, new) = self
            .gateway
            .chat
            .store_message(self.ctx, f.conversation_id, body)
            .await?;
        // A retried send stored nothing, so nothing was published: its answer (the stored
        // message) goes to this socket alone, even if it saw the message before — the retry
        // asks whether the send took.
        if !new {
            let frame = types::ServerFrame::MessageFrame(types::MessageFrame {
                type_: types::MessageFrameType::Message,
                message,
            });
            self.send(&frame).map_err(|_| ServiceError::Unavailable {
                message: "the connection is closing".into(),
                retry_after_secs: 1,
            })?;
        }
        Ok(())
    }

    /// Replays the messages after each position, then says `resumed`.
    async fn resume(&mut self, positions: Vec<types::ConversationPosition>) -> Result<(), Ending> {
        let me = self.me();
        let mut replayed: i64 = 0;
        for position in positions {
            let conversation = position.conversation_id;
            let membership = match self
                .gateway
                .db
                .membership(conversation, me, agora_db::ReadPolicy::Primary)
                .await
            {
                Ok(Some((_, m))) => m,
                // Not (or no longer) a member: nothing to replay.
                Ok(None) => continue,
                Err(e) => {
                    return self.refuse(
                        crate::db_errors::service_error(
                            e,
                            crate::db_errors::ResourceKind::Conversation,
                        ),
                        None,
                    );
                }
            };
            let mut after = position
                .sequence
                .max(*self.delivered.get(&conversation).unwrap_or(&0));
            let mut left = self.gateway.limits.replay_per_conversation;
            while left > 0 {
                let page = left.min(100);
                let messages = match self
                    .gateway
                    .db
                    .list_messages(
                        conversation,
                        membership.joined_sequence,
                        agora_db::chat::MessageRange::After(after),
                        page,
                        agora_db::ReadPolicy::Primary,
                    )
                    .await
                {
                    Ok(m) => m,
                    Err(e) => {
                        return self.refuse(
                            crate::db_errors::service_error(
                                e,
                                crate::db_errors::ResourceKind::Message,
                            ),
                            None,
                        );
                    }
                };
                let count = messages.len() as u32;
                for m in messages {
                    after = m.seq;
                    let message = match crate::chat::views::message(m) {
                        Ok(m) => m,
                        Err(e) => return self.refuse(e, None),
                    };
                    let text = serde_json::to_string(&types::ServerFrame::MessageFrame(
                        types::MessageFrame {
                            type_: types::MessageFrameType::Message,
                            message,
                        },
                    ))
                    .map_err(|_| Ending {
                        code: close::INTERNAL,
                        reason: "internal error",
                    })?;
                    // The replay may be long: wait for room (a while), unlike live events.
                    match tokio::time::timeout(REPLAY_PATIENCE, self.queue.send(text.into())).await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Err(Ending::CLIENT_CLOSED),
                        Err(_) => return Err(Ending::SLOW_CONSUMER),
                    }
                    replayed += 1;
                    self.delivered.insert(conversation, after);
                }
                if count < page {
                    break;
                }
                left -= count;
            }
        }
        self.send(&types::ServerFrame::ResumedFrame(types::ResumedFrame {
            type_: types::ResumedFrameType::Resumed,
            replayed,
        }))
    }
}

/// The client frame's `type`, for the metric (a closed list).
fn frame_type(frame: &types::ClientFrame) -> &'static str {
    match frame {
        types::ClientFrame::PingFrame(_) => "ping",
        types::ClientFrame::ResumeFrame(_) => "resume",
        types::ClientFrame::SendMessageFrame(_) => "send_message",
        types::ClientFrame::TypingFrame(_) => "typing",
        types::ClientFrame::MarkReadFrame(_) => "mark_read",
    }
}

/// The position of a `message` frame's message, read without decoding the whole frame.
fn message_position(text: &str) -> Option<(Uuid, i64)> {
    #[derive(serde::Deserialize)]
    struct Position {
        conversation_id: Uuid,
        sequence: i64,
    }
    #[derive(serde::Deserialize)]
    struct Frame {
        #[serde(rename = "type")]
        kind: String,
        message: Option<Position>,
    }
    let frame: Frame = serde_json::from_str(text).ok()?;
    (frame.kind == "message")
        .then_some(frame.message)
        .flatten()
        .map(|p| (p.conversation_id, p.sequence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_frame_names_its_position_and_others_none() {
        let id = Uuid::now_v7();
        let message = format!(
            r#"{{"type":"message","message":{{"conversation_id":"{id}","sequence":7,"text":"x"}}}}"#
        );
        assert_eq!(message_position(&message), Some((id, 7)));
        let typing = format!(r#"{{"type":"typing","conversation_id":"{id}","user_id":"{id}"}}"#);
        assert_eq!(message_position(&typing), None);
        assert_eq!(message_position("not json"), None);
    }
}
