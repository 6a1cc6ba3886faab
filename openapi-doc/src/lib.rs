//! The OpenAPI document model every Agora tool shares — the generator (`agora-codegen`),
//! `compat-check`, the contract round-trip tests, `client-gen` and the runtime's error pointers —
//! so that JSON pointers, `$ref`s and versions are handled one way.
//!
//! A document is a `serde_json::Value` tree rather than `openapiv3` types: `openapiv3` covers
//! OpenAPI 3.0 only, and 3.1 (JSON Schema 2020-12) must be carried too. Callers that want typed
//! 3.0 access (the generator's final structural check) deserialize into `openapiv3` themselves.
//!
//! - [`pointer`]: RFC 6901 escaping, joining, splitting and lookup (no allocation for clean tokens).
//! - [`reference`]: local `$ref` fragments (percent-decoded) and their resolution.
//! - [`Version`]: which OpenAPI a document declares.
//! - `parse` (feature `parse`): text (JSON or YAML, BOM tolerated) to a value, with positions in
//!   syntax errors.
//! - `positions` (feature `positions`): pointer → line:column in the source text.

#[cfg(feature = "positions")]
mod block_positions;
#[cfg(feature = "parse")]
mod parse;
pub mod pointer;
#[cfg(feature = "positions")]
pub mod positions;
pub mod reference;

#[cfg(feature = "parse")]
pub use parse::{SyntaxError, parse_text};

use serde_json::Value;

/// The HTTP methods of a path item, in the order OpenAPI lists them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The OpenAPI version a document declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// `openapi: 3.0.x`.
    V30,
    /// `openapi: 3.1.x` (JSON Schema 2020-12).
    V31,
}

/// Why a document's version is not one this model knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// No `openapi` field.
    #[error("the document has no `openapi` field")]
    Missing,
    /// A `swagger: "2.0"` document.
    #[error("this is a Swagger 2.0 document; convert it to OpenAPI 3.0 first")]
    Swagger2,
    /// Any other value.
    #[error("`openapi` is {0}; OpenAPI 3.0.x and 3.1.x are supported")]
    Unsupported(String),
}

impl Version {
    /// The version `root` declares. `3.0` and `3.1` (without a patch number) are accepted as
    /// their series, as tools commonly write them.
    pub fn of(root: &Value) -> Result<Version, VersionError> {
        match root.get("openapi") {
            None if root.get("swagger").is_some() => Err(VersionError::Swagger2),
            None => Err(VersionError::Missing),
            Some(Value::String(v)) if v == "3.0" || v.starts_with("3.0.") => Ok(Version::V30),
            Some(Value::String(v)) if v == "3.1" || v.starts_with("3.1.") => Ok(Version::V31),
            Some(other) => Err(VersionError::Unsupported(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions() {
        assert_eq!(Version::of(&json!({"openapi": "3.0.3"})), Ok(Version::V30));
        assert_eq!(Version::of(&json!({"openapi": "3.0"})), Ok(Version::V30));
        assert_eq!(Version::of(&json!({"openapi": "3.1.0"})), Ok(Version::V31));
        assert_eq!(
            Version::of(&json!({"swagger": "2.0"})),
            Err(VersionError::Swagger2)
        );
        assert_eq!(Version::of(&json!({})), Err(VersionError::Missing));
        assert!(matches!(
            Version::of(&json!({"openapi": "3.01"})),
            Err(VersionError::Unsupported(_))
        ));
        assert!(matches!(
            Version::of(&json!({"openapi": 3.0})),
            Err(VersionError::Unsupported(_))
        ));
    }
}
