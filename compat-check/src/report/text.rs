//! Plain-text rendering: one block per finding, then the summary line.

use std::fmt::Write;

use super::{Report, severity_label};

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "compat-check {} -> {} (level: {})",
        r.old,
        r.new,
        r.level.as_str()
    );
    for f in &r.findings {
        let _ = writeln!(
            out,
            "\n{:<8} {} [{}] {}",
            severity_label(f).to_uppercase(),
            f.rule,
            f.direction.as_str(),
            f.message
        );
        if let Some(l) = &f.old {
            let _ = writeln!(out, "    old: {}  {}", l.short(), l.pointer);
        }
        if let Some(l) = &f.new {
            let _ = writeln!(out, "    new: {}  {}", l.short(), l.pointer);
        }
        if !f.users.is_empty() {
            let _ = writeln!(out, "    used by: {}", f.users.join(", "));
        }
        if let Some(reason) = &f.accepted {
            let _ = writeln!(out, "    accepted: {reason}");
        }
    }
    for w in &r.stale_waivers {
        let _ = writeln!(
            out,
            "\nSTALE    waiver {} at {} matched nothing ({})",
            w.rule, w.location, w.reason
        );
    }
    for w in &r.expired_waivers {
        let _ = writeln!(
            out,
            "\nEXPIRED  waiver {} at {} expired on {}",
            w.rule,
            w.location,
            w.expires.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(out, "\n{}", r.summary_line());
    out
}
