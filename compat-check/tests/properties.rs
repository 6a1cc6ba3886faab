//! Property tests: compat-check is reflexive, and insensitive to key order and YAML↔JSON.

use compat_check::{Document, Options, compare_documents};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A small random schema tree (depth-limited) drawn from the keywords the checker reads.
fn schema() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!({"type": "string"})),
        (1u32..100).prop_map(|n| json!({"type": "string", "maxLength": n, "pattern": "^a"})),
        (0i64..10, 10i64..100)
            .prop_map(|(a, b)| json!({"type": "integer", "minimum": a, "maximum": b})),
        Just(json!({"type": "string", "enum": ["a", "b"], "nullable": true})),
        Just(json!({"$ref": "#/components/schemas/S0"})),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::btree_map("[a-z]{1,6}", inner.clone(), 0..4).prop_map(|props| {
                let required: Vec<&String> = props.keys().take(1).collect();
                json!({"type": "object", "required": required, "properties": props, "additionalProperties": false})
            }),
            inner.clone().prop_map(|i| json!({"type": "array", "items": i, "maxItems": 5, "uniqueItems": true})),
            proptest::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"oneOf": v})),
            proptest::collection::vec(inner, 1..3).prop_map(|v| json!({"allOf": v})),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(schema(), 1..4),
        proptest::collection::btree_map("[a-z]{1,8}", (schema(), schema(), any::<bool>()), 1..5),
    )
        .prop_map(|(schemas, ops)| {
            let mut comps = Map::new();
            for (i, s) in schemas.into_iter().enumerate() {
                comps.insert(format!("S{i}"), s);
            }
            let mut paths = Map::new();
            for (name, (req, resp, required)) in ops {
                paths.insert(
                    format!("/v1/{name}/{{id}}"),
                    json!({
                        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                        "post": {
                            "operationId": format!("create_{name}"),
                            "requestBody": {"required": required, "content": {"application/json": {"schema": req}}},
                            "responses": {"200": {"description": "ok", "headers": {"X-A": {"required": true, "schema": {"type": "integer"}}}, "content": {"application/json": {"schema": resp}}}}
                        }
                    }),
                );
            }
            json!({"openapi": "3.0.3", "info": {"title": "p", "version": "1"}, "paths": paths, "components": {"schemas": comps}})
        })
}

/// Rebuilds every object with its keys in reverse order.
fn reversed(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.reverse();
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn identical_and_reserialized_documents_have_no_findings(doc in document()) {
        let yaml = serde_yaml::to_string(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let json = serde_json::to_string_pretty(&reversed(&doc)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let a = Document::from_str("a.yaml", &yaml).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let b = Document::from_str("b.json", &json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let opts = Options { today: Some("2026-01-01".into()), ..Options::default() };
        let same = compare_documents(&a, &a, &opts);
        prop_assert!(same.findings.is_empty(), "{:?}", same.findings);
        let reordered = compare_documents(&a, &b, &opts);
        prop_assert!(reordered.findings.is_empty(), "{:?}", reordered.findings);
        let back = compare_documents(&b, &a, &opts);
        prop_assert!(back.findings.is_empty(), "{:?}", back.findings);
    }
}
