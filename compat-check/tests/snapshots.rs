//! insta snapshots of the text and JSON reports for representative corpus cases.

use std::path::Path;

use compat_check::{Document, Format, Options, compare_documents, parse_waivers};

fn report(case: &str, waivers: &str) -> compat_check::Report {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(case);
    // Relative names keep snapshots independent of where the repository is checked out.
    let load = |f: &str| {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        Document::from_str(&format!("{case}/{f}"), &text)
    };
    let (Ok(old), Ok(new)) = (load("old.yaml"), load("new.yaml")) else {
        panic!("corpus case {case} must load");
    };
    let opts = Options {
        today: Some("2026-01-01".into()),
        waivers: parse_waivers("waivers.yaml", waivers).unwrap_or_default(),
        ..Options::default()
    };
    compare_documents(&old, &new, &opts)
}

#[test]
fn shared_schema_type_change() {
    let r = report("shared-schema-type-change", "");
    insta::assert_snapshot!("shared_text", r.render(Format::Text));
    insta::assert_snapshot!("shared_json", r.render(Format::Json));
}

#[test]
fn schema_renamed_formats() {
    let r = report("schema-renamed", "");
    insta::assert_snapshot!("renamed_text", r.render(Format::Text));
    insta::assert_snapshot!("renamed_markdown", r.render(Format::Markdown));
    insta::assert_snapshot!("renamed_github", r.render(Format::Github));
    insta::assert_snapshot!("renamed_junit", r.render(Format::Junit));
}

#[test]
fn waivers_accept_and_go_stale() {
    let waivers = "- rule: response-enum-value-added\n  location: '#/components/schemas/User/properties/status/enum'\n  reason: clients updated in 2.3\n- rule: operation-removed\n  location: GET /v1/nothing\n  reason: stale on purpose\n- rule: response-enum-value-added\n  location: GET /v1/users\n  reason: expired\n  expires: 2020-01-01\n";
    let r = report("response-enum-value-added", waivers);
    assert!(!r.has_breaking());
    insta::assert_snapshot!("waived_text", r.render(Format::Text));
    insta::assert_snapshot!("waived_json", r.render(Format::Json));
}
