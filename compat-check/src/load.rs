//! Loading documents: files, strings and `git:REF:PATH`, validated as OpenAPI 3.0 with no dangling `$ref`.
//!
//! Everything here turns bad input into a `LoadError` that names the file and the line:column or
//! JSON pointer, because the CLI maps it to exit code 2 and a human has to find the spot.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use openapi_doc::pointer::{self, escape};
use openapi_doc::reference::decode_percent;

use crate::position::{LineCol, PositionIndex};

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

    /// Loads OLD and NEW side by side (parsing dominates start-up on large documents).
    pub fn load_pair(old: &str, new: &str) -> Result<(Self, Self), LoadError> {
        std::thread::scope(|s| {
            let h = s.spawn(|| Self::load(old));
            let n = Self::load(new);
            let o = h.join().unwrap_or_else(|_| {
                Err(LoadError::Git {
                    file: old.to_owned(),
                    message: "loader thread panicked".to_owned(),
                })
            });
            Ok((o?, n?))
        })
    }

    /// Parses two texts side by side; see `load_pair`.
    pub fn from_str_pair(old: (&str, &str), new: (&str, &str)) -> Result<(Self, Self), LoadError> {
        std::thread::scope(|s| {
            let h = s.spawn(|| Self::from_str(old.0, old.1));
            let n = Self::from_str(new.0, new.1);
            let o = h.join().unwrap_or_else(|_| {
                Err(LoadError::Git {
                    file: old.0.to_owned(),
                    message: "parser thread panicked".to_owned(),
                })
            });
            Ok((o?, n?))
        })
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
        pointer::get(&self.value, pointer)
    }

    /// Positions of many pointers in one pass over the text; cheaper than the full index when
    /// only a report's worth of locations is needed.
    pub fn positions_of(&self, pointers: &[&str]) -> Vec<Option<LineCol>> {
        if let Some(index) = self.positions.get() {
            return pointers.iter().map(|p| index.lookup(p)).collect();
        }
        let index = PositionIndex::build_for(&self.text, pointers);
        pointers.iter().map(|p| index.lookup(p)).collect()
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
        match openapi_doc::Version::of(&self.value) {
            Ok(openapi_doc::Version::V30) => {}
            Err(openapi_doc::VersionError::Swagger2) => {
                return Err(not_openapi("/swagger", "Swagger 2.0 is not supported"));
            }
            Err(openapi_doc::VersionError::Missing) => {
                return Err(not_openapi("", "missing `openapi: 3.0.x`"));
            }
            // 3.1 (which the document model carries, but this checker does not compare yet) and
            // anything else.
            Ok(_) | Err(openapi_doc::VersionError::Unsupported(_)) => {
                let v = root.get("openapi").cloned().unwrap_or(Value::Null);
                return Err(not_openapi(
                    "/openapi",
                    &format!("version {v} is not 3.0.x"),
                ));
            }
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
        /// One step of the path from the root; pointers are only spelled out for errors.
        #[derive(Clone, Copy)]
        enum Step<'v> {
            Key(&'v str),
            Index(usize),
        }
        let spell = |path: &[Step]| -> String {
            let mut out = String::new();
            for step in path {
                match step {
                    Step::Key(k) => {
                        out.push('/');
                        out.push_str(&escape(k));
                    }
                    Step::Index(i) => out.push_str(&format!("/{i}")),
                }
            }
            out
        };
        // Iterative walk (documents can be deep): (depth, step into this node, node, under
        // an `examples` map).
        let mut path: Vec<Step> = Vec::new();
        let mut stack: Vec<(usize, Option<Step>, &Value, bool)> =
            vec![(0, None, &self.value, false)];
        while let Some((depth, step, v, in_examples)) = stack.pop() {
            path.truncate(depth.saturating_sub(1));
            if let Some(step) = step {
                path.push(step);
            }
            match v {
                Value::Object(map) => {
                    if let Some(r) = map.get("$ref") {
                        let dangling = |message: &str| LoadError::DanglingRef {
                            file: self.name.clone(),
                            location: self.describe(&format!("{}/$ref", spell(&path))),
                            target: r.as_str().unwrap_or_default().to_owned(),
                            message: message.to_owned(),
                        };
                        let Some(target) = r.as_str() else {
                            return Err(dangling("`$ref` is not a string"));
                        };
                        let Some(local) = target.strip_prefix('#') else {
                            return Err(dangling("only local references (#/...) are supported"));
                        };
                        let Some(decoded) = decode_percent(local) else {
                            return Err(dangling("malformed percent-encoding"));
                        };
                        if pointer::get(&self.value, &decoded).is_none() {
                            return Err(dangling("no such location in the document"));
                        }
                    }
                    for (k, child) in map {
                        // Examples, defaults, enums and extensions are free-form data: a `$ref`
                        // key inside them is not a reference.
                        let free_form = matches!(k.as_str(), "example" | "default" | "enum")
                            || k.starts_with("x-")
                            || (k == "value" && in_examples);
                        if free_form || !(child.is_object() || child.is_array()) {
                            continue;
                        }
                        let under = in_examples || k == "examples";
                        stack.push((depth + 1, Some(Step::Key(k)), child, under));
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        if child.is_object() || child.is_array() {
                            stack.push((depth + 1, Some(Step::Index(i)), child, in_examples));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The text as a value; a syntax error names the file.
fn parse_text(name: &str, text: &str) -> Result<Value, LoadError> {
    openapi_doc::parse_text(text).map_err(|e| LoadError::Syntax {
        file: name.to_owned(),
        syntax: e.syntax,
        line: e.line,
        column: e.column,
        message: e.message,
    })
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
