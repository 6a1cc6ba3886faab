//! A short summary of how a committed file differs from its regenerated version: line counts and
//! the one region between the common prefix and suffix, enough to see what changed in CI logs.

use std::fmt::Write as _;

/// At most this many lines of each side are shown.
const SHOWN: usize = 12;

/// `path` is stale: describes the changed region between `old` (committed) and `new` (generated).
pub fn summary(path: &str, old: &str, new: &str) -> String {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let prefix = old_lines
        .iter()
        .zip(&new_lines)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old_lines[prefix..]
        .iter()
        .rev()
        .zip(new_lines[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let removed = &old_lines[prefix..old_lines.len() - suffix];
    let added = &new_lines[prefix..new_lines.len() - suffix];

    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    if removed.is_empty() && added.is_empty() {
        let _ = writeln!(
            out,
            "stale: {path} (only line endings or the final newline differ)"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "stale: {path} (committed {} lines, generated {} lines; from line {}: -{} +{})",
        old_lines.len(),
        new_lines.len(),
        prefix + 1,
        removed.len(),
        added.len(),
    );
    for (sign, lines) in [('-', removed), ('+', added)] {
        for line in lines.iter().take(SHOWN) {
            let _ = writeln!(out, "  {sign} {line}");
        }
        if lines.len() > SHOWN {
            let _ = writeln!(out, "  {sign} … {} more", lines.len() - SHOWN);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn shows_the_changed_region() {
        let text = summary("f", "a\nb\nc\nd\n", "a\nB\nB2\nd\n");
        assert!(text.contains("from line 2: -2 +2"), "{text}");
        assert!(text.contains("  - b\n  - c\n  + B\n  + B2\n"), "{text}");
    }

    #[test]
    fn pure_insertion_and_trailing_newline() {
        let text = summary("f", "a\nc\n", "a\nb\nc\n");
        assert!(text.contains("-0 +1"), "{text}");
        assert!(text.contains("  + b\n"), "{text}");
        let text = summary("f", "a\n", "a");
        assert!(text.contains("final newline"), "{text}");
    }
}
