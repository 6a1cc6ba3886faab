//! Text to a document value. JSON is tried first when the text looks like JSON (it is much faster
//! and gives exact errors); anything else is YAML (JSON is YAML 1.2, so both work either way).

use serde_json::Value;

/// A document that is not well-formed JSON or YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{syntax} syntax error at line {line} column {column}: {message}")]
pub struct SyntaxError {
    /// `JSON` or `YAML`.
    pub syntax: &'static str,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// The parser's message, without its own position suffix.
    pub message: String,
}

/// Parses `text` (a leading byte-order mark is ignored).
pub fn parse_text(text: &str) -> Result<Value, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| SyntaxError {
            syntax: "JSON",
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        });
    }
    serde_yaml::from_str::<Value>(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        SyntaxError {
            syntax: "YAML",
            line,
            column,
            message: strip_position(&e.to_string()),
        }
    })
}

/// Parser messages end with " at line X column Y"; the position is already in the fields.
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_yaml_and_errors() {
        assert_eq!(
            parse_text("\u{feff}{\"a\": 1}").expect("json"),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            parse_text("a: [1, 2]\n").expect("yaml"),
            serde_json::json!({"a": [1, 2]})
        );
        let e = parse_text("{\"a\": }").expect_err("bad json");
        assert_eq!((e.syntax, e.line), ("JSON", 1));
        assert!(!e.message.contains(" at line "), "{e}");
        let e = parse_text("a: [1, 2\n").expect_err("bad yaml");
        assert_eq!(e.syntax, "YAML");
    }
}
