//! GitHub Actions rendering: workflow commands that annotate the changed lines of the PR.

use std::fmt::Write;

use super::Report;
use crate::rules::Severity;

/// Escaping defined for workflow command data.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping defined for workflow command properties (also `:` and `,`).
fn prop(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let level = match (f.accepted.is_some(), f.severity) {
            (false, Severity::Breaking) => "error",
            (false, Severity::Warning) => "warning",
            _ => "notice",
        };
        let mut props = Vec::new();
        // Annotate NEW when the change exists there; a `git:` spec is not a workspace file.
        if let Some(l) = f.new.as_ref().or(f.old.as_ref())
            && !l.file.starts_with("git:")
        {
            props.push(format!("file={}", prop(&l.file)));
            if let Some(line) = l.line {
                props.push(format!("line={line}"));
            }
            if let Some(col) = l.column {
                props.push(format!("col={col}"));
            }
        }
        props.push(format!("title={}", prop(f.rule)));
        let mut msg = f.message.clone();
        if !f.users.is_empty() {
            msg.push_str(&format!("\nUsed by: {}", f.users.join(", ")));
        }
        if let Some(reason) = &f.accepted {
            msg.push_str(&format!("\nAccepted: {reason}"));
        }
        let _ = writeln!(out, "::{level} {}::{}", props.join(","), data(&msg));
    }
    for w in &r.stale_waivers {
        let _ = writeln!(
            out,
            "::warning title=stale-waiver::{}",
            data(&format!(
                "waiver {} at {} matched nothing",
                w.rule, w.location
            ))
        );
    }
    for w in &r.expired_waivers {
        let _ = writeln!(
            out,
            "::warning title=expired-waiver::{}",
            data(&format!("waiver {} at {} has expired", w.rule, w.location))
        );
    }
    let _ = writeln!(out, "{}", r.summary_line());
    out
}
