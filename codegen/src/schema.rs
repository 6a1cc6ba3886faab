//! OpenAPI 3.0 schema objects: which keywords are supported, and conversion to the JSON Schema
//! dialects that typify (draft 7, `null` as a type) and schemars/Dropshot (OpenAPI-flavoured,
//! `nullable` kept as a keyword, numeric exclusive bounds) expect.

use std::collections::BTreeSet;

use openapi_doc::pointer::escape as esc;
use serde_json::{Map, Value, json};

use crate::error::At;

/// The keywords the generator understands. Anything else that is not `x-` fails the build.
const KNOWN: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "default",
    "example",
    "enum",
    "nullable",
    "readOnly",
    "writeOnly",
    "deprecated",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "oneOf",
    "anyOf",
    "allOf",
    "discriminator",
    "$ref",
    "externalDocs",
];

const STRING_FORMATS: &[&str] = &[
    "uuid",
    "date-time",
    "date",
    "email",
    "uri",
    "password",
    "byte",
    "binary",
];
const INTEGER_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
];
const NUMBER_FORMATS: &[&str] = &["float", "double"];

/// The component name a `$ref` points at; only local component schemas are supported.
pub(crate) fn ref_name<'a>(reference: &'a str, pointer: &str) -> Result<&'a str, At> {
    reference
        .strip_prefix("#/components/schemas/")
        .filter(|n| !n.contains('/'))
        .ok_or_else(|| {
            At::new(
                pointer,
                format!(
                    "unsupported $ref {reference:?}: only #/components/schemas/<Name> is supported"
                ),
            )
        })
}

/// Checks a schema recursively; also checks that every `$ref` resolves.
pub(crate) fn check(
    schema: &Value,
    pointer: &str,
    components: &Map<String, Value>,
) -> Result<(), At> {
    let Some(obj) = schema.as_object() else {
        return Err(At::new(pointer, "a schema must be an object"));
    };
    for key in obj.keys() {
        if !key.starts_with("x-") && !KNOWN.contains(&key.as_str()) {
            return Err(At::new(
                format!("{pointer}/{}", esc(key)),
                format!("unsupported schema keyword {key:?}"),
            ));
        }
    }
    if let Some(r) = obj.get("$ref") {
        let r = r
            .as_str()
            .ok_or_else(|| At::new(pointer, "$ref must be a string"))?;
        let name = ref_name(r, pointer)?;
        if !components.contains_key(name) {
            return Err(At::new(pointer, format!("dangling $ref {r:?}")));
        }
        if obj
            .keys()
            .any(|k| k != "$ref" && !k.starts_with("x-") && k != "description")
        {
            return Err(At::new(
                pointer,
                "a $ref has no siblings in OpenAPI 3.0; wrap it in allOf to add keywords",
            ));
        }
        return Ok(());
    }
    if let Some(ty) = obj.get("type") {
        let ty = ty.as_str().ok_or_else(|| {
            At::new(
                format!("{pointer}/type"),
                "type must be a string in OpenAPI 3.0",
            )
        })?;
        let formats: &[&str] = match ty {
            "string" => STRING_FORMATS,
            "integer" => INTEGER_FORMATS,
            "number" => NUMBER_FORMATS,
            "boolean" | "object" | "array" => &[],
            other => {
                return Err(At::new(
                    format!("{pointer}/type"),
                    format!("unknown type {other:?}"),
                ));
            }
        };
        if let Some(format) = obj.get("format").and_then(Value::as_str)
            && !formats.contains(&format)
        {
            return Err(At::new(
                format!("{pointer}/format"),
                format!(
                    "unsupported format {format:?} for type {ty:?} (supported: {})",
                    formats.join(", ")
                ),
            ));
        }
        if ty == "array" && !obj.contains_key("items") {
            return Err(At::new(pointer, "an array schema must have items"));
        }
    }
    if let Some(pattern) = obj.get("pattern") {
        let source = pattern
            .as_str()
            .ok_or_else(|| At::new(format!("{pointer}/pattern"), "pattern must be a string"))?;
        regress::Regex::new(source).map_err(|e| {
            At::new(
                format!("{pointer}/pattern"),
                format!("invalid ECMA 262 pattern: {e}"),
            )
        })?;
    }
    for key in ["exclusiveMinimum", "exclusiveMaximum"] {
        if obj.get(key).is_some_and(|v| !v.is_boolean()) {
            return Err(At::new(
                format!("{pointer}/{key}"),
                format!("{key} is a boolean in OpenAPI 3.0"),
            ));
        }
    }
    if let Some(d) = obj.get("discriminator") {
        if !obj.contains_key("oneOf") {
            return Err(At::new(
                format!("{pointer}/discriminator"),
                "discriminator is supported with oneOf only",
            ));
        }
        if d.get("propertyName").and_then(Value::as_str).is_none() {
            return Err(At::new(
                format!("{pointer}/discriminator"),
                "discriminator needs propertyName",
            ));
        }
        for (i, branch) in obj["oneOf"].as_array().into_iter().flatten().enumerate() {
            if branch.get("$ref").is_none() {
                return Err(At::new(
                    format!("{pointer}/oneOf/{i}"),
                    "with a discriminator, every oneOf branch must be a $ref",
                ));
            }
        }
    }
    if let Some(props) = obj.get("properties") {
        let props = props
            .as_object()
            .ok_or_else(|| At::new(format!("{pointer}/properties"), "must be an object"))?;
        for (name, sub) in props {
            check(
                sub,
                &format!("{pointer}/properties/{}", esc(name)),
                components,
            )?;
        }
    }
    if let Some(items) = obj.get("items") {
        check(items, &format!("{pointer}/items"), components)?;
    }
    if let Some(ap) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        check(ap, &format!("{pointer}/additionalProperties"), components)?;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = obj.get(key) {
            let list = list
                .as_array()
                .ok_or_else(|| At::new(format!("{pointer}/{key}"), "must be an array"))?;
            for (i, sub) in list.iter().enumerate() {
                check(sub, &format!("{pointer}/{key}/{i}"), components)?;
            }
        }
    }
    Ok(())
}

/// The component names a schema references directly or through inline sub-schemas.
pub(crate) fn refs(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(obj) => {
            if let Some(name) = obj
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.insert(name.to_owned());
            }
            for (k, v) in obj {
                // `enum`, `default` and `example` hold data, not schemas.
                if !matches!(k.as_str(), "enum" | "default" | "example") && !k.starts_with("x-") {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Copies a schema object with its sub-schemas converted by `convert`, without the `drop` keys
/// (and without `x-` extensions unless `keep_extensions`); boolean exclusive bounds become the
/// numeric form both target dialects use.
fn convert_object(
    obj: &Map<String, Value>,
    convert: fn(&Value) -> Value,
    drop: &[&str],
    keep_extensions: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if drop.contains(&k.as_str()) || (!keep_extensions && k.starts_with("x-")) {
            continue;
        }
        let v = match k.as_str() {
            "properties" => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(n, s)| (n.clone(), convert(s)))
                    .collect(),
            ),
            "items" => convert(v),
            "additionalProperties" if v.is_object() => convert(v),
            "oneOf" | "anyOf" | "allOf" => {
                Value::Array(v.as_array().into_iter().flatten().map(convert).collect())
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    numeric_exclusive(obj, &mut out);
    out
}

/// OpenAPI 3.0 → JSON Schema for typify: `nullable` becomes a `null` type (or a `oneOf` with null),
/// boolean exclusive bounds become numeric ones, and OpenAPI-only keywords are dropped.
pub(crate) fn to_typify(schema: &Value) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    const OPENAPI_ONLY: &[&str] = &[
        "nullable",
        "discriminator",
        "example",
        "externalDocs",
        "exclusiveMinimum",
        "exclusiveMaximum",
    ];
    let mut out = convert_object(obj, to_typify, OPENAPI_ONLY, false);
    if obj.get("nullable").and_then(Value::as_bool) != Some(true) {
        return Value::Object(out);
    }
    match out.get("type").and_then(Value::as_str).map(str::to_owned) {
        Some(ty) => {
            out.insert("type".into(), json!([ty, "null"]));
            if let Some(Value::Array(values)) = out.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
            Value::Object(out)
        }
        None => {
            // `allOf: [$ref]` + nullable is how 3.0 spells a nullable reference.
            let inner = match out.get("allOf").and_then(Value::as_array) {
                Some(list) if list.len() == 1 && out.len() <= 2 => list[0].clone(),
                _ => Value::Object(out),
            };
            json!({ "oneOf": [inner, { "type": "null" }] })
        }
    }
}

/// OpenAPI 3.0 → the schemars 0.8 form Dropshot converts back to OpenAPI: identical except that
/// boolean exclusive bounds become the numeric form schemars stores.
pub(crate) fn to_schemars(schema: &Value) -> Value {
    match schema {
        Value::Object(obj) => Value::Object(convert_object(
            obj,
            to_schemars,
            &["exclusiveMinimum", "exclusiveMaximum"],
            true,
        )),
        other => other.clone(),
    }
}

fn numeric_exclusive(obj: &Map<String, Value>, out: &mut Map<String, Value>) {
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if obj.get(flag).and_then(Value::as_bool) == Some(true)
            && let Some(b) = out.remove(bound)
        {
            out.insert(flag.into(), b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_types_become_null_unions() {
        let s = to_typify(&json!({"type": "string", "nullable": true, "enum": ["a"]}));
        assert_eq!(s, json!({"type": ["string", "null"], "enum": ["a", null]}));
        let s =
            to_typify(&json!({"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": true}));
        assert_eq!(
            s,
            json!({"oneOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]})
        );
    }

    #[test]
    fn exclusive_bounds_become_numeric() {
        let s = to_schemars(&json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true}));
        assert_eq!(s, json!({"type": "integer", "exclusiveMinimum": 0}));
    }

    #[test]
    fn unknown_keywords_are_rejected_with_a_pointer() {
        let err = check(
            &json!({"type": "object", "properties": {"a": {"not": {}}}}),
            "/x",
            &Map::new(),
        )
        .unwrap_err();
        assert_eq!(err.pointer, "/x/properties/a/not");
    }
}
