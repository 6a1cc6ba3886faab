//! A WebSocket that carries the contract's frames (`x-agora-frames`): inbound text frames are
//! parsed and validated against the client frame schema before the service sees them, outbound
//! frames are the server frame type serialized as JSON text.
//!
//! The socket splits into a [`FrameSink`] and a [`FrameStream`] so a service can write from one
//! task (its bounded outbound queue) while it reads in another.

use std::marker::PhantomData;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::WebSocket;
use super::extract::ValidateJson;
use super::validate::{Location, Violation, Violations};

/// The largest frame a client may send (RFC 6455 close code 1009 beyond it).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What arrived from the client.
#[derive(Debug)]
pub enum Inbound<C> {
    /// A valid frame.
    Frame(C),
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

/// A channel socket of client frames `C` and server frames `S`.
pub struct FrameSocket<C, S> {
    socket: WebSocket,
    _frames: PhantomData<fn(S) -> C>,
}

impl<C, S> std::fmt::Debug for FrameSocket<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSocket").finish_non_exhaustive()
    }
}

impl<C: ValidateJson, S: Serialize> FrameSocket<C, S> {
    /// Wraps an accepted socket.
    pub fn new(socket: WebSocket) -> Self {
        FrameSocket {
            socket,
            _frames: PhantomData,
        }
    }

    /// The writing and the reading half.
    pub fn split(self) -> (FrameSink<S>, FrameStream<C>) {
        let (sink, stream) = self.socket.split();
        (
            FrameSink {
                sink,
                _frames: PhantomData,
            },
            FrameStream {
                stream,
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
    _frames: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for FrameStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStream").finish_non_exhaustive()
    }
}

impl<C: ValidateJson> FrameStream<C> {
    /// The next thing the client did.
    pub async fn next(&mut self) -> Inbound<C> {
        match self.stream.next().await {
            None => Inbound::Closed,
            Some(Err(WsError::Capacity(_))) => Inbound::TooBig,
            Some(Err(_)) => Inbound::Closed,
            Some(Ok(Message::Text(text))) => parse(text.as_str()),
            Some(Ok(Message::Binary(_))) => Inbound::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Inbound::Alive,
            Some(Ok(Message::Close(_))) => Inbound::Closed,
            // Raw frames are never yielded when reading messages.
            Some(Ok(Message::Frame(_))) => Inbound::Alive,
        }
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
    fn close_reasons_fit_a_close_frame_on_a_character_boundary() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100); // 200 bytes
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && cut.len() >= 122, "{}", cut.len());
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
