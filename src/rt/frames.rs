//! A WebSocket that carries the contract's frames (`x-agora-frames`): inbound text frames are
//! parsed and validated against the client frame schema before the service sees them, outbound
//! frames are the server frame type serialized as JSON text.
//!
//! The socket splits into a [`FrameSink`] and a [`FrameStream`] so a service can write from one
//! task (its bounded outbound queue) while it reads in another.
//!
//! Policy lives in the contract here too: a client frame's schema may declare
//! `x-agora-rate-limit` and `x-agora-feature`, the generator copies them into
//! [`PolicedFrame::policy`], and the stream enforces them (rate limit, then feature gate, the
//! order operations use) before the service sees the frame — a refused frame arrives as
//! [`Inbound::Refused`], for the service to answer. A service may also cap the frames one
//! connection sends ([`FrameStream::limit_inbound`]), checked before a frame is even parsed.

use std::future::Future;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::WebSocket;
use super::context::Principal;
use super::error::ServiceError;
use super::extract::ValidateJson;
use super::policy::{FeatureFlags, RateLimiter, Subject};
use super::validate::{Location, Violation, Violations};

/// The largest frame a client may send (RFC 6455 close code 1009 beyond it).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What arrived from the client.
#[derive(Debug)]
pub enum Inbound<C> {
    /// A valid frame its policy admits.
    Frame(C),
    /// A valid frame its policy refused (its rate-limit budget is spent, or its feature is
    /// off): the frame, for the answer to name it, and the error to answer with.
    Refused {
        /// The refused frame.
        frame: C,
        /// Why.
        error: ServiceError,
    },
    /// A frame beyond the connection's inbound limit ([`FrameStream::limit_inbound`]), dropped
    /// unread.
    Throttled {
        /// Seconds until the connection may send again.
        retry_after_secs: u64,
    },
    /// A text frame that is not a valid client frame: every problem, with pointers into it.
    Invalid(Vec<Violation>),
    /// A binary frame (the channel speaks JSON text).
    Binary,
    /// The client answered a ping (or sent one, or a pong on its own): it is alive.
    Alive,
    /// A frame over [`MAX_FRAME_BYTES`].
    TooBig,
    /// The client closed, or the connection broke.
    Closed,
}

/// Why a frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The connection is gone.
    #[error("the connection is closed: {0}")]
    Closed(#[from] WsError),
    /// The frame did not serialize (a bug).
    #[error("the frame does not serialize: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A kind of client frame's policy: its schema's `x-agora-rate-limit` and `x-agora-feature`,
/// copied by the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePolicy {
    /// The frame's `type`.
    pub name: &'static str,
    /// The budget each frame of this kind spends.
    pub rate_limit: Option<&'static str>,
    /// The flag that switches this kind of frame off.
    pub feature: Option<&'static str>,
}

/// A client frame type whose kinds carry contract policy (implemented by the generator).
pub trait PolicedFrame {
    /// The policy of this frame's kind.
    fn policy(&self) -> &'static FramePolicy;
}

/// What enforces frame policy on one socket: the server's policy sources and the caller.
pub struct FrameGuard {
    rate_limiter: Arc<dyn RateLimiter>,
    features: Arc<dyn FeatureFlags>,
    caller: Option<Principal>,
    subject: Subject,
}

impl std::fmt::Debug for FrameGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameGuard")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl FrameGuard {
    /// A guard spending `rate_limiter` budgets and reading `features` for `caller` (`None` on
    /// a public channel, whose budgets are per client address).
    pub fn new(
        rate_limiter: Arc<dyn RateLimiter>,
        features: Arc<dyn FeatureFlags>,
        caller: Option<&Principal>,
        client_ip: IpAddr,
    ) -> Self {
        FrameGuard {
            rate_limiter,
            features,
            subject: Subject {
                user: caller.map(|p| p.user_id),
                ip: client_ip,
            },
            caller: caller.cloned(),
        }
    }

    /// Rate limit, then feature gate, as for operations.
    async fn check(&self, policy: &'static FramePolicy) -> Result<(), ServiceError> {
        super::policy::spend_and_gate(
            &*self.rate_limiter,
            &*self.features,
            policy.rate_limit,
            policy.feature,
            self.subject,
            self.caller.as_ref(),
        )
        .await
    }
}

/// A token bucket of one connection's frames (not shared, so no lock).
#[derive(Debug)]
struct InboundBudget {
    tokens: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

impl InboundBudget {
    fn new(per_sec: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        InboundBudget {
            tokens: burst,
            at: Instant::now(),
            rate: f64::from(per_sec.max(1)),
            burst,
        }
    }

    /// Spends one frame; the seconds until one is available when none is.
    fn spend(&mut self) -> Result<(), u64> {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// A channel socket of client frames `C` and server frames `S`.
///
/// Boxed inside: the socket is passed down through several async calls, and each one's future
/// stores its arguments, so a 400-byte socket would be held several times over by every
/// connection for its whole life.
pub struct FrameSocket<C, S> {
    socket: Box<WebSocket>,
    guard: Arc<FrameGuard>,
    _frames: PhantomData<fn(S) -> C>,
}

impl<C, S> std::fmt::Debug for FrameSocket<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSocket").finish_non_exhaustive()
    }
}

impl<C: ValidateJson + PolicedFrame + Send + 'static, S: Serialize> FrameSocket<C, S> {
    /// Wraps an accepted socket whose frames `guard` polices.
    pub fn new(socket: WebSocket, guard: FrameGuard) -> Self {
        FrameSocket {
            socket: Box::new(socket),
            guard: Arc::new(guard),
            _frames: PhantomData,
        }
    }

    /// The writing and the reading half.
    pub fn split(self) -> (FrameSink<S>, FrameStream<C>) {
        let (sink, stream) = (*self.socket).split();
        (
            FrameSink {
                sink,
                _frames: PhantomData,
            },
            FrameStream {
                stream,
                guard: self.guard,
                budget: None,
                checking: None,
                _frames: PhantomData,
            },
        )
    }
}

/// The writing half.
pub struct FrameSink<S> {
    sink: SplitSink<WebSocket, Message>,
    _frames: PhantomData<fn(S)>,
}

impl<S> std::fmt::Debug for FrameSink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSink").finish_non_exhaustive()
    }
}

impl<S: Serialize> FrameSink<S> {
    /// Writes one frame.
    pub async fn send(&mut self, frame: &S) -> Result<(), SendError> {
        let text = serde_json::to_string(frame)?;
        self.sink.send(Message::text(text)).await?;
        Ok(())
    }

    /// Writes frame text serialized before (one serialization for many recipients).
    pub async fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.sink.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends a WebSocket ping (the heartbeat).
    pub async fn ping(&mut self) -> Result<(), SendError> {
        self.sink.send(Message::Ping(Vec::new().into())).await?;
        Ok(())
    }

    /// Closes with `code` and `reason` (cut to the 123 bytes a close frame holds).
    pub async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: close_reason(reason).into(),
        };
        // A peer that is gone cannot be told; closing is best effort.
        let _ = self.sink.send(Message::Close(Some(frame))).await;
        let _ = self.sink.close().await;
    }
}

/// `reason` cut to the 123 bytes a close frame holds (RFC 6455), on a character boundary.
pub(crate) fn close_reason(reason: &str) -> String {
    reason
        .char_indices()
        .take_while(|(i, c)| i + c.len_utf8() <= 123)
        .map(|(_, c)| c)
        .collect()
}

/// The reading half.
pub struct FrameStream<C> {
    stream: SplitStream<WebSocket>,
    /// Shared with the policy check in flight (which owns what it needs, see `checking`).
    guard: Arc<FrameGuard>,
    budget: Option<InboundBudget>,
    /// A frame read off the socket whose policy check has not finished: kept here, not in the
    /// `next` future, so a caller that drops that future (a `select!` another branch won) gets
    /// the frame from its next call instead of losing it.
    checking: Option<Pin<Box<dyn Future<Output = Inbound<C>> + Send>>>,
    _frames: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for FrameStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStream").finish_non_exhaustive()
    }
}

impl<C: ValidateJson + PolicedFrame + Send + 'static> FrameStream<C> {
    /// Caps this connection's data frames (text or binary) at `per_sec`, with bursts of
    /// `burst`; a frame beyond arrives as [`Inbound::Throttled`], unparsed.
    pub fn limit_inbound(&mut self, per_sec: u32, burst: u32) {
        self.budget = Some(InboundBudget::new(per_sec, burst));
    }

    /// The next thing the client did.
    ///
    /// Cancel-safe: a frame whose policy check was interrupted is finished and returned by the
    /// next call, so `next` can be one branch of a `select!` loop.
    pub async fn next(&mut self) -> Inbound<C> {
        loop {
            if let Some(checking) = &mut self.checking {
                let inbound = checking.as_mut().await;
                // Taken as soon as it finished: a finished future is never polled again.
                self.checking = None;
                return inbound;
            }
            match self.read().await {
                Inbound::Frame(frame) => {
                    let policy = frame.policy();
                    if policy.rate_limit.is_none() && policy.feature.is_none() {
                        return Inbound::Frame(frame);
                    }
                    let guard = Arc::clone(&self.guard);
                    self.checking = Some(Box::pin(async move {
                        match guard.check(policy).await {
                            Ok(()) => Inbound::Frame(frame),
                            Err(error) => Inbound::Refused { frame, error },
                        }
                    }));
                }
                other => return other,
            }
        }
    }

    /// Reads and parses one frame (cancel-safe: only the socket read awaits).
    async fn read(&mut self) -> Inbound<C> {
        let text = match self.stream.next().await {
            None => return Inbound::Closed,
            Some(Err(WsError::Capacity(_))) => return Inbound::TooBig,
            Some(Err(_)) => return Inbound::Closed,
            Some(Ok(Message::Text(text))) => Some(text),
            Some(Ok(Message::Binary(_))) => None,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Inbound::Alive,
            Some(Ok(Message::Close(_))) => return Inbound::Closed,
            // Raw frames are never yielded when reading messages.
            Some(Ok(Message::Frame(_))) => return Inbound::Alive,
        };
        if let Some(budget) = &mut self.budget
            && let Err(retry_after_secs) = budget.spend()
        {
            return Inbound::Throttled { retry_after_secs };
        }
        let Some(text) = text else {
            return Inbound::Binary;
        };
        parse::<C>(text.as_str())
    }
}

/// Reads the first frame of a socket opened without credentials, which must be
/// `{"type":"auth","token":…}` and arrive within `patience`; returns its token, or why the
/// socket is refused. Pings are answered meanwhile (tungstenite does so while reading).
pub(crate) async fn auth_frame(
    socket: &mut WebSocket,
    patience: std::time::Duration,
) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Auth {
        #[serde(rename = "type")]
        kind: String,
        token: String,
    }
    let first = tokio::time::timeout(patience, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                _ => return None,
            }
        }
    })
    .await
    .map_err(|_| {
        format!(
            "a bearer token is required: send an `auth` frame first, within {} s",
            patience.as_secs()
        )
    })?
    .ok_or_else(|| "the socket closed before its `auth` frame".to_owned())?;
    match serde_json::from_str::<Auth>(first.as_str()) {
        Ok(auth) if auth.kind == "auth" && !auth.token.is_empty() => Ok(auth.token),
        _ => Err(
            "the first frame of a socket without an Authorization header must be \
                  `{\"type\":\"auth\",\"token\":…}`"
                .to_owned(),
        ),
    }
}

/// Parses and validates one client frame.
pub fn parse<C: ValidateJson>(text: &str) -> Inbound<C> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Inbound::Invalid(vec![Violation {
                location: Location::Body,
                pointer: String::new(),
                rule: "json",
                message: format!("is not JSON: {e}"),
            }]);
        }
    };
    let mut out = Violations::new(Location::Body);
    C::validate_json(&value, &mut out);
    if !out.is_empty() {
        return Inbound::Invalid(out.into_vec());
    }
    match serde_json::from_value(value) {
        Ok(frame) => Inbound::Frame(frame),
        // The validator admitted it, so the types disagree with the schema (a bug): still the
        // client's frame that is refused, not the connection.
        Err(e) => Inbound::Invalid(vec![Violation {
            location: Location::Body,
            pointer: String::new(),
            rule: "type",
            message: e.to_string(),
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbound_budget_allows_its_burst_then_names_the_wait() {
        let mut budget = InboundBudget::new(1, 3);
        assert!((0..3).all(|_| budget.spend().is_ok()));
        assert_eq!(budget.spend(), Err(1));
    }

    #[test]
    fn close_reasons_fit_a_close_frame_on_a_character_boundary() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100); // 200 bytes
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && cut.len() >= 122, "{}", cut.len());
        assert!(cut.chars().all(|c| c == 'é'));
    }

    /// `next` is one branch of the gateway's `select!`: when another branch wins while a
    /// frame's policy check is pending, the frame must come out of the next call, checked
    /// once. A real socket (Dropshot upgrade, tungstenite client); the rate limiter holds the
    /// check open until the test releases it, so the interleaving is forced, not timed.
    #[tokio::test]
    async fn a_frame_whose_check_was_interrupted_comes_out_of_the_next_call() {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use dropshot::{
            ApiDescription, ConfigDropshot, RequestContext, ServerBuilder, WebsocketEndpointResult,
            WebsocketUpgrade, endpoint,
        };
        use tokio::sync::{Notify, Semaphore, oneshot};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

        #[derive(serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
        struct Say {
            text: String,
        }
        impl ValidateJson for Say {
            fn validate_json(_: &Value, _: &mut Violations) {}
        }
        impl PolicedFrame for Say {
            fn policy(&self) -> &'static FramePolicy {
                &FramePolicy {
                    name: "say",
                    rate_limit: Some("chat"),
                    feature: None,
                }
            }
        }

        /// A limiter that says when a check started and finishes it only when released.
        struct Gate {
            entered: Notify,
            release: Semaphore,
            spent: AtomicUsize,
        }
        impl RateLimiter for Gate {
            fn consume<'a>(
                &'a self,
                _: &'static str,
                _: Subject,
            ) -> super::super::PolicyFuture<'a, ()> {
                Box::pin(async move {
                    self.spent.fetch_add(1, Ordering::SeqCst);
                    self.entered.notify_one();
                    let _permit = self.release.acquire().await;
                    Ok(())
                })
            }
        }

        struct Harness {
            gate: Arc<Gate>,
            outcome: Mutex<Option<oneshot::Sender<Option<String>>>>,
        }

        #[endpoint { method = GET, path = "/socket" }]
        async fn socket(
            rqctx: RequestContext<Arc<Harness>>,
            upgrade: WebsocketUpgrade,
        ) -> WebsocketEndpointResult {
            let harness = Arc::clone(rqctx.context());
            upgrade.handle(move |upgraded| async move {
                let socket = super::super::accept_websocket(upgraded).await;
                let gate: Arc<dyn RateLimiter> = harness.gate.clone();
                let guard = FrameGuard::new(
                    gate,
                    Arc::new(super::super::policy::AllOn),
                    None,
                    [127, 0, 0, 1].into(),
                );
                let (_sink, mut stream) = FrameSocket::<Say, Say>::new(socket, guard).split();
                tokio::select! {
                    biased;
                    () = harness.gate.entered.notified() => {}
                    _ = stream.next() => panic!("the check finished before it was released"),
                }
                harness.gate.release.add_permits(1);
                let text = match stream.next().await {
                    Inbound::Frame(Say { text }) => Some(text),
                    _ => None,
                };
                if let Some(tx) = harness.outcome.lock().ok().and_then(|mut o| o.take()) {
                    let _ = tx.send(text);
                }
                Ok(())
            })
        }

        let mut api = ApiDescription::new();
        api.register(socket).expect("register");
        let (tx, rx) = oneshot::channel();
        let gate = Arc::new(Gate {
            entered: Notify::new(),
            release: Semaphore::new(0),
            spent: AtomicUsize::new(0),
        });
        let harness = Arc::new(Harness {
            gate: Arc::clone(&gate),
            outcome: Mutex::new(Some(tx)),
        });
        let config = ConfigDropshot {
            bind_address: "127.0.0.1:0".parse().expect("address"),
            ..Default::default()
        };
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let server = ServerBuilder::new(api, harness, log)
            .config(config)
            .start()
            .expect("server");
        let addr = server.local_addr();
        let request = format!("ws://{addr}/socket")
            .into_client_request()
            .expect("request");
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut client, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .expect("handshake");
        client
            .send(Message::text(r#"{"text":"hello"}"#))
            .await
            .expect("send");
        // A bound on a hang (the bug lost the frame, so the second call would wait forever),
        // not a timing assertion.
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), rx)
            .await
            .expect("the second call returns")
            .expect("the handler answers");
        assert_eq!(outcome.as_deref(), Some("hello"));
        assert_eq!(
            gate.spent.load(Ordering::SeqCst),
            1,
            "the frame was checked once"
        );
        drop(client);
        server.close().await.expect("close");
    }
}
