//! Documents that could make a naive checker loop, overflow or mis-attribute: ref cycles,
//! self-recursive schemas, deep nesting and allOf diamonds.

use compat_check::{Document, Options, compare_documents};

fn doc(name: &str, text: &str) -> Document {
    match Document::from_str(name, text) {
        Ok(d) => d,
        Err(e) => panic!("{name} must load: {e}"),
    }
}

fn opts() -> Options {
    Options {
        today: Some("2026-01-01".into()),
        ..Options::default()
    }
}

const HEAD: &str = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {$ref: '#/components/schemas/Node'}\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Node'}\n";

#[test]
fn pure_ref_cycles_terminate() {
    let text = format!(
        "{HEAD}components:\n  schemas:\n    Node: {{$ref: '#/components/schemas/Other'}}\n    Other: {{$ref: '#/components/schemas/Node'}}\n"
    );
    let d = doc("cycle.yaml", &text);
    assert!(compare_documents(&d, &d, &opts()).findings.is_empty());
}

#[test]
fn change_inside_a_recursive_schema_is_reported_once_with_its_users() {
    let old = format!(
        "{HEAD}components:\n  schemas:\n    Node:\n      type: object\n      properties:\n        name: {{type: string, maxLength: 10}}\n        children:\n          type: array\n          items: {{$ref: '#/components/schemas/Node'}}\n        parent: {{$ref: '#/components/schemas/Node'}}\n"
    );
    let new = old.replace("maxLength: 10", "maxLength: 5");
    let r = compare_documents(&doc("old.yaml", &old), &doc("new.yaml", &new), &opts());
    let ids: Vec<&str> = r.findings.iter().map(|f| f.rule).collect();
    assert_eq!(ids, ["request-max-length-decreased"], "{r:?}");
    assert_eq!(r.findings[0].users, ["POST /a"]);
}

#[test]
fn deep_nesting_does_not_overflow() {
    // 80 levels of inline objects (under serde_yaml's recursion limit of 128).
    let mut schema = String::from("{type: string}");
    for i in 0..40 {
        schema = format!("{{type: object, properties: {{p{i}: {schema}}}}}");
    }
    let text = format!(
        "openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {schema}\n"
    );
    let old = doc("old.yaml", &text);
    let new = doc(
        "new.yaml",
        &text.replace("{type: string}", "{type: integer}"),
    );
    let r = compare_documents(&old, &new, &opts());
    assert_eq!(r.findings.len(), 1, "{r:?}");
    assert_eq!(r.findings[0].rule, "response-type-widened");
}

#[test]
fn too_deep_documents_are_errors_not_crashes() {
    let mut nested = String::from("1");
    for _ in 0..1000 {
        nested = format!("[{nested}]");
    }
    let text = format!("openapi: 3.0.3\npaths: {{}}\nx-deep: {nested}\n");
    assert!(Document::from_str("deep.yaml", &text).is_err());
}

#[test]
fn allof_diamonds_merge_once() {
    let text = format!(
        "{HEAD}components:\n  schemas:\n    Base: {{type: object, properties: {{id: {{type: string}}}}}}\n    Left: {{allOf: [{{$ref: '#/components/schemas/Base'}}]}}\n    Right: {{allOf: [{{$ref: '#/components/schemas/Base'}}]}}\n    Node:\n      allOf:\n        - $ref: '#/components/schemas/Left'\n        - $ref: '#/components/schemas/Right'\n        - $ref: '#/components/schemas/Node'\n"
    );
    let d = doc("diamond.yaml", &text);
    assert!(compare_documents(&d, &d, &opts()).findings.is_empty());
}

#[test]
fn external_refs_are_load_errors() {
    let text =
        "openapi: 3.0.3\npaths: {}\ncomponents:\n  schemas:\n    A: {$ref: 'other.yaml#/A'}\n";
    let err = Document::from_str("ext.yaml", text)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("only local references")),
        "{err:?}"
    );
}
