//! Local `$ref`s (`#/components/...`): their fragment as a JSON pointer, and what they name.
//! Each caller keeps its own policy for a dangling reference (an error with a position, a refusal
//! of the contract, a fallback); this module only answers.

use std::borrow::Cow;

use serde_json::Value;

use crate::pointer;

/// How many `$ref`s in a row [`resolve`] follows before giving up (a cycle of pure references
/// names no schema).
pub const MAX_REF_HOPS: usize = 64;

/// Why a `$ref` names nothing here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Another document (`other.yaml#/X`) or a URL.
    #[error("external references are not supported")]
    External,
    /// A `%` escape that is not valid hex or not UTF-8.
    #[error("the fragment has an invalid percent-encoding")]
    BadEncoding,
    /// The pointer names no value in the document.
    #[error("the reference names nothing in the document")]
    Dangling,
}

/// The JSON pointer of a local reference: the part after `#`, percent-decoded (RFC 3986).
pub fn fragment(reference: &str) -> Result<Cow<'_, str>, RefError> {
    let fragment = reference.strip_prefix('#').ok_or(RefError::External)?;
    decode_percent(fragment).ok_or(RefError::BadEncoding)
}

/// Percent-decodes a fragment; borrowed when there is nothing to decode.
pub fn decode_percent(fragment: &str) -> Option<Cow<'_, str>> {
    if !fragment.contains('%') {
        return Some(Cow::Borrowed(fragment));
    }
    let bytes = fragment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = fragment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// What `reference` names in `root`, one hop.
pub fn target<'a>(root: &'a Value, reference: &str) -> Result<&'a Value, RefError> {
    pointer::get(root, &fragment(reference)?).ok_or(RefError::Dangling)
}

/// Follows `$ref`s from the value at `at` to a value that is not one, returning its pointer and
/// the value; `None` when a reference dangles, is external, or the chain is longer than
/// [`MAX_REF_HOPS`].
pub fn resolve<'a>(root: &'a Value, at: &str) -> Option<(String, &'a Value)> {
    let mut ptr = at.to_owned();
    let mut value = pointer::get(root, at)?;
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Some((ptr, value));
        };
        ptr = fragment(reference).ok()?.into_owned();
        value = pointer::get(root, &ptr)?;
    }
    None
}

/// The component name a reference or pointer names under `components/<kind>/`, as written
/// (escaped); `None` for anything else or a deeper pointer.
pub fn component_name<'a>(reference_or_pointer: &'a str, kind: &str) -> Option<&'a str> {
    let ptr = reference_or_pointer
        .strip_prefix('#')
        .unwrap_or(reference_or_pointer);
    let name = ptr
        .strip_prefix("/components/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fragments_targets_and_chains() {
        let doc = json!({"components": {"schemas": {
            "A": {"$ref": "#/components/schemas/B"},
            "B": {"type": "string"},
            "a b": {"type": "integer"},
            "Loop": {"$ref": "#/components/schemas/Loop"},
        }}});
        assert_eq!(fragment("#/x%20y").as_deref(), Ok("/x y"));
        assert_eq!(fragment("other.yaml#/X"), Err(RefError::External));
        assert_eq!(fragment("#/%zz"), Err(RefError::BadEncoding));
        assert_eq!(
            target(&doc, "#/components/schemas/a%20b"),
            Ok(&json!({"type": "integer"}))
        );
        assert_eq!(
            target(&doc, "#/components/schemas/Z"),
            Err(RefError::Dangling)
        );
        let (ptr, value) = resolve(&doc, "/components/schemas/A").expect("resolves");
        assert_eq!(
            (ptr.as_str(), value),
            ("/components/schemas/B", &json!({"type": "string"}))
        );
        assert_eq!(
            resolve(&doc, "/components/schemas/Loop"),
            None,
            "a pure cycle"
        );
        assert_eq!(
            component_name("#/components/schemas/User", "schemas"),
            Some("User")
        );
        assert_eq!(
            component_name("/components/schemas/User/properties", "schemas"),
            None
        );
        assert_eq!(component_name("#/components/responses/E", "schemas"), None);
    }
}
