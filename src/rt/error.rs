//! Errors: the one closed enum services return, and its single mapping to an HTTP answer.
//!
//! A [`ServiceError`] carries an external message for clients and, for `Internal`, context that only
//! reaches the log line. [`ApiFailure`] is the HTTP form; it is built in exactly one place,
//! [`ApiFailure::from_service`], so every endpoint answers errors the same way.

use std::fmt;
use std::marker::PhantomData;

use dropshot::{ErrorStatusCode, HttpError};
use http::StatusCode;
use schemars::JsonSchema;
use serde::Serialize;

use super::validate::Violation;

macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// Every `error_code` the server can answer: the contract lists the same set on
        /// `ApiError.error_code` (`x-extensible-enum`), which a test holds against [`ErrorCode::ALL`].
        /// Clients switch on the known codes and fall back on the status for codes added later.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $code, "`")]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every code, in the contract's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The wire form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidRequest => "invalid_request",
    Unauthenticated => "unauthenticated",
    Forbidden => "forbidden",
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
    NotAcceptable => "not_acceptable",
    Conflict => "conflict",
    PayloadTooLarge => "payload_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    HeadersTooLarge => "headers_too_large",
    RateLimited => "rate_limited",
    Internal => "internal",
    Unavailable => "unavailable",
    FeatureDisabled => "feature_disabled",
    HandleTaken => "handle_taken",
    EmailTaken => "email_taken",
    OwnRoleChange => "own_role_change",
    JobNotDead => "job_not_dead",
    JobPendingDuplicate => "job_pending_duplicate",
    AlreadyFriends => "already_friends",
    UserBlocked => "user_blocked",
    IdempotencyKeyReused => "idempotency_key_reused",
    NotAGroup => "not_a_group",
    ConversationFull => "conversation_full",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong in a service call, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or violates a rule; `details` name the fields.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        details: Vec<Violation>,
    },
    /// No valid credentials.
    #[error("{message}")]
    Unauthenticated { message: String },
    /// Valid credentials, but not allowed.
    #[error("{message}")]
    Forbidden { message: String },
    /// The resource does not exist (or the caller may not know it exists).
    #[error("{message}")]
    NotFound { message: String },
    /// The request conflicts with the current state; `code` says how (`conflict`, or a domain
    /// code such as `handle_taken`).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// The body is larger than the operation accepts.
    #[error("request body exceeds the limit of {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// The request headers are larger than the server accepts.
    #[error("request headers exceed the limit of {limit_bytes} bytes")]
    HeadersTooLarge { limit_bytes: usize },
    /// Unsupported `Content-Type`.
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    /// A rate limit was hit.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
        /// The limit that was hit, for the `RateLimit-Policy` / `RateLimit` headers.
        policy: Option<RateLimitPolicy>,
    },
    /// The operation's `x-agora-feature` is switched off for this caller.
    #[error("{feature} is switched off; retry later")]
    FeatureDisabled {
        feature: String,
        retry_after_secs: u64,
    },
    /// A dependency or the server itself cannot serve now; retry later.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// A bug or an unexpected failure. `context` goes to the log, never to the client.
    #[error("internal error: {context}")]
    Internal { context: String },
}

impl ServiceError {
    /// A validation failure with field details.
    pub fn invalid(details: Vec<Violation>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("invalid request: {}", one.describe()),
            many => format!("invalid request: {} fields are invalid", many.len()),
        };
        Self::InvalidRequest { message, details }
    }

    /// An internal failure with context for the log.
    pub fn internal(context: impl fmt::Display) -> Self {
        Self::Internal {
            context: context.to_string(),
        }
    }
}

/// A named rate limit: `quota` requests per `window_secs` (IETF RateLimit header fields draft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// The policy name clients see, e.g. `auth-ip`.
    pub name: String,
    /// Requests allowed per window.
    pub quota: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// The JSON body of every error response (the contract's `ApiError` schema).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error_code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request id.
    pub request_id: String,
    /// Offending fields, for validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ErrorDetail>>,
}

/// One offending field (the contract's `ApiErrorDetail` schema).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ErrorDetail {
    /// `body`, `path`, `query` or `header`.
    pub location: String,
    /// JSON pointer to the field.
    pub pointer: String,
    /// The schema keyword that failed.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

/// An error on its way to the client: status, body, headers, and what only the log may see.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    /// The HTTP status (4xx or 5xx).
    pub status: StatusCode,
    /// The body (boxed: failures travel in every `Result` of the adapter, keep them small).
    pub body: Box<ErrorBody>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after_secs: Option<u64>,
    /// The limit behind a 429 (boxed: rare, and failures should stay small).
    pub rate_limit: Option<Box<RateLimitPolicy>>,
    /// Detail for the log line only.
    pub internal: Option<String>,
}

impl ApiFailure {
    /// The one mapping from domain errors to HTTP.
    pub fn from_service(error: ServiceError, request_id: &str) -> Self {
        let external = error.to_string();
        let rate_limit = match &error {
            ServiceError::RateLimited {
                policy: Some(p), ..
            } => Some(Box::new(p.clone())),
            _ => None,
        };
        let (status, code, retry_after_secs, internal, details) = match error {
            ServiceError::InvalidRequest { details, .. } => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                None,
                None,
                details,
            ),
            ServiceError::Unauthenticated { .. } => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                None,
                None,
                vec![],
            ),
            ServiceError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                None,
                None,
                vec![],
            ),
            ServiceError::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                None,
                None,
                vec![],
            ),
            ServiceError::Conflict { code, .. } => (StatusCode::CONFLICT, code, None, None, vec![]),
            ServiceError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                None,
                None,
                vec![],
            ),
            ServiceError::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ErrorCode::HeadersTooLarge,
                None,
                None,
                vec![],
            ),
            ServiceError::UnsupportedMediaType { .. } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                None,
                None,
                vec![],
            ),
            ServiceError::RateLimited {
                retry_after_secs, ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                Some(retry_after_secs),
                None,
                vec![],
            ),
            ServiceError::Unavailable {
                retry_after_secs, ..
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                Some(retry_after_secs),
                None,
                vec![],
            ),
            ServiceError::FeatureDisabled {
                retry_after_secs, ..
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::FeatureDisabled,
                Some(retry_after_secs),
                None,
                vec![],
            ),
            ServiceError::Internal { context } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                None,
                Some(context),
                vec![],
            ),
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error; quote the request id when reporting it".to_owned()
        } else {
            external
        };
        let details = (!details.is_empty())
            .then(|| details.into_iter().map(Violation::into_detail).collect());
        Self {
            status,
            body: Box::new(ErrorBody {
                error_code: code.as_str().to_owned(),
                message,
                request_id: request_id.to_owned(),
                details,
            }),
            retry_after_secs,
            rate_limit,
            internal,
        }
    }

    /// Errors Dropshot raises itself (they reach us without a request id; see DROPSHOT-NOTES §3).
    pub fn from_dropshot(error: HttpError, request_id: &str) -> Self {
        let status = error.status_code.as_status();
        let message = error.external_message.clone();
        let service = match status {
            StatusCode::BAD_REQUEST if is_body_limit(&error) => ServiceError::PayloadTooLarge {
                limit_bytes: body_limit_of(&error).unwrap_or(0),
            },
            StatusCode::BAD_REQUEST => ServiceError::InvalidRequest {
                message,
                details: vec![],
            },
            StatusCode::UNAUTHORIZED => ServiceError::Unauthenticated { message },
            StatusCode::FORBIDDEN => ServiceError::Forbidden { message },
            StatusCode::NOT_FOUND => ServiceError::NotFound { message },
            StatusCode::SERVICE_UNAVAILABLE => ServiceError::Unavailable {
                message,
                retry_after_secs: 1,
            },
            s if s.is_client_error() => {
                let mut failure = Self::from_service(
                    ServiceError::InvalidRequest {
                        message,
                        details: vec![],
                    },
                    request_id,
                );
                failure.status = s;
                failure.body.error_code = client_error_code(s).as_str().to_owned();
                return failure;
            }
            _ => ServiceError::Internal {
                context: error.internal_message.clone(),
            },
        };
        Self::from_service(service, request_id)
    }

    /// Writes the response.
    pub(super) fn into_response(self) -> Result<http::Response<dropshot::Body>, HttpError> {
        let builder = http::Response::builder().status(self.status);
        let body = serde_json::to_vec(&self.body)
            .map_err(|e| HttpError::for_internal_error(e.to_string()))?;
        let mut builder = builder.header(http::header::CONTENT_TYPE, dropshot::CONTENT_TYPE_JSON);
        if let Some(secs) = self.retry_after_secs {
            builder = builder.header(http::header::RETRY_AFTER, secs.to_string());
        }
        if let Some(p) = &self.rate_limit {
            // draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it (nothing,
            // until `t` seconds from now).
            let reset = self.retry_after_secs.unwrap_or(p.window_secs);
            builder = builder
                .header(
                    "RateLimit-Policy",
                    format!("\"{}\";q={};w={}", p.name, p.quota, p.window_secs),
                )
                .header("RateLimit", format!("\"{}\";r=0;t={reset}", p.name));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme the client should use.
            builder = builder.header(http::header::WWW_AUTHENTICATE, "Bearer");
        }
        Ok(builder.body(body.into())?)
    }
}

fn client_error_code(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::NOT_ACCEPTABLE => ErrorCode::NotAcceptable,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        _ => ErrorCode::InvalidRequest,
    }
}

// Dropshot answers an over-limit body with a 400 whose message is the only marker.
const BODY_LIMIT_MARKER: &str = "request body exceeded maximum size of ";

fn is_body_limit(error: &HttpError) -> bool {
    error.external_message.contains(BODY_LIMIT_MARKER)
}

fn body_limit_of(error: &HttpError) -> Option<usize> {
    let rest = error.external_message.split(BODY_LIMIT_MARKER).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The error type of every generated endpoint. `S` is the contract's `ApiError` type, whose schema
/// is the one Dropshot references from every 4XX/5XX response.
///
/// Only errors Dropshot raises itself travel this way: the adapter answers its own failures through
/// [`super::Reply`], which can also set `Retry-After` and `WWW-Authenticate` (Dropshot's error
/// path writes a JSON body and nothing else).
pub struct ErrorResponse<S>(pub ApiFailure, PhantomData<fn() -> S>);

impl<S> ErrorResponse<S> {
    /// Wraps a failure.
    pub fn new(failure: ApiFailure) -> Self {
        Self(failure, PhantomData)
    }
}

impl<S> fmt::Debug for ErrorResponse<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ErrorResponse").field(&self.0).finish()
    }
}

impl<S> fmt::Display for ErrorResponse<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.body.error_code,
            self.0.body.message
        )
    }
}

impl<S> From<HttpError> for ErrorResponse<S> {
    fn from(error: HttpError) -> Self {
        Self::new(ApiFailure::from_dropshot(error, ""))
    }
}

impl<S> Serialize for ErrorResponse<S> {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        self.0.body.serialize(serializer)
    }
}

impl<S: JsonSchema> JsonSchema for ErrorResponse<S> {
    fn schema_name() -> String {
        S::schema_name()
    }

    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        S::json_schema(generator)
    }
}

impl<S: JsonSchema + Send + Sync + 'static> dropshot::HttpResponseError for ErrorResponse<S> {
    fn status_code(&self) -> ErrorStatusCode {
        ErrorStatusCode::from_u16(self.0.status.as_u16())
            .unwrap_or(ErrorStatusCode::INTERNAL_SERVER_ERROR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_leak_context() {
        let f = ApiFailure::from_service(ServiceError::internal("db password is hunter2"), "r1");
        assert_eq!(f.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!f.body.message.contains("hunter2"));
        assert_eq!(f.internal.as_deref(), Some("db password is hunter2"));
    }

    #[test]
    fn dropshot_body_limit_becomes_413() {
        let e = HttpError::for_bad_request(
            None,
            "request body exceeded maximum size of 65536 bytes".into(),
        );
        let f = ApiFailure::from_dropshot(e, "r");
        assert_eq!(f.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(f.body.error_code, "payload_too_large");
        assert!(f.body.message.contains("65536"));
    }

    #[test]
    fn retry_after_only_on_429_and_503() {
        let f = ApiFailure::from_service(
            ServiceError::RateLimited {
                message: "slow down".into(),
                retry_after_secs: 7,
                policy: None,
            },
            "r",
        );
        assert_eq!(f.retry_after_secs, Some(7));
        let f = ApiFailure::from_service(
            ServiceError::NotFound {
                message: "no".into(),
            },
            "r",
        );
        assert_eq!(f.retry_after_secs, None);
    }
}
