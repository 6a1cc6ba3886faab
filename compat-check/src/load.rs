//! Loading documents: files, strings and `git:REF:PATH`, validated as OpenAPI 3.0 with no dangling `$ref`.
//!
//! Everything here turns bad input into a `LoadError` that names the file and the line:column or
//! JSON pointer, because the CLI maps it to exit code 2 and a human has to find the spot.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::position::{LineCol, PositionIndex, escape_token};

/// Why a document could not be compared (CLI exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `git show` failed (bad ref, path not in the tree, not a repository).
    #[error("{file}: git show failed: {message}")]
    Git {
        /// The `git:REF:PATH` spec.
        file: String,
        /// git's stderr, trimmed.
        message: String,
    },
    /// The text is not valid YAML or JSON.
    #[error("{file}:{line}:{column}: invalid {syntax}: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// "YAML" or "JSON".
        syntax: &'static str,
        /// 1-based line (0 when the parser gave none).
        line: usize,
        /// 1-based column (0 when the parser gave none).
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Valid YAML/JSON but not an OpenAPI 3.0 document.
    #[error("{file}: {location}: not an OpenAPI 3.0 document: {message}")]
    NotOpenApi {
        /// File name.
        file: String,
        /// Pointer, with line:column when known.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A `$ref` points at nothing (or outside the document).
    #[error("{file}: {location}: unresolvable $ref {target:?}: {message}")]
    DanglingRef {
        /// File name.
        file: String,
        /// Pointer of the `$ref`, with line:column when known.
        location: String,
        /// The `$ref` value.
        target: String,
        /// Why it does not resolve.
        message: String,
    },
}

/// A parsed OpenAPI document with what is needed to report positions.
#[derive(Debug)]
pub struct Document {
    /// Name used in reports (path, or the `git:REF:PATH` spec).
    pub name: String,
    /// The source text.
    pub text: String,
    /// The parsed tree; the checker works on this rather than a typed model so that vendor
    /// extensions (`x-sunset`) and unknown keys stay visible.
    pub value: Value,
    positions: OnceLock<PositionIndex>,
}

impl Document {
    /// Reads and validates a file (YAML or JSON, decided by content).
    pub fn from_path(p: &Path) -> Result<Self, LoadError> {
        let name = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|source| LoadError::Io {
            file: name.clone(),
            source,
        })?;
        Self::from_str(&name, &text)
    }

    /// Parses and validates `text`; `name` is only used in messages.
    pub fn from_str(name: &str, text: &str) -> Result<Self, LoadError> {
        let value = parse_text(name, text)?;
        let doc = Document {
            name: name.to_owned(),
            text: text.to_owned(),
            value,
            positions: OnceLock::new(),
        };
        doc.validate()?;
        Ok(doc)
    }

    /// Loads `spec`: a file path, or `git:REF:PATH` read with `git show REF:PATH`.
    pub fn load(spec: &str) -> Result<Self, LoadError> {
        match spec.strip_prefix("git:") {
            Some(rest) => {
                let text = git_show(spec, rest)?;
                Self::from_str(spec, &text)
            }
            None => Self::from_path(Path::new(spec)),
        }
    }

    /// Line:column of `pointer` (or its nearest indexed ancestor); the index is built on first use
    /// because most comparisons of identical documents never need it.
    pub fn position(&self, pointer: &str) -> Option<LineCol> {
        self.positions
            .get_or_init(|| PositionIndex::build(&self.text))
            .lookup(pointer)
    }

    /// The value at `pointer`.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }

    /// `pointer` followed by ` (line:col)` when known, for error messages.
    fn describe(&self, pointer: &str) -> String {
        let shown = if pointer.is_empty() { "/" } else { pointer };
        match self.position(pointer) {
            Some(p) => format!("{}:{} ({shown})", p.line, p.column),
            None => shown.to_owned(),
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        let not_openapi = |pointer: &str, message: &str| LoadError::NotOpenApi {
            file: self.name.clone(),
            location: self.describe(pointer),
            message: message.to_owned(),
        };
        let Some(root) = self.value.as_object() else {
            return Err(not_openapi("", "the top level is not a mapping"));
        };
        match root.get("openapi") {
            Some(Value::String(v)) if v.starts_with("3.0") => {}
            Some(Value::String(v)) => {
                return Err(not_openapi(
                    "/openapi",
                    &format!("version {v:?} is not 3.0.x"),
                ));
            }
            Some(_) => return Err(not_openapi("/openapi", "`openapi` is not a string")),
            None if root.contains_key("swagger") => {
                return Err(not_openapi("/swagger", "Swagger 2.0 is not supported"));
            }
            None => return Err(not_openapi("", "missing `openapi: 3.0.x`")),
        }
        match root.get("paths") {
            Some(Value::Object(_)) => {}
            Some(_) => return Err(not_openapi("/paths", "`paths` is not a mapping")),
            None => return Err(not_openapi("", "missing `paths`")),
        }
        self.check_refs()
    }

    /// Every `$ref` must be local and resolve; dangling refs are load errors so the comparison
    /// itself never has to invent a meaning for them.
    fn check_refs(&self) -> Result<(), LoadError> {
        // Iterative walk: documents can be deep and the stack is shared with the caller.
        let mut stack: Vec<(String, &Value)> = vec![(String::new(), &self.value)];
        while let Some((ptr, v)) = stack.pop() {
            match v {
                Value::Object(map) => {
                    if let Some(r) = map.get("$ref") {
                        let at = format!("{ptr}/$ref");
                        let dangling = |message: &str| LoadError::DanglingRef {
                            file: self.name.clone(),
                            location: self.describe(&at),
                            target: r.as_str().unwrap_or_default().to_owned(),
                            message: message.to_owned(),
                        };
                        let Some(target) = r.as_str() else {
                            return Err(dangling("`$ref` is not a string"));
                        };
                        let Some(local) = target.strip_prefix('#') else {
                            return Err(dangling("only local references (#/...) are supported"));
                        };
                        let Some(decoded) = decode_fragment(local) else {
                            return Err(dangling("malformed percent-encoding"));
                        };
                        if self.value.pointer(&decoded).is_none() {
                            return Err(dangling("no such location in the document"));
                        }
                    }
                    for (k, child) in map {
                        // Examples, defaults, enums and extensions are free-form data: a `$ref`
                        // key inside them is not a reference.
                        let free_form = matches!(k.as_str(), "example" | "default" | "enum")
                            || k.starts_with("x-")
                            || (k == "value" && ptr.contains("/examples/"));
                        if free_form {
                            continue;
                        }
                        stack.push((format!("{ptr}/{}", escape_token(k)), child));
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        stack.push((format!("{ptr}/{i}"), child));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Turns the fragment of a `$ref` (after `#`) into a JSON pointer (percent-decoding it).
pub(crate) fn decode_fragment(fragment: &str) -> Option<String> {
    if !fragment.contains('%') {
        return Some(fragment.to_owned());
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
    String::from_utf8(out).ok()
}

/// JSON is tried first when the text looks like JSON: it is much faster and gives exact errors.
fn parse_text(name: &str, text: &str) -> Result<Value, LoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| LoadError::Syntax {
            file: name.to_owned(),
            syntax: "JSON",
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        });
    }
    serde_yaml::from_str::<Value>(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        LoadError::Syntax {
            file: name.to_owned(),
            syntax: "YAML",
            line,
            column,
            message: strip_position(&e.to_string()),
        }
    })
}

/// Parser messages end with " at line X column Y"; the position is already in our prefix.
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn git_show(spec: &str, rest: &str) -> Result<String, LoadError> {
    // REF may itself contain ':' only in exotic forms; PATH never starts with one, so split last.
    let Some((reference, path)) = rest.rsplit_once(':') else {
        return Err(LoadError::Git {
            file: spec.to_owned(),
            message: "expected git:REF:PATH".to_owned(),
        });
    };
    let output = Command::new("git")
        .arg("show")
        .arg(format!("{reference}:{path}"))
        .output()
        .map_err(|source| LoadError::Io {
            file: spec.to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(LoadError::Git {
            file: spec.to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    String::from_utf8(output.stdout).map_err(|e| LoadError::Git {
        file: spec.to_owned(),
        message: format!("not UTF-8: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n";

    #[test]
    fn loads_minimal_yaml_and_json() {
        assert!(Document::from_str("a.yaml", MINIMAL).is_ok());
        let json = r#"{"openapi":"3.0.0","info":{"title":"t","version":"1"},"paths":{}}"#;
        assert!(Document::from_str("a.json", json).is_ok());
    }

    #[test]
    fn rejects_bad_yaml_with_position() {
        let err = Document::from_str("bad.yaml", "openapi: 3.0.3\npaths: [\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("bad.yaml:"), "{err}");
        assert!(err.contains("invalid YAML"), "{err}");
    }

    #[test]
    fn rejects_openapi_31_and_swagger() {
        let e = Document::from_str("x", "openapi: 3.1.0\npaths: {}\n").err();
        assert!(matches!(e, Some(LoadError::NotOpenApi { .. })));
        let e = Document::from_str("x", "swagger: '2.0'\npaths: {}\n").err();
        assert!(matches!(e, Some(LoadError::NotOpenApi { .. })));
    }

    #[test]
    fn rejects_dangling_ref_with_line() {
        let text = "openapi: 3.0.3\npaths: {}\ncomponents:\n  schemas:\n    A:\n      $ref: '#/components/schemas/B'\n";
        let err = Document::from_str("d.yaml", text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("6:7"), "{err}");
        assert!(err.contains("#/components/schemas/B"), "{err}");
    }

    #[test]
    fn numeric_response_keys_become_strings() {
        let text = "openapi: 3.0.3\npaths:\n  /a:\n    get:\n      responses:\n        200:\n          description: ok\n";
        let doc = Document::from_str("n.yaml", text);
        assert!(
            doc.as_ref()
                .is_ok_and(|d| d.get("/paths/~1a/get/responses/200").is_some()),
            "{doc:?}"
        );
    }
}
