//! The typed real-time client: a `connect_realtime` socket whose frames are the contract's
//! `ClientFrame` and `ServerFrame` (generated with the rest of this crate).
//!
//! ```no_run
//! # async fn demo() -> Result<(), agora_client::realtime::RealtimeError> {
//! use agora_client::realtime::{Event, Realtime};
//! let mut socket = Realtime::connect("http://127.0.0.1:8080", "an access token").await?;
//! while let Event::Frame(frame) = socket.next().await? {
//!     println!("{frame:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! WebSocket pings are answered while reading; keep calling [`Realtime::next`].

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::types::{ClientFrame, ServerFrame};

include!(concat!(env!("OUT_DIR"), "/server_frame_types.rs"));

/// A frame's `type`, when it is a JSON object with a string `type`.
fn frame_type(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Typed>(text).ok().map(|t| t.kind)
}

/// Why the socket failed.
#[derive(Debug)]
pub enum RealtimeError {
    /// The base URL is not `http://host:port`.
    Url(String),
    /// The TCP connection or the upgrade failed (a refused upgrade carries the HTTP status).
    Connect(WsError),
    /// The connection broke.
    Socket(WsError),
    /// The server sent a text frame that is not a `ServerFrame`.
    Decode(serde_json::Error),
}

impl std::fmt::Display for RealtimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RealtimeError::Url(u) => write!(f, "not an http:// base URL: {u}"),
            RealtimeError::Connect(e) => write!(f, "cannot connect: {e}"),
            RealtimeError::Socket(e) => write!(f, "the connection broke: {e}"),
            RealtimeError::Decode(e) => write!(f, "not a server frame: {e}"),
        }
    }
}

impl std::error::Error for RealtimeError {}

/// What the server did.
#[derive(Debug, Clone)]
pub enum Event {
    /// A frame.
    Frame(ServerFrame),
    /// A frame of a type newer than this client (the contract lets servers add frame types
    /// in a minor version; skip it).
    Unknown {
        /// Its `type`.
        frame_type: String,
        /// The frame as sent.
        text: String,
    },
    /// The server closed, with its close code and reason.
    Closed {
        /// The close code (`x-agora-close-codes`); `None` without a close frame.
        code: Option<u16>,
        /// The reason.
        reason: String,
    },
}

/// A connected real-time socket.
#[derive(Debug)]
pub struct Realtime {
    socket: WebSocketStream<TcpStream>,
    protocol: Option<String>,
}

/// The subprotocol of the real-time channel, offered beside a token (see
/// [`Realtime::connect_with_protocol`]).
pub const SUBPROTOCOL: &str = "agora";
/// The prefix of the `Sec-WebSocket-Protocol` entry that carries the access token.
pub const BEARER_PROTOCOL_PREFIX: &str = "agora.bearer.";

impl Realtime {
    /// Connects to `/v1/realtime` of `base_url` (`http://host:port`) with an access token.
    pub async fn connect(base_url: &str, token: &str) -> Result<Self, RealtimeError> {
        Self::connect_with(base_url, Some(token)).await
    }

    /// Connects with a token, or without any `Authorization` header (the server closes such a
    /// socket with 1008).
    pub async fn connect_with(base_url: &str, token: Option<&str>) -> Result<Self, RealtimeError> {
        let headers = match token {
            Some(token) => vec![("authorization", format!("Bearer {token}"))],
            None => Vec::new(),
        };
        Self::open(base_url, headers).await
    }

    /// Connects as a browser does, which cannot set headers on a WebSocket: the token travels
    /// in the `Sec-WebSocket-Protocol` list (`agora`, `agora.bearer.<token>`) and the server
    /// selects `agora` (a handshake that selects nothing fails here, as in a browser).
    pub async fn connect_with_protocol(base_url: &str, token: &str) -> Result<Self, RealtimeError> {
        let offer = format!("{SUBPROTOCOL}, {BEARER_PROTOCOL_PREFIX}{token}");
        Self::open(base_url, vec![("sec-websocket-protocol", offer)]).await
    }

    async fn open(
        base_url: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Result<Self, RealtimeError> {
        let authority = base_url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| RealtimeError::Url(base_url.to_owned()))?;
        let mut request = format!("ws://{authority}/v1/realtime")
            .into_client_request()
            .map_err(RealtimeError::Connect)?;
        for (name, value) in headers {
            let value = value.parse().map_err(|_| {
                RealtimeError::Url(format!("the {name} value is not a header value"))
            })?;
            request.headers_mut().insert(name, value);
        }
        let tcp = TcpStream::connect(authority)
            .await
            .map_err(|e| RealtimeError::Connect(WsError::Io(e)))?;
        let (socket, response) = tokio_tungstenite::client_async(request, tcp)
            .await
            .map_err(RealtimeError::Connect)?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Realtime { socket, protocol })
    }

    /// The subprotocol the server selected in its handshake answer, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), RealtimeError> {
        let text = serde_json::to_string(frame).map_err(RealtimeError::Decode)?;
        self.send_text(&text).await
    }

    /// Sends any text (to see how the server answers frames that are not valid).
    pub async fn send_text(&mut self, text: &str) -> Result<(), RealtimeError> {
        self.socket
            .send(Message::text(text))
            .await
            .map_err(RealtimeError::Socket)
    }

    /// The next frame or the close.
    pub async fn next(&mut self) -> Result<Event, RealtimeError> {
        loop {
            match self.socket.next().await {
                None => {
                    return Ok(Event::Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Ok(Event::Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
                Some(Err(e)) => return Err(RealtimeError::Socket(e)),
                Some(Ok(Message::Text(text))) => {
                    return match serde_json::from_str(text.as_str()) {
                        Ok(frame) => Ok(Event::Frame(frame)),
                        // The contract lets servers add frame types in a minor version; a
                        // frame of a known type that does not decode is a real error.
                        Err(e) => match frame_type(text.as_str()) {
                            Some(kind) if !KNOWN_FRAME_TYPES.contains(&kind.as_str()) => {
                                Ok(Event::Unknown {
                                    frame_type: kind,
                                    text: text.as_str().to_owned(),
                                })
                            }
                            _ => Err(RealtimeError::Decode(e)),
                        },
                    };
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Event::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                }
                // Pings are answered by the library; binary frames are not part of the channel.
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Closes normally.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
