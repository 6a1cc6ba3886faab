//! W3C Trace Context (`traceparent`): join the caller's trace or start a new one.

use std::fmt;

/// The trace this request belongs to and the span the caller opened for it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The caller's span id (16 hex digits) when a valid `traceparent` arrived.
    pub parent_span_id: Option<String>,
    /// The sampled flag from the caller, `true` for traces started here.
    pub sampled: bool,
}

impl TraceContext {
    /// Parses a `traceparent` header (version 00 and future versions, per the spec's rules);
    /// an absent or malformed one starts a new trace, as the spec asks.
    pub fn from_traceparent(header: Option<&str>) -> Self {
        header.and_then(Self::parse).unwrap_or_else(Self::new_root)
    }

    /// A new trace with a random id.
    pub fn new_root() -> Self {
        Self {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            parent_span_id: None,
            sampled: true,
        }
    }

    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        // Version 00 has exactly four fields; later versions may append more.
        if version.len() != 2 || !is_lower_hex(version) || version == "ff" {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let valid = trace_id.len() == 32
            && is_lower_hex(trace_id)
            && trace_id.bytes().any(|b| b != b'0')
            && parent.len() == 16
            && is_lower_hex(parent)
            && parent.bytes().any(|b| b != b'0')
            && flags.len() == 2
            && is_lower_hex(flags);
        if !valid {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id: trace_id.to_owned(),
            parent_span_id: Some(parent.to_owned()),
            sampled: flags & 1 == 1,
        })
    }
}

impl TraceContext {
    /// A `traceparent` for work this request hands on (a broker message, a job): this trace,
    /// a fresh span id, the sampled flag.
    pub fn child_traceparent(&self) -> String {
        // Never the all-zero (invalid) span id.
        let span = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{span:016x}-{flags}", self.trace_id)
    }

    /// The trace of the operation this task runs (set by the generated adapter for every
    /// operation, and by the real-time gateway for each client frame); `None` outside one.
    pub fn current() -> Option<TraceContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `work` as part of this trace: [`TraceContext::current`] answers it inside.
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

tokio::task_local! {
    /// Context propagation without threading a parameter through every service call, as
    /// OpenTelemetry's `Context::current` does.
    static CURRENT: TraceContext;
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.trace_id)
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_current_trace_is_the_scope_s() {
        assert_eq!(TraceContext::current(), None);
        let trace = TraceContext::new_root();
        let inside = trace.clone().scope(async { TraceContext::current() }).await;
        assert_eq!(inside, Some(trace.clone()));
        let child = TraceContext::from_traceparent(Some(&trace.child_traceparent()));
        assert_eq!(child.trace_id, trace.trace_id, "a child joins the trace");
        assert_ne!(child.parent_span_id, None);
    }

    #[test]
    fn joins_a_valid_traceparent() {
        let t = TraceContext::from_traceparent(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert!(t.sampled);
    }

    #[test]
    fn starts_a_new_trace_on_garbage() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let t = TraceContext::from_traceparent(Some(bad));
            assert!(t.parent_span_id.is_none(), "{bad}");
            assert_eq!(t.trace_id.len(), 32);
        }
    }

    #[test]
    fn accepts_future_versions_with_extra_fields() {
        let t = TraceContext::from_traceparent(Some(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more",
        ));
        assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert!(!t.sampled);
    }
}
