//! One place for what every request gets: a tracing span, one JSON log line, metrics, and the
//! mapping of failures to the error body. The generated adapter opens a [`Call`] first thing in
//! each handler and closes it with [`Call::finish`].

use std::time::Instant;

use dropshot::{HttpResponse, RequestContext, WebsocketChannelResult, WebsocketConnection};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use super::WebSocket;
use super::context::{ApiContext, Principal, RequestCtx};
use super::error::{ApiFailure, ServiceError};
use super::policy::Subject;
use super::respond::{Preflight, Reply};
use super::trace::TraceContext;
use super::upgrade::ChannelCredentials;

/// How long a channel opened without an `Authorization` header waits for its `auth` frame.
pub const AUTH_FRAME_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Static facts about an operation, emitted by the generator.
#[derive(Debug)]
pub struct Operation {
    /// The contract's `operationId`.
    pub id: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Route template, e.g. `/v1/users/{id}`.
    pub route: &'static str,
    /// Whether `security` requires a bearer token.
    pub secured: bool,
    /// `x-agora-role`: the role the caller must hold.
    pub role: Option<&'static str>,
    /// `x-agora-rate-limit`: the budget a call spends.
    pub rate_limit: Option<&'static str>,
    /// `x-agora-feature`: the flag that can switch the operation off.
    pub feature: Option<&'static str>,
}

impl Operation {
    /// An operation with no security and no policy (CORS preflights, fixtures).
    pub const fn public(id: &'static str, method: &'static str, route: &'static str) -> Self {
        Self {
            id,
            method,
            route,
            secured: false,
            role: None,
            rate_limit: None,
            feature: None,
        }
    }
}

/// One request passing through the adapter.
#[derive(Debug)]
pub struct Call {
    op: &'static Operation,
    start: Instant,
    span: tracing::Span,
    ctx: RequestCtx,
    user_id: Option<uuid::Uuid>,
    /// Set when the request headers exceed the limit: the request is refused before any work.
    headers_over: Option<usize>,
    /// Headers every answer to this request carries (CORS).
    response_headers: http::HeaderMap,
    _in_flight: InFlight,
}

impl Call {
    /// Opens the call: joins the caller's trace and opens the request span.
    pub fn start<S: Send + Sync + 'static>(
        rqctx: &RequestContext<ApiContext<S>>,
        op: &'static Operation,
    ) -> Self {
        let headers = rqctx.request.headers();
        let api = rqctx.context();
        let header_bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        let headers_over = (header_bytes > api.max_header_bytes).then_some(api.max_header_bytes);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let trace = TraceContext::from_traceparent(header("traceparent"));
        let span = tracing::info_span!(
            "request",
            request_id = %rqctx.request_id,
            trace_id = %trace.trace_id,
            operation_id = op.id,
            method = op.method,
            route = op.route,
            user_id = tracing::field::Empty,
        );
        let ctx = RequestCtx {
            request_id: rqctx.request_id.clone(),
            trace,
            principal: (),
            remote_addr: rqctx.request.remote_addr(),
            client_ip: api
                .trusted_proxies
                .client_ip(rqctx.request.remote_addr().ip(), headers),
            user_agent: header("user-agent").map(str::to_owned),
        };
        Self {
            op,
            start: Instant::now(),
            span,
            ctx,
            user_id: None,
            headers_over,
            response_headers: api.cors.response_headers(headers),
            _in_flight: InFlight::new(op),
        }
    }

    /// The request span, for instrumenting the handler body.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// The request's trace, for [`TraceContext::scope`] around the handler body.
    pub fn trace(&self) -> TraceContext {
        self.ctx.trace.clone()
    }

    /// Admits a call to a public operation: refuses over-long headers, then spends its rate-limit
    /// budget (per client address) and checks its feature gate.
    pub async fn admit_public<S: Send + Sync + 'static>(
        &mut self,
        rqctx: &RequestContext<ApiContext<S>>,
    ) -> Result<RequestCtx, ApiFailure> {
        self.admit_public_in(rqctx.context()).await
    }

    /// [`Call::admit_public`] once the request itself is gone (a channel after its upgrade).
    pub async fn admit_public_in<S: Send + Sync + 'static>(
        &mut self,
        api: &ApiContext<S>,
    ) -> Result<RequestCtx, ApiFailure> {
        self.admit()?;
        let ctx = self.ctx.clone();
        self.enforce_limit_and_feature(api, None).await?;
        Ok(ctx)
    }

    /// Refuses requests no operation should process (over-long headers).
    fn admit(&self) -> Result<(), ApiFailure> {
        match self.headers_over {
            Some(limit_bytes) => Err(self.fail(ServiceError::HeadersTooLarge { limit_bytes })),
            None => Ok(()),
        }
    }

    /// Answers `OPTIONS` on a route whose operations use `methods` (see [`super::cors`]).
    pub fn preflight<S: Send + Sync + 'static>(
        &self,
        rqctx: &RequestContext<ApiContext<S>>,
        methods: &[&str],
    ) -> Result<Preflight, ApiFailure> {
        self.admit()?;
        rqctx
            .context()
            .cors
            .preflight(rqctx.request.headers(), methods)
            .map(Preflight)
            .map_err(|e| self.fail(e))
    }

    /// Admits a call to an operation that requires `bearerAuth`, in the contract's order:
    /// authenticate the bearer token, check `x-agora-role`, spend the `x-agora-rate-limit`
    /// budget, check the `x-agora-feature` gate. Inputs are validated only after this.
    pub async fn admit_authenticated<S: Send + Sync + 'static>(
        &mut self,
        rqctx: &RequestContext<ApiContext<S>>,
    ) -> Result<RequestCtx<Principal>, ApiFailure> {
        self.admit()?;
        let token = bearer_token(rqctx.request.headers()).map_err(|e| self.fail(e))?;
        self.admit_token(rqctx.context(), token).await
    }

    /// Admits a secured channel: like [`Call::admit_authenticated`], except that the token may
    /// also come from the `Sec-WebSocket-Protocol` list or, when the upgrade carried none, from
    /// the first frame, `{"type":"auth","token":…}`, sent within [`AUTH_FRAME_PATIENCE`]
    /// (browsers cannot set headers on a WebSocket).
    pub async fn admit_channel<S: Send + Sync + 'static>(
        &mut self,
        api: &ApiContext<S>,
        credentials: ChannelCredentials,
        socket: &mut WebSocket,
    ) -> Result<RequestCtx<Principal>, ApiFailure> {
        self.admit()?;
        let token = match credentials {
            ChannelCredentials::Header(token) => token.map_err(|e| self.fail(e))?,
            ChannelCredentials::Protocol(token) => token,
            ChannelCredentials::FirstFrame => {
                super::frames::auth_frame(socket, AUTH_FRAME_PATIENCE)
                    .await
                    .map_err(|message| self.fail(ServiceError::Unauthenticated { message }))?
            }
        };
        self.admit_token(api, &token).await
    }

    /// Authenticates `token`, then checks the role, the rate limit and the feature gate.
    async fn admit_token<S: Send + Sync + 'static>(
        &mut self,
        api: &ApiContext<S>,
        token: &str,
    ) -> Result<RequestCtx<Principal>, ApiFailure> {
        let principal = api
            .authenticator
            .authenticate(token)
            .instrument(self.span.clone())
            .await;
        if let Err(ServiceError::Unauthenticated { .. }) = &principal {
            // RFC 6750 §3.1: a token was presented and refused; the client should get a new one
            // rather than prompt for credentials.
            self.response_headers.insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        let principal = principal.map_err(|e| self.fail(e))?;
        self.user_id = Some(principal.user_id);
        self.span
            .record("user_id", tracing::field::display(principal.user_id));
        let ctx = self.ctx.clone().with_principal(principal);
        if let Some(role) = self.op.role {
            api.authorizer
                .authorize(&ctx, self.op, role)
                .instrument(self.span.clone())
                .await
                .map_err(|e| self.fail(e))?;
        }
        self.enforce_limit_and_feature(api, Some(&ctx.principal))
            .await?;
        Ok(ctx)
    }

    async fn enforce_limit_and_feature<S: Send + Sync + 'static>(
        &self,
        api: &ApiContext<S>,
        caller: Option<&Principal>,
    ) -> Result<(), ApiFailure> {
        let subject = Subject {
            user: caller.map(|p| p.user_id),
            ip: self.ctx.client_ip,
        };
        super::policy::spend_and_gate(
            &*api.rate_limiter,
            &*api.features,
            self.op.rate_limit,
            self.op.feature,
            subject,
            caller,
        )
        .instrument(self.span.clone())
        .await
        .map_err(|e| self.fail(e))
    }

    /// Maps a service error for this request.
    pub fn fail(&self, error: ServiceError) -> ApiFailure {
        ApiFailure::from_service(error, &self.ctx.request_id)
    }

    /// Closes the call: writes the log line and the metrics, and hands Dropshot the result.
    pub fn finish<T: HttpResponse>(self, result: Result<T, ApiFailure>) -> Reply<T> {
        let status = match &result {
            Ok(response) => response.status_code().as_u16(),
            Err(failure) => failure.status.as_u16(),
        };
        self.record(status, result.as_ref().err());
        Reply::new(result, self.response_headers)
    }

    /// Closes a WebSocket call whose input or credentials were rejected after the upgrade: the
    /// socket is closed with a policy-violation frame carrying the error code and message.
    pub async fn reject_channel(
        self,
        mut socket: WebSocket,
        failure: ApiFailure,
    ) -> WebsocketChannelResult {
        self.record(failure.status.as_u16(), Some(&failure));
        let reason = format!("{}: {}", failure.body.error_code, failure.body.message);
        let frame = CloseFrame {
            code: CloseCode::Policy,
            reason: super::frames::close_reason(&reason).into(),
        };
        socket.close(Some(frame)).await?;
        Ok(())
    }

    /// Closes a WebSocket call when the service returns.
    pub fn finish_channel(self, outcome: Result<(), ServiceError>) -> WebsocketChannelResult {
        match outcome {
            Ok(()) => {
                self.record(101, None);
                Ok(())
            }
            Err(e) => {
                let failure = self.fail(e);
                self.record(failure.status.as_u16(), Some(&failure));
                Err(failure.body.message.into())
            }
        }
    }

    fn record(&self, status: u16, failure: Option<&ApiFailure>) {
        let latency = self.start.elapsed();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let user_id = self.user_id.map(|u| u.to_string());
        let _entered = self.span.enter();
        // One line per request with the same fields at every level; tracing needs the level to
        // be a constant, hence the macro rather than a variable.
        macro_rules! request_line {
            ($level:ident, $message:literal $(, $field:ident = $value:expr)*) => {
                tracing::$level!(
                    target: "agora::request",
                    request_id = %self.ctx.request_id,
                    trace_id = %self.ctx.trace.trace_id,
                    user_id = user_id.as_deref(),
                    client_ip = %self.ctx.client_ip,
                    operation_id = self.op.id,
                    method = self.op.method,
                    route = self.op.route,
                    status,
                    latency_ms,
                    $($field = $value,)*
                    $message
                )
            };
        }
        match failure {
            None => request_line!(info, "request completed"),
            Some(f) if f.status == http::StatusCode::INTERNAL_SERVER_ERROR => request_line!(
                error,
                "request failed",
                error_code = f.body.error_code.as_str(),
                error_internal = f.internal.as_deref().unwrap_or("")
            ),
            Some(f) if f.status.is_server_error() => {
                request_line!(
                    warn,
                    "request unavailable",
                    error_code = f.body.error_code.as_str()
                )
            }
            Some(f) => request_line!(
                info,
                "request rejected",
                error_code = f.body.error_code.as_str()
            ),
        }
        metrics::counter!(
            "http_requests_total",
            "operation_id" => self.op.id,
            "method" => self.op.method,
            "status" => status.to_string(),
        )
        .increment(1);
        metrics::histogram!(
            "http_request_duration_seconds",
            "operation_id" => self.op.id,
            "method" => self.op.method,
        )
        .record(latency.as_secs_f64());
        if let Some(failure) = failure {
            let class = if failure.status.is_server_error() {
                "5xx"
            } else {
                "4xx"
            };
            metrics::counter!(
                "http_errors_total",
                "operation_id" => self.op.id,
                "status_class" => class,
                "error_code" => failure.body.error_code.clone(),
            )
            .increment(1);
        }
    }
}

/// Completes the WebSocket handshake Dropshot started.
pub async fn accept_websocket(upgraded: WebsocketConnection) -> WebSocket {
    // Frames and messages over 64 KiB fail the read (closed with 1009 by the service).
    // tungstenite allocates its read buffer whole (128 KiB by default) for every socket: most
    // sockets are idle and their frames small (a chat frame is a few hundred bytes), so 512 bytes;
    // a larger frame is read in several chunks. Its write buffer is not preallocated, so the
    // default threshold costs nothing while idle.
    let config = WebSocketConfig::default()
        .max_message_size(Some(super::frames::MAX_FRAME_BYTES))
        .max_frame_size(Some(super::frames::MAX_FRAME_BYTES))
        .read_buffer_size(512);
    WebSocket::from_raw_socket(upgraded.into_inner(), Role::Server, Some(config)).await
}

pub(super) fn bearer_token(headers: &http::HeaderMap) -> Result<&str, ServiceError> {
    let missing = || ServiceError::Unauthenticated {
        message: "a bearer token is required".to_owned(),
    };
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ServiceError::Unauthenticated {
            message: "the Authorization header must use the Bearer scheme".to_owned(),
        });
    }
    Ok(token)
}

/// Counts requests in flight; a drop guard, so cancelled requests (client gone) are counted out too.
#[derive(Debug)]
struct InFlight(&'static str);

impl InFlight {
    fn new(op: &'static Operation) -> Self {
        metrics::gauge!("http_requests_in_flight", "operation_id" => op.id).increment(1.0);
        Self(op.id)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("http_requests_in_flight", "operation_id" => self.0).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_parsing() {
        let mut h = http::HeaderMap::new();
        assert!(bearer_token(&h).is_err());
        h.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h).unwrap(), "abc");
        h.insert(
            http::header::AUTHORIZATION,
            "bearer   abc ".parse().unwrap(),
        );
        assert_eq!(bearer_token(&h).unwrap(), "abc");
        h.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer_token(&h).is_err());
        h.insert(http::header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer_token(&h).is_err());
    }
}
