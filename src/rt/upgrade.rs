//! The WebSocket handshake of a channel: which credentials the upgrade request carries, and
//! the `101` answer that names the subprotocol.
//!
//! The adapter serves channels as plain `GET` endpoints taking Dropshot's `WebsocketUpgrade`
//! rather than through `#[channel]`: a `#[channel]` function's future, which every connection
//! holds for its whole life, captures the whole `RequestContext` (and the adapter its own
//! copy), while an endpoint can read what the connection needs from the request and hand the
//! upgraded socket a closure holding only that. It also lets the answer carry
//! `Sec-WebSocket-Protocol`, which `#[channel]` cannot.

use dropshot::{ApiEndpointResponse, Body, HttpError, HttpResponse, WebsocketEndpointResult};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::error::ServiceError;

/// Names a `Result`'s success type.
pub trait SuccessOf {
    /// The success type.
    type Success;
}

impl<T, E> SuccessOf for Result<T, E> {
    type Success = T;
}

/// Dropshot's `101` answer (`WebsocketUpgrade::handle` returns it; Dropshot does not export
/// its name).
pub type SwitchingToWebsocket = <WebsocketEndpointResult as SuccessOf>::Success;

/// The subprotocol a browser offers with its token (`new WebSocket(url, ["agora",
/// "agora.bearer." + token])`); the server's answer selects it.
pub const SUBPROTOCOL: &str = "agora";

/// The prefix of the `Sec-WebSocket-Protocol` entry that carries an access token.
pub const BEARER_PROTOCOL_PREFIX: &str = "agora.bearer.";

/// Where a secured channel's access token comes from. Its `Debug` names the source only: the
/// token is a secret and must never reach a log line.
pub enum ChannelCredentials {
    /// An `Authorization` header (native clients); a malformed one is refused, not ignored.
    Header(Result<String, ServiceError>),
    /// An `agora.bearer.<token>` entry of `Sec-WebSocket-Protocol` (browsers, which cannot set
    /// headers on a WebSocket).
    Protocol(String),
    /// Neither: the client authenticates with its first frame.
    FirstFrame,
}

impl std::fmt::Debug for ChannelCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelCredentials::Header(Ok(_)) => "Header(<token>)",
            ChannelCredentials::Header(Err(_)) => "Header(<malformed>)",
            ChannelCredentials::Protocol(_) => "Protocol(<token>)",
            ChannelCredentials::FirstFrame => "FirstFrame",
        })
    }
}

/// What the upgrade request says about the handshake.
#[derive(Debug)]
pub struct Handshake {
    /// The token's source.
    pub credentials: ChannelCredentials,
    /// The subprotocol the answer selects: [`SUBPROTOCOL`] when the client offered it.
    pub protocol: Option<&'static str>,
}

impl Handshake {
    /// Reads the handshake from the upgrade request's headers.
    pub fn read(headers: &HeaderMap) -> Self {
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let protocol = offered.contains(&SUBPROTOCOL).then_some(SUBPROTOCOL);
        let credentials = if headers.contains_key(header::AUTHORIZATION) {
            ChannelCredentials::Header(super::observe::bearer_token(headers).map(str::to_owned))
        } else if let Some(token) = offered
            .iter()
            .find_map(|p| p.strip_prefix(BEARER_PROTOCOL_PREFIX))
        {
            ChannelCredentials::Protocol(token.to_owned())
        } else {
            ChannelCredentials::FirstFrame
        };
        Self {
            credentials,
            protocol,
        }
    }
}

/// The `101` answer to a channel's upgrade, naming the selected subprotocol if there is one.
pub struct Upgrading {
    switching: SwitchingToWebsocket,
    protocol: Option<&'static str>,
}

impl Upgrading {
    /// Dropshot's answer, plus `protocol` in `Sec-WebSocket-Protocol`.
    pub fn new(switching: SwitchingToWebsocket, protocol: Option<&'static str>) -> Self {
        Self {
            switching,
            protocol,
        }
    }
}

impl std::fmt::Debug for Upgrading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrading")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl HttpResponse for Upgrading {
    fn to_result(self) -> Result<http::Response<Body>, HttpError> {
        let mut response = self.switching.to_result()?;
        if let Some(protocol) = self.protocol {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        Ok(response)
    }

    fn response_metadata() -> ApiEndpointResponse {
        SwitchingToWebsocket::response_metadata()
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::SWITCHING_PROTOCOLS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_browser_offers_the_token_beside_the_subprotocol() {
        let h = Handshake::read(&headers(&[(
            "sec-websocket-protocol",
            "agora, agora.bearer.abc.def-ghi",
        )]));
        assert_eq!(h.protocol, Some(SUBPROTOCOL));
        assert!(matches!(h.credentials, ChannelCredentials::Protocol(t) if t == "abc.def-ghi"));
    }

    #[test]
    fn the_protocol_list_may_span_several_headers() {
        let h = Handshake::read(&headers(&[
            ("sec-websocket-protocol", "agora.bearer.t0ken"),
            ("sec-websocket-protocol", "chat, agora"),
        ]));
        assert_eq!(h.protocol, Some(SUBPROTOCOL));
        assert!(matches!(h.credentials, ChannelCredentials::Protocol(t) if t == "t0ken"));
    }

    #[test]
    fn the_authorization_header_wins_over_the_protocol_list() {
        let h = Handshake::read(&headers(&[
            ("authorization", "Bearer from-header"),
            (
                "sec-websocket-protocol",
                "agora, agora.bearer.from-protocol",
            ),
        ]));
        assert!(matches!(h.credentials, ChannelCredentials::Header(Ok(t)) if t == "from-header"));
    }

    #[test]
    fn a_malformed_authorization_header_is_refused_not_ignored() {
        let h = Handshake::read(&headers(&[("authorization", "Basic dXNlcg==")]));
        assert!(matches!(
            h.credentials,
            ChannelCredentials::Header(Err(ServiceError::Unauthenticated { .. }))
        ));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let h = Handshake::read(&headers(&[(
            "sec-websocket-protocol",
            "agora, agora.bearer.s3cret",
        )]));
        assert!(!format!("{h:?}").contains("s3cret"), "{h:?}");
    }

    #[test]
    fn without_credentials_the_first_frame_authenticates_and_no_protocol_is_selected() {
        let h = Handshake::read(&headers(&[("sec-websocket-protocol", "graphql-ws")]));
        assert_eq!(h.protocol, None);
        assert!(matches!(h.credentials, ChannelCredentials::FirstFrame));
    }
}
