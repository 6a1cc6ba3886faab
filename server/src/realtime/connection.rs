//! One connection's life: the reader loop (client frames, broker events, the heartbeat
//! deadline, the token's expiry, the drain) and the writer task (the bounded outbound queue
//! and the pings).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use agora_api::rt::frames::Inbound;
use agora_api::rt::{
    ApiFailure, FrameSink, FrameSocket, PolicedFrame as _, Principal, RequestCtx, ServiceError,
};
use agora_api::types;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::presence::Leases;
use super::{Gateway, close};
use crate::notifications::events::{self, Envelope, user_channel};

/// How long a replay waits for room in the outbound queue before the client counts as slow.
const REPLAY_PATIENCE: Duration = Duration::from_secs(5);
/// How long the writer may take to say goodbye once the connection ends.
const CLOSE_PATIENCE: Duration = Duration::from_secs(2);

/// Counts a connection while it lives, whichever way it ends (a panic included).
struct Live(Arc<super::Counts>);

impl Live {
    fn start(counts: Arc<super::Counts>) -> Self {
        counts.connections.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("realtime_connections").increment(1.0);
        metrics::counter!("realtime_connects_total").increment(1);
        Live(counts)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("realtime_connections").decrement(1.0);
    }
}

/// A socket's lease, given back on every path: explicitly when the connection ends, or from
/// `Drop` (a panic in a handler) on a spawned task.
struct Lease {
    leases: Leases,
    user: Uuid,
    connection: Uuid,
    held: bool,
}

impl Lease {
    async fn release(mut self) {
        self.held = false;
        give_back(self.leases.clone(), self.user, self.connection).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.held
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(give_back(self.leases.clone(), self.user, self.connection));
        }
    }
}

async fn give_back(leases: Leases, user: Uuid, connection: Uuid) {
    if leases.release(user, connection).await {
        leases.announce(user, false).await;
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
    const INTERNAL: Ending = Ending {
        code: close::INTERNAL,
        reason: "internal error",
    };
    const BROKER_STOPPED: Ending = Ending {
        code: close::INTERNAL,
        reason: "the event broker stopped",
    };
    const RESTART: Ending = Ending {
        code: close::SERVICE_RESTART,
        reason: "the instance is restarting; reconnect and resume",
    };
}

/// The outbound queue: bounded in frames (the channel) and in bytes (the counter the writer
/// gives back to).
struct Outbound {
    /// Boxed frames: the channel allocates its slots in blocks of 32 up front, so a slot's size
    /// is paid 32 times over by every idle connection.
    queue: mpsc::Sender<Box<Outgoing>>,
    bytes: Arc<AtomicUsize>,
    max_frames: usize,
    max_bytes: usize,
}

/// A frame waiting in the outbound queue: its text, and for a published event its envelope
/// (whose publish time the writer measures the delivery latency from).
struct Outgoing {
    text: Arc<str>,
    published: Option<Envelope>,
}

/// The state the reader loop keeps.
struct Connection<'a> {
    gateway: &'a Gateway,
    ctx: &'a RequestCtx<Principal>,
    out: Outbound,
    /// The highest message sequence sent per conversation (a live copy of a replayed message is
    /// dropped).
    delivered: HashMap<Uuid, i64>,
    invalid_in_a_row: u32,
    /// The session whose revocation closes the socket (a `reauth` may move it).
    session: String,
    /// When the socket's token expires.
    expires: Option<tokio::time::Instant>,
}

pub(super) async fn run(
    gateway: &Gateway,
    ctx: &RequestCtx<Principal>,
    socket: FrameSocket<types::ClientFrame, types::ServerFrame>,
) {
    let _live = Live::start(gateway.counts.clone());
    let limits = gateway.limits;
    let connection_id = Uuid::now_v7();
    let (sink, mut stream) = socket.split();
    stream.limit_inbound(limits.inbound_frames_per_sec, limits.inbound_burst);
    let (queue, outbound) = mpsc::channel(limits.queue_frames.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    let (end_tx, end_rx) = oneshot::channel();
    let mut writer = tokio::spawn(write(
        sink,
        outbound,
        bytes.clone(),
        end_rx,
        limits.heartbeat(),
    ));
    let conn = Connection {
        gateway,
        ctx,
        out: Outbound {
            queue,
            bytes,
            max_frames: limits.queue_frames.max(1),
            max_bytes: limits.queue_bytes,
        },
        delivered: HashMap::new(),
        invalid_in_a_row: 0,
        session: ctx.principal.session_id.to_string(),
        expires: ctx.principal.expires_at.map(deadline_of),
    };
    tracing::info!(%connection_id, "realtime connection opened");
    // Boxed: inline, `run`'s own state would hold a second copy of what `serve` holds.
    let ending = Box::pin(serve(conn, stream, connection_id)).await;
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

/// The instant a wall-clock time falls at (now, when it is past).
fn deadline_of(at: SystemTime) -> tokio::time::Instant {
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    tokio::time::Instant::now() + left
}

/// The earlier of two optional deadlines.
fn earliest(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Resolves at `deadline`, or never.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Admits the socket (drain, lease), says `ready`, then runs the reader loop; how it ended.
async fn serve(
    mut conn: Connection<'_>,
    mut stream: agora_api::rt::FrameStream<types::ClientFrame>,
    connection_id: Uuid,
) -> Ending {
    let gateway = conn.gateway;
    let limits = gateway.limits;
    let me = conn.me();
    let mut drain = gateway.drain.subscribe();
    if drain.borrow_and_update().is_some() {
        return Ending::RESTART;
    }
    // Boxed, like every large await before or after the loop: the loop's state is what every
    // idle connection holds for its whole life.
    let Some(count) = Box::pin(gateway.leases.acquire(me, connection_id)).await else {
        return Ending {
            code: close::TOO_MANY_CONNECTIONS,
            reason: "the user holds the most connections allowed",
        };
    };
    let lease = Lease {
        leases: gateway.leases.clone(),
        user: me,
        connection: connection_id,
        held: true,
    };
    if count == 1 {
        let leases = gateway.leases.clone();
        tokio::spawn(async move { leases.announce(me, true).await });
    }
    // Subscribed before `ready`: every event published after the client sees `ready` arrives.
    let mut events = gateway
        .kv
        .broker()
        .subscribe_buffered(&user_channel(me), Some(limits.event_buffer))
        .await;
    // A revoked session's sockets close on every instance: revocations are broadcast.
    let mut revocations = gateway
        .kv
        .broker()
        .subscribe(crate::identity::revocations::CHANNEL)
        .await;
    // In a block: a local that outlives the loop's awaits is stored in every idle
    // connection's state.
    let greeted = conn.send(&types::ServerFrame::ReadyFrame(types::ReadyFrame {
        type_: types::ReadyFrameType::Ready,
        user_id: me,
        connection_id,
        heartbeat_interval_secs: std::num::NonZeroU64::new(limits.heartbeat_secs.max(1))
            .unwrap_or(std::num::NonZeroU64::MIN),
        token_expires_at: conn.ctx.principal.expires_at.map(chrono::DateTime::from),
    }));
    let mut last_alive = Instant::now();
    let mut deadline = tokio::time::interval(limits.heartbeat());
    let mut restart_at: Option<tokio::time::Instant> = None;
    let ending = match greeted {
        Err(ending) => ending,
        Ok(()) => loop {
            tokio::select! {
                inbound = stream.next() => {
                    last_alive = Instant::now();
                    // Each client frame is its own trace (a socket lives for hours): what it
                    // publishes carries that trace to the recipients' deliveries.
                    // Boxed: a frame's work (a chat send, a replay) is a large future, and
                    // inline it would be reserved in every idle connection's state.
                    let trace = agora_api::rt::TraceContext::new_root();
                    if let Err(ending) = Box::pin(trace.scope(conn.inbound(inbound))).await {
                        break ending;
                    }
                }
                event = events.recv_or_lost() => {
                    match event {
                        Some(agora_kv::Received::Message(payload)) => {
                            if let Err(ending) = conn.forward(payload) {
                                break ending;
                            }
                        }
                        // Events were lost while this loop was busy: the client resumes from
                        // its positions, which the store answers without a gap.
                        Some(agora_kv::Received::Lost(_)) => {
                            metrics::counter!("realtime_slow_consumer_closes_total").increment(1);
                            break Ending::SLOW_CONSUMER;
                        }
                        None => break Ending::BROKER_STOPPED,
                    }
                }
                revoked = revocations.recv() => {
                    match revoked {
                        Some(id) if id.as_ref() == conn.session.as_bytes() => {
                            break Ending { code: close::POLICY, reason: "the session was revoked" };
                        }
                        Some(_) => {}
                        None => break Ending::BROKER_STOPPED,
                    }
                }
                _ = deadline.tick() => {
                    if last_alive.elapsed() > limits.heartbeat() * 2 {
                        break Ending { code: close::HEARTBEAT_TIMEOUT, reason: "no answer to pings" };
                    }
                    gateway.leases.renew(me, connection_id).await;
                }
                // One timer for both deadlines (each pending timer is stored in the state).
                () = until(earliest(conn.expires, restart_at)) => {
                    // An expired token first: reconnecting elsewhere with it would be refused.
                    if conn.expires.is_some_and(|at| at <= tokio::time::Instant::now()) {
                        break Ending { code: close::TOKEN_EXPIRED, reason: "the access token expired; reconnect with a fresh one" };
                    }
                    break Ending::RESTART;
                }
                changed = drain.changed(), if restart_at.is_none() => {
                    let window = match changed {
                        Ok(()) => *drain.borrow_and_update(),
                        // The gateway is gone: the instance is stopping.
                        Err(_) => Some(Duration::ZERO),
                    };
                    if let Some(window) = window {
                        restart_at = Some(tokio::time::Instant::now() + spread(connection_id, window));
                    }
                }
            }
        },
    };
    Box::pin(lease.release()).await;
    ending
}

/// This connection's moment within a drain window: spread evenly over the connections by the
/// random bits of its (v7) id, so reconnects trickle in.
fn spread(connection: Uuid, window: Duration) -> Duration {
    let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    // The low 64 bits of a v7 id are random.
    Duration::from_millis((connection.as_u128() as u64) % millis)
}

/// The writer task: drains the queue, pings every `heartbeat`, and closes with the ending the
/// reader sends (first, even while frames wait).
async fn write(
    mut sink: FrameSink<types::ServerFrame>,
    mut outbound: mpsc::Receiver<Box<Outgoing>>,
    bytes: Arc<AtomicUsize>,
    mut end: oneshot::Receiver<Ending>,
    heartbeat: Duration,
) {
    let mut ping = tokio::time::interval(heartbeat);
    ping.tick().await;
    loop {
        tokio::select! {
            biased;
            ending = &mut end => return close_with(&mut sink, ending).await,
            frame = outbound.recv() => {
                let Some(frame) = frame else {
                    // The reader loop ended (dropping the queue) and is about to send its
                    // ending: wait for it, or the socket would close without a close frame.
                    return close_with(&mut sink, (&mut end).await).await;
                };
                let Outgoing { text, published } = *frame;
                bytes.fetch_sub(text.len(), Ordering::Relaxed);
                if sink.send_text(&text).await.is_err() {
                    return;
                }
                metrics::counter!("realtime_frames_out_total").increment(1);
                if let Some(envelope) = published {
                    metrics::histogram!("realtime_delivery_seconds")
                        .record(envelope.age().as_secs_f64());
                    // Joins the publisher's trace (exported with the observability work).
                    tracing::debug!(
                        traceparent = envelope.traceparent.as_deref(),
                        "realtime event written"
                    );
                }
            }
            _ = ping.tick() => {
                if sink.ping().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends the close frame of the reader's ending (an internal error if the reader is gone).
async fn close_with(
    sink: &mut FrameSink<types::ServerFrame>,
    ending: Result<Ending, oneshot::error::RecvError>,
) {
    let ending = ending.unwrap_or(Ending::INTERNAL);
    let _ = tokio::time::timeout(CLOSE_PATIENCE, sink.close(ending.code, ending.reason)).await;
}

impl Connection<'_> {
    fn me(&self) -> Uuid {
        self.ctx.principal.user_id
    }

    /// Queues serialized frame text; a full queue (frames or bytes) is a slow consumer.
    fn queue_text(&self, text: Arc<str>, published: Option<Envelope>) -> Result<(), Ending> {
        let out = &self.out;
        let len = text.len();
        let queued = out.bytes.fetch_add(len, Ordering::Relaxed) + len;
        if queued > out.max_bytes {
            out.bytes.fetch_sub(len, Ordering::Relaxed);
            metrics::counter!("realtime_slow_consumer_closes_total").increment(1);
            return Err(Ending::SLOW_CONSUMER);
        }
        match out.queue.try_send(Box::new(Outgoing { text, published })) {
            Ok(()) => {
                let depth = out.max_frames - out.queue.capacity();
                metrics::histogram!("realtime_queue_depth").record(depth as f64);
                Ok(())
            }
            Err(e) => {
                out.bytes.fetch_sub(len, Ordering::Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => {
                        metrics::counter!("realtime_slow_consumer_closes_total").increment(1);
                        Err(Ending::SLOW_CONSUMER)
                    }
                    mpsc::error::TrySendError::Closed(_) => Err(Ending::CLIENT_CLOSED),
                }
            }
        }
    }

    fn send(&self, frame: &types::ServerFrame) -> Result<(), Ending> {
        match serde_json::to_string(frame) {
            Ok(text) => self.queue_text(text.into(), None),
            Err(e) => {
                tracing::error!(error = %e, "a server frame does not serialize");
                Err(Ending::INTERNAL)
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
        let Some((envelope, text)) = events::open(&payload) else {
            tracing::warn!("a message on a user channel is not an event envelope");
            return Ok(());
        };
        if let Some((conversation, sequence)) = message_position(text) {
            let high = self.delivered.entry(conversation).or_insert(0);
            if sequence <= *high {
                return Ok(());
            }
            *high = sequence;
        }
        self.queue_text(text.into(), Some(envelope))
    }

    async fn inbound(&mut self, inbound: Inbound<types::ClientFrame>) -> Result<(), Ending> {
        let frame = match inbound {
            Inbound::Frame(frame) => {
                self.invalid_in_a_row = 0;
                frame
            }
            // The frame's contract policy (its rate-limit class, its feature gate) refused it.
            Inbound::Refused { frame, error } => {
                self.invalid_in_a_row = 0;
                metrics::counter!("realtime_frames_in_total", "type" => frame.policy().name)
                    .increment(1);
                return self.refuse(error, client_message_id(&frame));
            }
            // Dropped unread: a client flooding frames gets one refusal per frame, and if it
            // does not read those either, its queue fills and it is closed as a slow consumer.
            Inbound::Throttled { retry_after_secs } => {
                return self.refuse(
                    ServiceError::RateLimited {
                        message: "too many frames on this connection".into(),
                        retry_after_secs,
                        policy: None,
                    },
                    None,
                );
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
        metrics::counter!("realtime_frames_in_total", "type" => frame.policy().name).increment(1);
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
            types::ClientFrame::AuthFrame(_) => self.refuse(
                ServiceError::invalid(vec![agora_api::rt::Violation {
                    location: agora_api::rt::Location::Body,
                    pointer: "/type".into(),
                    rule: "state",
                    message:
                        "the socket is already authenticated; send `reauth` to replace its token"
                            .into(),
                }]),
                None,
            ),
            types::ClientFrame::ReauthFrame(f) => match self.reauth(&f.token).await {
                Ok(frame) => self.send(&frame),
                Err(e) => self.refuse(e, None),
            },
        }
    }

    /// A `reauth` frame: a fresh token of the same user replaces the socket's (its session is
    /// the one whose revocation closes the socket from now on, its expiry the new deadline).
    async fn reauth(
        &mut self,
        token: &types::AccessToken,
    ) -> Result<types::ServerFrame, ServiceError> {
        let principal = self.gateway.authenticator.authenticate(token).await?;
        if principal.user_id != self.me() {
            return Err(ServiceError::Forbidden {
                message: "the token belongs to another user".into(),
            });
        }
        let expires_at = principal
            .expires_at
            .ok_or_else(|| ServiceError::internal("an access token without an expiry"))?;
        self.session = principal.session_id.to_string();
        self.expires = Some(deadline_of(expires_at));
        Ok(types::ServerFrame::ReauthedFrame(types::ReauthedFrame {
            type_: types::ReauthedFrameType::Reauthed,
            token_expires_at: chrono::DateTime::from(expires_at),
        }))
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

    /// A `send_message` frame: the same rules as the REST operation (its budget, like the
    /// operation's, was spent by the frame's contract policy). The stored message reaches this
    /// socket like every member's, through the broker.
    async fn send_message(&mut self, f: types::SendMessageFrame) -> Result<(), ServiceError> {
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
                    .map_err(|_| Ending::INTERNAL)?;
                    // The replay may be long: wait for room (a while), unlike live events.
                    let text: Arc<str> = text.into();
                    let len = text.len();
                    self.out.bytes.fetch_add(len, Ordering::Relaxed);
                    let queued = tokio::time::timeout(
                        REPLAY_PATIENCE,
                        self.out.queue.send(Box::new(Outgoing {
                            text,
                            published: None,
                        })),
                    )
                    .await;
                    if !matches!(queued, Ok(Ok(()))) {
                        self.out.bytes.fetch_sub(len, Ordering::Relaxed);
                        return Err(match queued {
                            Ok(_) => Ending::CLIENT_CLOSED,
                            Err(_) => Ending::SLOW_CONSUMER,
                        });
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

/// The id a refusal of `frame` names, so the client knows which send failed.
fn client_message_id(frame: &types::ClientFrame) -> Option<types::ClientMessageId> {
    match frame {
        types::ClientFrame::SendMessageFrame(f) => Some(f.client_message_id.clone()),
        _ => None,
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
