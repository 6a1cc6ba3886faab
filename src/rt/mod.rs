//! Hand-written runtime support for the generated adapter: request context, errors, extraction,
//! validation and observability. Generated code calls into this module; services see only
//! [`RequestCtx`], [`Principal`] and [`ServiceError`].

mod client_ip;
mod context;
pub mod cors;
mod error;
mod extract;
pub mod frames;
mod observe;
pub mod policy;
mod respond;
mod trace;
mod upgrade;
pub mod validate;

pub use client_ip::{BadProxy, TrustedProxies};
pub use context::{
    ApiContext, AuthFuture, Authenticator, DEFAULT_MAX_HEADER_BYTES, Principal, RequestCtx,
};
pub use cors::{CorsOrigins, CorsPolicy};
pub use error::{
    ApiFailure, ErrorBody, ErrorCode, ErrorDetail, ErrorResponse, RateLimitPolicy, ServiceError,
};
pub use extract::{
    Checked, HeaderParams, JsonBody, PathParams, QueryParams, ValidateJson, ValidateParams,
};
pub use frames::{
    FrameGuard, FramePolicy, FrameSink, FrameSocket, FrameStream, Inbound, PolicedFrame,
};
pub use observe::{Call, Operation, accept_websocket};
pub use policy::{Authorizer, FeatureFlags, FeatureState, PolicyFuture, RateLimiter, Subject};
pub use respond::{Preflight, Reply, TextResponse};
pub use trace::TraceContext;
pub use upgrade::{BEARER_PROTOCOL_PREFIX, ChannelCredentials, Handshake, SUBPROTOCOL, Upgrading};
pub use validate::{Location, Violation, Violations};

/// The WebSocket stream handed to services for `x-dropshot-websocket` operations.
pub type WebSocket = tokio_tungstenite::WebSocketStream<dropshot::WebsocketConnectionRaw>;

/// Re-exported so generated code needs no direct dependency on these crates.
#[doc(hidden)]
pub mod reexport {
    pub use dropshot;
    pub use schemars;
    pub use serde;
    pub use serde_json;
    pub use tokio_tungstenite;
    pub use tracing;
}
