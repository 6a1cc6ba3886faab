//! Markdown rendering: a table suitable for a pull-request comment.

use std::fmt::Write;

use super::{Report, severity_label};

/// Table cells cannot hold pipes or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### API compatibility: `{}` → `{}`\n", r.old, r.new);
    let _ = writeln!(
        out,
        "**{}** (level: {})\n",
        r.summary_line(),
        r.level.as_str()
    );
    if !r.findings.is_empty() {
        out.push_str("| Severity | Rule | Change | Location | Used by |\n");
        out.push_str("| --- | --- | --- | --- | --- |\n");
        for f in &r.findings {
            let loc = f
                .new
                .as_ref()
                .or(f.old.as_ref())
                .map(|l| format!("`{}`", l.short()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} |",
                severity_label(f),
                f.rule,
                cell(&f.message),
                cell(&loc),
                cell(&f.users.join(", "))
            );
        }
    }
    for w in r.stale_waivers.iter().chain(&r.expired_waivers) {
        let _ = writeln!(
            out,
            "\n- waiver `{}` at `{}` is stale or expired",
            w.rule,
            cell(&w.location)
        );
    }
    out
}
