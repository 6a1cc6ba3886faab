//! JUnit XML rendering: CI systems that only read test reports still show each finding.

use std::fmt::Write;

use super::Report;

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub(super) fn render(r: &Report) -> String {
    let failures = r.findings.iter().filter(|f| f.is_blocking()).count();
    let tests = r.findings.len().max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites><testsuite name=\"compat-check\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    if r.findings.is_empty() {
        out.push_str("  <testcase classname=\"compat-check\" name=\"no changes\"/>\n");
    }
    for f in &r.findings {
        let loc = f
            .new
            .as_ref()
            .or(f.old.as_ref())
            .map(|l| l.short())
            .unwrap_or_default();
        let _ = write!(
            out,
            "  <testcase classname=\"compat-check.{}\" name=\"{}\">",
            xml(f.rule),
            xml(&format!("{loc} {}", f.message))
        );
        if f.is_blocking() {
            let _ = write!(
                out,
                "<failure type=\"{}\" message=\"{}\">used by: {}</failure>",
                xml(f.rule),
                xml(&f.message),
                xml(&f.users.join(", "))
            );
        } else {
            let _ = write!(
                out,
                "<system-out>{}</system-out>",
                xml(&format!("{}: {}", f.severity.as_str(), f.message))
            );
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite></testsuites>\n");
    out
}
