//! Waivers: accepted breaking changes, matched by rule id and location, with optional expiry.
//!
//! A waiver's `location` may be a JSON pointer in either document (with or without a leading
//! `#`), an operation label (`GET /v1/users/{id}`) from the finding's users, or any of those
//! ending in `*` as a prefix. A waiver that matches nothing is stale; one past `expires` no longer
//! matches and is reported as expired, so accepted breaks do not linger silently.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::finding::Finding;

/// One accepted breaking change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Rule id the waiver accepts.
    pub rule: String,
    /// Pointer, operation label, or prefix ending in `*`.
    pub location: String,
    /// Why the break is acceptable (shown in reports).
    pub reason: String,
    /// Last day (`YYYY-MM-DD`) on which the waiver applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// Why a waivers file could not be used (CLI exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum WaiverError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// Path as given.
        file: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not a YAML list of waivers.
    #[error("{file}:{line}:{column}: invalid waivers file: {message}")]
    Syntax {
        /// Path as given.
        file: String,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column (0 if unknown).
        column: usize,
        /// Parser message.
        message: String,
    },
}

/// Reads a YAML (or JSON) list of `{rule, location, reason, expires?}`.
pub fn load_waivers(path: &Path) -> Result<Vec<Waiver>, WaiverError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| WaiverError::Io {
        file: file.clone(),
        source,
    })?;
    parse_waivers(&file, &text)
}

/// Parses waivers from text; `file` is only used in messages.
pub fn parse_waivers(file: &str, text: &str) -> Result<Vec<Waiver>, WaiverError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_yaml::from_str::<Option<Vec<Waiver>>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            WaiverError::Syntax {
                file: file.to_owned(),
                line,
                column,
                message: e.to_string(),
            }
        })
}

/// What applying waivers left over.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WaiverOutcome {
    /// Waivers that matched no finding.
    pub stale: Vec<Waiver>,
    /// Waivers past their `expires` date (they matched nothing on purpose).
    pub expired: Vec<Waiver>,
}

impl Waiver {
    fn matches(&self, f: &Finding) -> bool {
        if self.rule != f.rule {
            return false;
        }
        let want = self.location.strip_prefix('#').unwrap_or(&self.location);
        let hit = |candidate: &str| match want.strip_suffix('*') {
            Some(prefix) => candidate.starts_with(prefix),
            None => candidate == want,
        };
        f.old.iter().chain(&f.new).any(|l| hit(&l.pointer)) || f.users.iter().any(|u| hit(u))
    }

    fn expired(&self, today: &str) -> bool {
        self.expires
            .as_deref()
            .is_some_and(|e| e.get(..10).unwrap_or(e) < today)
    }
}

/// Marks matching findings as accepted and reports stale and expired waivers.
pub(crate) fn apply(findings: &mut [Finding], waivers: &[Waiver], today: &str) -> WaiverOutcome {
    let mut out = WaiverOutcome::default();
    for w in waivers {
        if w.expired(today) {
            out.expired.push(w.clone());
            continue;
        }
        let mut used = false;
        for f in findings.iter_mut().filter(|f| w.matches(f)) {
            used = true;
            if f.accepted.is_none() {
                f.accepted = Some(w.reason.clone());
            }
        }
        if !used {
            out.stale.push(w.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_list_with_optional_expiry() {
        let text = "- rule: operation-removed\n  location: GET /v1/old\n  reason: nobody used it\n  expires: 2030-01-01\n- rule: schema-renamed\n  location: '#/components/schemas/*'\n  reason: rename sweep\n";
        let ws = parse_waivers("w.yaml", text).unwrap_or_default();
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[0].expires.as_deref(), Some("2030-01-01"));
        assert!(parse_waivers("w.yaml", "- rule: x\n  bogus: 1\n").is_err());
    }
}
