//! Cross-origin access for browser frontends (the Fetch standard's CORS protocol).
//!
//! The policy is a list of exact origins (or `*`); the default is empty: no cross-origin access.
//! Responses to an allowed origin carry `Access-Control-Allow-Origin` and expose the headers a
//! client needs (`x-request-id`, `Retry-After`, the rate-limit headers). The generated adapter
//! answers `OPTIONS` on every route: a preflight from an allowed origin, for a method the route
//! has and headers from [`ALLOWED_HEADERS`], gets 204 with the grant; any other preflight gets a
//! 403 `forbidden` saying what was refused. Credentials (cookies) are never allowed: the API
//! authenticates with bearer tokens, which a browser does not send on its own.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::ServiceError;

/// Request headers a cross-origin caller may send (besides the CORS-safelisted ones).
pub const ALLOWED_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "authorization",
    "content-language",
    "content-type",
    "idempotency-key",
    "traceparent",
    "tracestate",
];

/// Response headers a cross-origin caller may read (besides the CORS-safelisted ones).
const EXPOSED_HEADERS: &str =
    "x-request-id, retry-after, ratelimit, ratelimit-policy, www-authenticate";

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
    any: bool,
    max_age_secs: u64,
}

/// A checked list of allowed origins (`*` or `scheme://host[:port]` each), lower-cased. Parsed
/// once, when the configuration loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    origins: Vec<String>,
    any: bool,
}

impl CorsOrigins {
    /// Checks `origins` (`*` allows every origin).
    pub fn parse(origins: &[String]) -> Result<Self, BadOrigin> {
        for origin in origins {
            check_origin(origin)?;
        }
        Ok(Self {
            any: origins.iter().any(|o| o == "*"),
            origins: origins
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.to_ascii_lowercase())
                .collect(),
        })
    }
}

/// A configured origin that is not `*` nor `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin: write `scheme://host[:port]` (no path, no trailing slash) or `*`")]
pub struct BadOrigin(pub String);

impl CorsPolicy {
    /// Allows `origins` (exact, compared case-insensitively); browsers may cache a preflight
    /// answer for `max_age_secs`.
    pub fn new(origins: CorsOrigins, max_age_secs: u64) -> Self {
        Self {
            origins: origins.origins,
            any: origins.any,
            max_age_secs,
        }
    }

    /// Whether no origin is allowed.
    pub fn is_closed(&self) -> bool {
        !self.any && self.origins.is_empty()
    }

    fn allows(&self, origin: &str) -> bool {
        self.any || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The headers of an ordinary (non-preflight) response to a request with `request` headers.
    pub fn response_headers(&self, request: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        if self.is_closed() {
            return out;
        }
        // The answer depends on Origin whenever the policy is not closed: caches must key on it.
        out.insert(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin_of(request).filter(|o| self.allows(o))
            && let Ok(value) = HeaderValue::from_str(origin)
        {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            out.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
        out
    }

    /// Answers `OPTIONS` on a route that has `methods`: the grant headers for an acceptable
    /// preflight, `Allow` for a plain `OPTIONS`, or why a preflight is refused.
    pub fn preflight(
        &self,
        request: &HeaderMap,
        methods: &[&str],
    ) -> Result<HeaderMap, ServiceError> {
        let mut out = HeaderMap::new();
        let allow = allow_list(methods);
        let requested_method = request
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok());
        let (Some(origin), Some(requested_method)) = (origin_of(request), requested_method) else {
            // Not a preflight: say what the route supports.
            if let Ok(v) = HeaderValue::from_str(&allow) {
                out.insert(header::ALLOW, v);
            }
            return Ok(out);
        };
        let refuse = |why: String| ServiceError::Forbidden {
            message: format!("cross-origin request refused: {why}"),
        };
        if !self.allows(origin) {
            return Err(refuse(format!("the origin {origin} is not allowed")));
        }
        if !methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(requested_method))
        {
            return Err(refuse(format!(
                "this route has no {requested_method} (it has {allow})"
            )));
        }
        let requested_headers = request
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>();
        if let Some(bad) = requested_headers
            .iter()
            .find(|h| !ALLOWED_HEADERS.contains(&h.as_str()))
        {
            return Err(refuse(format!("the request header {bad} is not allowed")));
        }
        let pairs: [(HeaderName, String); 4] = [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.to_owned()),
            (header::ACCESS_CONTROL_ALLOW_METHODS, allow),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                ALLOWED_HEADERS.join(", "),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                self.max_age_secs.to_string(),
            ),
        ];
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(&value) {
                out.insert(name, v);
            }
        }
        out.insert(header::VARY, HeaderValue::from_static("origin"));
        Ok(out)
    }
}

fn origin_of(request: &HeaderMap) -> Option<&str> {
    request
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty() && *o != "null")
}

fn allow_list(methods: &[&str]) -> String {
    let mut all: Vec<&str> = methods.to_vec();
    all.push("OPTIONS");
    all.join(", ")
}

fn check_origin(origin: &str) -> Result<(), BadOrigin> {
    if origin == "*" {
        return Ok(());
    }
    let bad = || BadOrigin(origin.to_owned());
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let (host, port) = match rest.find(']') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        Some(end) if rest.starts_with('[') => {
            let (h, tail) = rest.split_at(end + 1);
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or_else(bad)?),
            };
            (h, port)
        }
        _ => match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if scheme_ok && host_ok && port_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn policy(origins: &[&str]) -> CorsPolicy {
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        CorsPolicy::new(CorsOrigins::parse(&origins).unwrap(), 600)
    }

    #[test]
    fn origins_are_checked() {
        for good in [
            "*",
            "https://app.example.com",
            "http://localhost:5173",
            "http://[::1]:8080",
            "http://[::1]",
        ] {
            assert!(check_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://",
            "https://host:99999",
            "https://ho st",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_allows_nothing_and_adds_nothing() {
        let closed = CorsPolicy::default();
        assert!(closed.is_closed());
        let req = headers(&[("origin", "https://evil.example")]);
        assert!(closed.response_headers(&req).is_empty());
        let pre = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(matches!(
            closed.preflight(&pre, &["GET"]),
            Err(ServiceError::Forbidden { .. })
        ));
    }

    #[test]
    fn an_allowed_origin_is_echoed_with_vary() {
        let p = policy(&["https://App.example.com"]);
        let out = p.response_headers(&headers(&[("origin", "https://app.example.com")]));
        assert_eq!(
            out["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(out["vary"], "origin");
        assert!(
            out["access-control-expose-headers"]
                .to_str()
                .unwrap()
                .contains("retry-after")
        );
        let other = p.response_headers(&headers(&[("origin", "https://other.example")]));
        assert!(other.get("access-control-allow-origin").is_none());
        assert_eq!(other["vary"], "origin");
    }

    #[test]
    fn preflights_check_origin_method_and_headers() {
        let p = policy(&["https://app.example.com"]);
        let ok = p
            .preflight(
                &headers(&[
                    ("origin", "https://app.example.com"),
                    ("access-control-request-method", "PATCH"),
                    (
                        "access-control-request-headers",
                        "Authorization, content-type",
                    ),
                ]),
                &["GET", "PATCH"],
            )
            .unwrap();
        assert_eq!(ok["access-control-allow-methods"], "GET, PATCH, OPTIONS");
        assert_eq!(ok["access-control-max-age"], "600");
        assert!(ok.get("access-control-allow-credentials").is_none());

        let refused = |pairs: &[(&str, &str)]| match p.preflight(&headers(pairs), &["GET", "PATCH"])
        {
            Err(ServiceError::Forbidden { message }) => message,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(
            refused(&[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ])
            .contains("origin")
        );
        assert!(
            refused(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "DELETE"),
            ])
            .contains("DELETE")
        );
        assert!(
            refused(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-evil"),
            ])
            .contains("x-evil")
        );
    }

    #[test]
    fn a_plain_options_lists_the_methods() {
        let out = CorsPolicy::default()
            .preflight(&HeaderMap::new(), &["GET", "DELETE"])
            .unwrap();
        assert_eq!(out["allow"], "GET, DELETE, OPTIONS");
    }

    #[test]
    fn a_wildcard_allows_any_origin_but_echoes_it() {
        let p = policy(&["*"]);
        let out = p.response_headers(&headers(&[("origin", "https://anything.example")]));
        assert_eq!(
            out["access-control-allow-origin"],
            "https://anything.example"
        );
    }
}
