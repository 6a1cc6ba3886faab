//! The release gate used by build.rs: breaking changes need a major version bump or a waiver.

use serde_json::Value;

use crate::load::Document;
use crate::report::Report;
use crate::waivers::Waiver;
use crate::{Options, compare_documents};

/// What the gate decided.
#[derive(Debug)]
pub enum GateOutcome {
    /// No unwaived breaking change.
    Compatible(Report),
    /// Breaking changes, allowed because `info.version`'s major number went up.
    MajorBump {
        /// The comparison.
        report: Report,
        /// Baseline `info.version`.
        from: String,
        /// Current `info.version`.
        to: String,
    },
    /// Breaking changes without a major bump or waiver: the build must fail.
    Breaking(Report),
}

impl GateOutcome {
    /// Whether the build may go on.
    pub fn passed(&self) -> bool {
        !matches!(self, GateOutcome::Breaking(_))
    }

    /// The underlying report.
    pub fn report(&self) -> &Report {
        match self {
            GateOutcome::Compatible(r) | GateOutcome::Breaking(r) => r,
            GateOutcome::MajorBump { report, .. } => report,
        }
    }
}

fn version(doc: &Document) -> String {
    doc.value
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Leading number of a version string (`v2.1.0` → 2); `None` if there is none.
fn major(v: &str) -> Option<u64> {
    let digits: String = v
        .trim_start_matches(['v', 'V'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Compares `current` with the released `baseline` at client level.
pub fn gate(baseline: &Document, current: &Document, waivers: &[Waiver]) -> GateOutcome {
    let opts = Options {
        waivers: waivers.to_vec(),
        ..Options::default()
    };
    let report = compare_documents(baseline, current, &opts);
    if !report.has_breaking() {
        return GateOutcome::Compatible(report);
    }
    let (from, to) = (version(baseline), version(current));
    match (major(&from), major(&to)) {
        (Some(a), Some(b)) if b > a => GateOutcome::MajorBump { report, from, to },
        _ => GateOutcome::Breaking(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_majors() {
        assert_eq!(major("1.2.3"), Some(1));
        assert_eq!(major("v2"), Some(2));
        assert_eq!(major("beta"), None);
    }
}
