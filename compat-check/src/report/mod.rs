//! The comparison report and its renderings (text, JSON, Markdown, GitHub annotations, JUnit).

mod github;
mod junit;
mod markdown;
mod text;

use serde::Serialize;

use crate::finding::Finding;
use crate::rules::{Level, Severity};
use crate::waivers::Waiver;

/// Output format of `Report::render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable, one block per finding.
    Text,
    /// The report as pretty JSON (stable field names).
    Json,
    /// A Markdown table, for PR comments.
    Markdown,
    /// GitHub Actions workflow commands (`::error file=...`).
    Github,
    /// JUnit XML, one test case per finding.
    Junit,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "markdown" => Ok(Format::Markdown),
            "github" => Ok(Format::Github),
            "junit" => Ok(Format::Junit),
            other => Err(format!(
                "unknown format {other:?} (text, json, markdown, github, junit)"
            )),
        }
    }
}

/// Counts per severity, with accepted (waived) findings counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Breaking findings not covered by a waiver.
    pub breaking: usize,
    /// Warnings.
    pub warning: usize,
    /// Informational findings.
    pub info: usize,
    /// Findings accepted by a waiver.
    pub accepted: usize,
}

/// The result of comparing two documents.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Name of OLD.
    pub old: String,
    /// Name of NEW.
    pub new: String,
    /// Level the comparison ran at.
    pub level: Level,
    /// Counts.
    pub summary: Summary,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Waivers that matched nothing.
    pub stale_waivers: Vec<Waiver>,
    /// Waivers past their expiry date.
    pub expired_waivers: Vec<Waiver>,
}

impl Report {
    /// Builds a report and its summary.
    pub(crate) fn new(
        old: String,
        new: String,
        level: Level,
        findings: Vec<Finding>,
        stale_waivers: Vec<Waiver>,
        expired_waivers: Vec<Waiver>,
    ) -> Self {
        let mut summary = Summary::default();
        for f in &findings {
            match (f.accepted.is_some(), f.severity) {
                (true, _) => summary.accepted += 1,
                (false, Severity::Breaking) => summary.breaking += 1,
                (false, Severity::Warning) => summary.warning += 1,
                (false, Severity::Info) => summary.info += 1,
            }
        }
        Report {
            old,
            new,
            level,
            summary,
            findings,
            stale_waivers,
            expired_waivers,
        }
    }

    /// Whether a breaking change not covered by a waiver was found (exit code 1).
    pub fn has_breaking(&self) -> bool {
        self.findings.iter().any(Finding::is_blocking)
    }

    /// Renders the report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => text::render(self),
            Format::Json => {
                // Serializing plain data structs with string keys cannot fail.
                serde_json::to_string_pretty(self)
                    .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
                    + "\n"
            }
            Format::Markdown => markdown::render(self),
            Format::Github => github::render(self),
            Format::Junit => junit::render(self),
        }
    }

    /// `N breaking, N warnings, N info (N accepted)`.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut line = format!(
            "{} breaking, {} warning{}, {} info",
            s.breaking,
            s.warning,
            if s.warning == 1 { "" } else { "s" },
            s.info
        );
        if s.accepted > 0 {
            line.push_str(&format!(", {} accepted by waivers", s.accepted));
        }
        line
    }
}

/// Label shown for a finding's severity, `accepted` when waived.
pub(crate) fn severity_label(f: &Finding) -> &'static str {
    if f.accepted.is_some() {
        "accepted"
    } else {
        f.severity.as_str()
    }
}
