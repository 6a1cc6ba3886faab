//! Compares the OpenAPI document the generated adapter emits with the contract it was generated
//! from, operation by operation and schema by schema, and reports every drift readably.
//!
//! Known, deliberate differences are normalized away, each for a stated reason:
//! - Dropshot emits one `4XX` and one `5XX` response referencing the error type; the contract may
//!   list specific error statuses too. Each side's error responses must all be `ApiError`.
//! - Dropshot describes a non-JSON success body as `*/*` with an empty schema; the contract names
//!   the media type (`text/plain`, `application/yaml`).
//! - Dropshot's schema conversion drops `discriminator` (it has no field for it); the validators
//!   and typify still see it, so it is removed from both sides before comparing.
//! - Dropshot reflows descriptions (joins lines); whitespace in descriptions is normalized.
//! - schemars sorts `required`; order is normalized.
//! - Dropshot titles inline request/response body schemas with the Rust type's name.
//! - WebSocket operations: Dropshot fixes their error type to its own `Error` schema.
//! - Dropshot emits no security requirements (it has no field for them); the generated adapter
//!   enforces the contract's, so compat-check sees the contract's `security` on both sides.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// Every difference found, one line each; empty when the documents agree.
pub fn diff(contract: &Value, emitted: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let c_ops = operations(contract);
    let e_ops = operations(emitted);
    for key in c_ops.keys().filter(|k| !e_ops.contains_key(*k)) {
        out.push(format!("{key}: in the contract, not served"));
    }
    for key in e_ops.keys().filter(|k| !c_ops.contains_key(*k)) {
        out.push(format!("{key}: served, not in the contract"));
    }
    for (key, c) in &c_ops {
        if let Some(e) = e_ops.get(key) {
            compare_operation(key, c, e, &mut out);
        }
    }
    // Every schema the server emits must be the contract's schema of the same name.
    let c_schemas = contract
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let e_schemas = emitted
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (name, e) in &e_schemas {
        if name == "Error" && !c_schemas.contains_key("Error") {
            continue; // Dropshot's own, used by WebSocket upgrades only.
        }
        match c_schemas.get(name) {
            None => out.push(format!(
                "#/components/schemas/{name}: emitted, not in the contract"
            )),
            Some(c) => compare_values(
                &format!("#/components/schemas/{name}"),
                &schema(c),
                &schema(e),
                &mut out,
            ),
        }
    }
    out
}

/// Operations keyed by `METHOD /path`, with path-level parameters merged into each.
fn operations(doc: &Value) -> BTreeMap<String, Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let shared = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (method, op) in item.as_object().into_iter().flatten() {
            if op.get("responses").is_some() {
                let mut op = op.clone();
                let own = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let same = |a: &Value, b: &Value| {
                    a.get("name") == b.get("name") && a.get("in") == b.get("in")
                };
                let mut merged: Vec<Value> = shared
                    .iter()
                    .filter(|p| !own.iter().any(|o| same(o, p)))
                    .cloned()
                    .collect();
                merged.extend(own);
                if !merged.is_empty() {
                    op["parameters"] = Value::Array(merged);
                }
                ops.insert(format!("{} {path}", method.to_uppercase()), op);
            }
        }
    }
    ops
}

/// A request or response body schema. Dropshot titles inline body schemas with the generated
/// type's name; a title the contract does not have is ignored there.
fn body_schema(contract_side: bool, v: &Value) -> Value {
    let mut s = schema(v);
    if !contract_side
        && let Some(obj) = s.as_object_mut()
        && obj.contains_key("type")
    {
        obj.remove("title");
    }
    s
}

fn compare_operation(key: &str, c: &Value, e: &Value, out: &mut Vec<String>) {
    for field in [
        "operationId",
        "summary",
        "tags",
        "deprecated",
        "x-dropshot-pagination",
        "x-dropshot-websocket",
    ] {
        let (cv, ev) = (
            c.get(field).filter(|v| **v != Value::Bool(false)),
            e.get(field).filter(|v| **v != Value::Bool(false)),
        );
        if cv != ev {
            out.push(format!(
                "{key}: {field} differs: contract {} vs served {}",
                show(cv),
                show(ev)
            ));
        }
    }
    let words = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    if words(c.get("description")) != words(e.get("description")) {
        out.push(format!("{key}: description differs"));
    }
    let c_params = params(c);
    let e_params = params(e);
    if c_params != e_params {
        for (name, cp) in &c_params {
            match e_params.get(name) {
                None => out.push(format!("{key}: parameter {name} not served")),
                Some(ep) if ep != cp => out.push(format!(
                    "{key}: parameter {name} differs: contract {cp} vs served {ep}"
                )),
                _ => {}
            }
        }
        for name in e_params.keys().filter(|n| !c_params.contains_key(*n)) {
            out.push(format!(
                "{key}: parameter {name} served, not in the contract"
            ));
        }
    }
    let body = |op: &Value, contract_side: bool| {
        op.get("requestBody").map(|b| {
            let content: BTreeMap<String, Value> = b
                .get("content")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(m, v)| {
                    (
                        m.clone(),
                        v.get("schema")
                            .map(|s| body_schema(contract_side, s))
                            .unwrap_or(Value::Null),
                    )
                })
                .collect();
            (b.get("required").cloned(), content)
        })
    };
    if body(c, true) != body(e, false) {
        out.push(format!(
            "{key}: request body differs: contract {:?} vs served {:?}",
            body(c, true),
            body(e, false)
        ));
    }
    let websocket = c.get("x-dropshot-websocket").is_some();
    let (c_ok, c_err) = responses(c, websocket, true);
    let (e_ok, e_err) = responses(e, websocket, false);
    if c_ok != e_ok {
        out.push(format!(
            "{key}: success response differs: contract {c_ok:?} vs served {e_ok:?}"
        ));
    }
    if !websocket {
        if c_err.iter().any(|r| r != "ApiError") || e_err.iter().any(|r| r != "ApiError") {
            out.push(format!(
                "{key}: error responses must all be ApiError: contract {c_err:?}, served {e_err:?}"
            ));
        }
        if c_err.is_empty() || e_err.is_empty() {
            out.push(format!(
                "{key}: no error responses documented (contract {c_err:?}, served {e_err:?})"
            ));
        }
    }
}

fn params(op: &Value) -> BTreeMap<String, Value> {
    op.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let name = format!(
                "{}:{}",
                p.get("in").and_then(Value::as_str).unwrap_or("?"),
                p.get("name").and_then(Value::as_str).unwrap_or("?")
            );
            let mut norm = Map::new();
            norm.insert(
                "required".into(),
                p.get("required").cloned().unwrap_or(Value::Bool(false)),
            );
            norm.insert(
                "schema".into(),
                p.get("schema").map(schema).unwrap_or(Value::Null),
            );
            if let Some(d) = p.get("description").and_then(Value::as_str) {
                norm.insert(
                    "description".into(),
                    Value::String(d.split_whitespace().collect::<Vec<_>>().join(" ")),
                );
            }
            (name, Value::Object(norm))
        })
        .collect()
}

/// (status, media types → schema) of the success, and the error responses' schema names.
fn responses(
    op: &Value,
    websocket: bool,
    contract_side: bool,
) -> (BTreeMap<String, BTreeMap<String, Value>>, BTreeSet<String>) {
    let mut ok = BTreeMap::new();
    let mut errors = BTreeSet::new();
    for (code, r) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if code.starts_with('4') || code.starts_with('5') {
            let name = r
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|s| s.rsplit('/').next())
                .or_else(|| {
                    r.pointer("/content/application~1json/schema/$ref")
                        .and_then(Value::as_str)
                        .and_then(|s| s.rsplit('/').next())
                })
                .unwrap_or("<inline>");
            errors.insert(name.to_owned());
            continue;
        }
        let mut content = BTreeMap::new();
        for (media, mt) in r
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let json = media == "application/json";
            let key = if json {
                media.clone()
            } else {
                "<freeform>".to_owned()
            };
            let s = if json {
                mt.get("schema")
                    .map(|s| body_schema(contract_side, s))
                    .unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            content.insert(key, s);
        }
        if websocket {
            content.clear();
        }
        ok.insert(code.clone(), content);
    }
    (ok, errors)
}

/// A schema in canonical form: parsed by openapiv3 and re-serialized (so defaults and key order
/// do not matter), with the normalizations described in the module docs.
fn schema(v: &Value) -> Value {
    let canonical = serde_json::from_value::<openapiv3::ReferenceOr<openapiv3::Schema>>(v.clone())
        .ok()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| v.clone());
    strip(canonical)
}

fn strip(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "discriminator")
                .map(|(k, v)| {
                    let v = if k == "description" {
                        match v {
                            Value::String(s) => {
                                Value::String(s.split_whitespace().collect::<Vec<_>>().join(" "))
                            }
                            other => other,
                        }
                    } else if k == "required" && v.is_array() {
                        // schemars keeps `required` in a sorted set; order carries no meaning.
                        let mut names: Vec<Value> = v.as_array().cloned().unwrap_or_default();
                        names.sort_by_key(|a| a.to_string());
                        Value::Array(names)
                    } else {
                        strip(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
        other => other,
    }
}

fn compare_values(at: &str, c: &Value, e: &Value, out: &mut Vec<String>) {
    match (c, e) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let ptr = openapi_doc::pointer::join(at, k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => compare_values(&ptr, x, y, out),
                    (x, y) => {
                        out.push(format!("{ptr}: contract {} vs served {}", show(x), show(y)))
                    }
                }
            }
        }
        (a, b) if a != b => out.push(format!("{at}: contract {a} vs served {b}")),
        _ => {}
    }
}

fn show(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_else(|| "(absent)".into())
}

/// Parses a YAML or JSON document.
pub fn parse(text: &str) -> Result<Value, String> {
    openapi_doc::parse_text(text).map_err(|e| e.to_string())
}

/// Rewrites the representation differences listed in the module docs on the emitted document so
/// that a generic comparison (compat-check) sees only real differences: freeform `*/*` bodies take
/// the contract's media types, inline body titles go, and specific error statuses the contract
/// lists are expanded from the emitted `4XX`/`5XX` ranges; security requirements are the
/// contract's.
pub fn align_representation(contract: &Value, mut emitted: Value) -> Value {
    let c_ops = operations(contract);
    let Some(paths) = emitted.get_mut("paths").and_then(Value::as_object_mut) else {
        return emitted;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(c_op) = c_ops.get(&format!("{} {path}", method.to_uppercase())) else {
                continue;
            };
            if let (Some(security), Some(op)) = (c_op.get("security"), op.as_object_mut()) {
                op.insert("security".into(), security.clone());
            }
            // A channel: Dropshot writes upgrade failures with its own `Error` (see the module
            // doc), and has no field for the frames and close codes the adapter serves.
            if op.get("x-dropshot-websocket").is_some()
                && let Some(op) = op.as_object_mut()
            {
                for key in ["x-agora-frames", "x-agora-close-codes"] {
                    if let Some(v) = c_op.get(key) {
                        op.insert(key.into(), v.clone());
                    }
                }
                if let Some(c_responses) = c_op.get("responses").and_then(Value::as_object)
                    && let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut)
                {
                    for (code, r) in c_responses {
                        if code.starts_with('4') || code.starts_with('5') {
                            responses.insert(code.clone(), r.clone());
                        }
                    }
                }
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (code, response) in responses.iter_mut() {
                let freeform = response.pointer("/content/*~1*").is_some();
                if freeform
                    && let Some(c_content) = c_op.pointer(&format!("/responses/{code}/content"))
                {
                    response["content"] = c_content.clone();
                }
                if let Some(schema) = response
                    .pointer_mut("/content/application~1json/schema")
                    .and_then(Value::as_object_mut)
                    && schema.contains_key("type")
                {
                    schema.remove("title");
                }
            }
            if let Some(c_responses) = c_op.get("responses").and_then(Value::as_object) {
                for (code, r) in c_responses {
                    if (code.starts_with('4') || code.starts_with('5'))
                        && !responses.contains_key(code)
                    {
                        responses.insert(code.clone(), r.clone());
                    }
                }
            }
            if let Some(schema) = op
                .pointer_mut("/requestBody/content/application~1json/schema")
                .and_then(Value::as_object_mut)
                && schema.contains_key("type")
            {
                schema.remove("title");
            }
        }
    }
    if let (Some(security), Some(root)) = (contract.get("security"), emitted.as_object_mut()) {
        root.insert("security".into(), security.clone());
    }
    if let Some(schemes) = contract.pointer("/components/securitySchemes")
        && let Some(components) = emitted.get_mut("components").and_then(Value::as_object_mut)
    {
        components.insert("securitySchemes".into(), schemes.clone());
    }
    // The contract's shared error response (with its Retry-After header) is what both use.
    if let (Some(c), Some(e)) = (
        contract.pointer("/components/responses"),
        emitted.pointer_mut("/components/responses"),
    ) && let (Some(c), Some(e)) = (c.as_object(), e.as_object_mut())
    {
        for (name, r) in c {
            e.insert(name.clone(), r.clone());
        }
    }
    emitted
}
