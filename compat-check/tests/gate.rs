//! The build.rs gate: breaking changes pass only with a major version bump or a waiver.

use std::path::Path;

use compat_check::{Document, GateOutcome, gate, parse_waivers};

fn case(file: &str, version: &str) -> Document {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/operation-removed")
        .join(file);
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    match Document::from_str(
        file,
        &text.replacen("version: 1.0.0", &format!("version: {version}"), 1),
    ) {
        Ok(d) => d,
        Err(e) => panic!("{file}: {e}"),
    }
}

#[test]
fn breaking_without_bump_fails() {
    let outcome = gate(&case("old.yaml", "1.0.0"), &case("new.yaml", "1.1.0"), &[]);
    assert!(matches!(outcome, GateOutcome::Breaking(_)), "{outcome:?}");
    assert!(!outcome.passed());
}

#[test]
fn major_bump_allows_breaking() {
    let outcome = gate(&case("old.yaml", "1.0.0"), &case("new.yaml", "2.0.0"), &[]);
    assert!(
        matches!(outcome, GateOutcome::MajorBump { .. }),
        "{outcome:?}"
    );
    assert!(outcome.passed());
    assert!(outcome.report().has_breaking());
}

#[test]
fn waiver_allows_breaking() {
    let waivers = parse_waivers(
        "w.yaml",
        "- rule: operation-removed\n  location: PUT /v1/users/{id}\n  reason: announced\n",
    )
    .unwrap_or_default();
    let outcome = gate(
        &case("old.yaml", "1.0.0"),
        &case("new.yaml", "1.1.0"),
        &waivers,
    );
    assert!(matches!(outcome, GateOutcome::Compatible(_)), "{outcome:?}");
}

#[test]
fn identical_documents_pass() {
    let outcome = gate(&case("old.yaml", "1.0.0"), &case("old.yaml", "1.0.0"), &[]);
    assert!(matches!(outcome, GateOutcome::Compatible(_)));
}
