//! W3C Trace Context in job rows: the enqueuing request's trace continues in the job.

/// A `traceparent` for a job enqueued within trace `trace_id` (32 lowercase hex digits): a new
/// span id marks the enqueue as the job's parent. `None` for a malformed trace id (the job then
/// starts its own trace).
pub fn child_traceparent(trace_id: &str, sampled: bool) -> Option<String> {
    let valid = trace_id.len() == 32
        && trace_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && trace_id.bytes().any(|b| b != b'0');
    if !valid {
        return None;
    }
    let span = uuid::Uuid::new_v4().as_u64_pair().0 | 1; // never the all-zero (invalid) id
    let flags = if sampled { "01" } else { "00" };
    Some(format!("00-{trace_id}-{span:016x}-{flags}"))
}

/// The trace id of a stored `traceparent`, when it is a valid version-00 value.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace_id, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ok = version == "00"
        && parts.next().is_none()
        && trace_id.len() == 32
        && span.len() == 16
        && flags.len() == 2;
    ok.then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_and_gets_its_own_span() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let a = child_traceparent(trace, true).expect("valid");
        let b = child_traceparent(trace, true).expect("valid");
        assert_ne!(a, b, "each enqueue is its own span");
        assert!(a.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(a.ends_with("-01"));
        assert_eq!(trace_id_of(&a), Some(trace));
        assert!(
            child_traceparent(trace, false)
                .expect("valid")
                .ends_with("-00")
        );
    }

    #[test]
    fn malformed_trace_ids_start_no_child() {
        for bad in ["", "xyz", &"0".repeat(32), &"A".repeat(32)] {
            assert_eq!(child_traceparent(bad, true), None, "{bad}");
        }
        assert_eq!(trace_id_of("garbage"), None);
    }
}
