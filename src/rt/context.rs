//! What a service method receives besides its typed inputs: who is calling and on which request.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use uuid::Uuid;

use super::policy::{AllOn, Authorizer, FeatureFlags, NoRoles, RateLimiter, Unlimited};
use super::{CorsPolicy, ServiceError, TraceContext, TrustedProxies};

/// The authenticated caller of an operation whose `security` requires a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user the token was issued to.
    pub user_id: Uuid,
    /// The session (refresh-token family) the token belongs to.
    pub session_id: Uuid,
    /// Roles granted to the user when the token was issued, e.g. `user`, `admin` (may lag a
    /// grant or a demotion by up to one token lifetime).
    pub roles: Vec<String>,
    /// When the token stops authenticating (`exp`); `None` for credentials that do not expire.
    /// A request is over long before; a long-lived channel closes at this time.
    pub expires_at: Option<std::time::SystemTime>,
}

impl Principal {
    /// Whether the principal holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Per-request context. `P` is [`Principal`] for authenticated operations and `()` for public ones,
/// so a service cannot forget to check that a caller is present: the type says so.
#[derive(Debug, Clone)]
pub struct RequestCtx<P = ()> {
    /// Dropshot's request id, also in the `x-request-id` header and every error body.
    pub request_id: String,
    /// W3C trace context: joined from `traceparent` when the client sent one.
    pub trace: TraceContext,
    /// The caller, for operations that require authentication.
    pub principal: P,
    /// The peer address of the connection (the load balancer's, behind one).
    pub remote_addr: SocketAddr,
    /// The client's address: the peer's, or the one a trusted proxy forwarded
    /// ([`super::TrustedProxies`]). Rate limits, sessions and the audit log use this.
    pub client_ip: IpAddr,
    /// The `User-Agent` header, when sent.
    pub user_agent: Option<String>,
}

impl<P> RequestCtx<P> {
    /// The same request, with a different principal type.
    pub fn with_principal<Q>(self, principal: Q) -> RequestCtx<Q> {
        RequestCtx {
            request_id: self.request_id,
            trace: self.trace,
            principal,
            remote_addr: self.remote_addr,
            client_ip: self.client_ip,
            user_agent: self.user_agent,
        }
    }
}

/// The future an [`Authenticator`] returns.
pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Principal, ServiceError>> + Send + 'a>>;

/// Verifies bearer tokens. The server provides one; the generated adapter calls it for every
/// operation whose `security` names `bearerAuth`.
pub trait Authenticator: Send + Sync + 'static {
    /// Returns the principal for a valid token, or [`ServiceError::Unauthenticated`].
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a>;
}

/// The Dropshot server context of the generated adapter: the service plus what the adapter needs.
pub struct ApiContext<S> {
    /// The implementation of the generated service trait.
    pub service: S,
    /// The bearer-token verifier.
    pub authenticator: Arc<dyn Authenticator>,
    /// Which browser origins may call the API (none by default).
    pub cors: CorsPolicy,
    /// The most request-header bytes (names, values and separators) an operation accepts;
    /// more is answered 431.
    pub max_header_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the client (none by default).
    pub trusted_proxies: TrustedProxies,
    /// Decides `x-agora-role` (by default nobody holds a role).
    pub authorizer: Arc<dyn Authorizer>,
    /// Spends `x-agora-rate-limit` budgets (by default unlimited).
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Reads `x-agora-feature` flags (by default all on).
    pub features: Arc<dyn FeatureFlags>,
}

/// Default of [`ApiContext::max_header_bytes`]: room for a bearer token, a trace context and a
/// browser's usual headers many times over.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

impl<S> ApiContext<S> {
    /// Wraps a service and its authenticator, with no cross-origin access and the default header
    /// limit.
    pub fn new(service: S, authenticator: Arc<dyn Authenticator>) -> Self {
        Self {
            service,
            authenticator,
            cors: CorsPolicy::default(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            trusted_proxies: TrustedProxies::default(),
            authorizer: Arc::new(NoRoles),
            rate_limiter: Arc::new(Unlimited),
            features: Arc::new(AllOn),
        }
    }

    /// Sets who holds which role.
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// Sets the rate-limit budgets.
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.rate_limiter = limiter;
        self
    }

    /// Sets the feature flags.
    pub fn with_features(mut self, features: Arc<dyn FeatureFlags>) -> Self {
        self.features = features;
        self
    }

    /// Sets the proxies whose `X-Forwarded-For` is believed.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Sets the cross-origin policy.
    pub fn with_cors(mut self, cors: CorsPolicy) -> Self {
        self.cors = cors;
        self
    }

    /// What polices a channel socket's client frames (`x-agora-*` on the frames' schemas) for
    /// `caller` (`None` on a public channel).
    pub fn frame_guard(
        &self,
        caller: Option<&Principal>,
        client_ip: IpAddr,
    ) -> super::frames::FrameGuard {
        super::frames::FrameGuard::new(
            Arc::clone(&self.rate_limiter),
            Arc::clone(&self.features),
            caller,
            client_ip,
        )
    }

    /// Sets the request-header limit.
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }
}
