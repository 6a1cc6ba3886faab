//! A fast path for the position index: block-style YAML (what OpenAPI documents almost always
//! are) read line by line with an indentation stack, skipping every subtree that holds no wanted
//! pointer without tokenizing it.
//!
//! A full YAML parse costs about as much as reading the document with serde a second time; on
//! large documents most of that time went into subtrees the report never points at. Anything
//! this reader is not sure about — flow collections spanning lines, anchors, aliases, tags, tabs,
//! complex keys, unclosed quotes, JSON — makes it give up (`None`), and the caller falls back to
//! the full parser. Positions agree with the full parser's: a mapping entry is at its key, a
//! sequence item at its first character after the dash.

use std::collections::{HashMap, HashSet};

use crate::pointer::escape;
use crate::positions::LineCol;

#[derive(Debug)]
struct Frame {
    /// Column (0-based) of this container's keys or dashes.
    indent: usize,
    pointer: String,
    /// `Some(next index)` for a sequence.
    seq: Option<usize>,
}

/// A key whose value starts on a later line.
#[derive(Debug)]
struct Pending {
    indent: usize,
    pointer: String,
}

/// Lines to skip: an unwanted subtree (or a block scalar) below `indent`. With `dashes`, dash
/// lines at `indent` itself belong to it too (a compact sequence under its key).
#[derive(Debug)]
struct Skip {
    indent: usize,
    dashes: bool,
}

/// Indexes the wanted pointers (and every ancestor in `prefixes`), or `None` when the text is not
/// plain block YAML.
pub(crate) fn index(text: &str, prefixes: &HashSet<String>) -> Option<HashMap<String, LineCol>> {
    let mut reader = Reader {
        prefixes,
        positions: HashMap::new(),
        stack: Vec::new(),
        pending: None,
        skip: None,
    };
    reader
        .positions
        .insert(String::new(), LineCol { line: 1, column: 1 });
    reader.stack.push(Frame {
        indent: 0,
        pointer: String::new(),
        seq: None,
    });
    let mut started = false;
    for (n, raw) in text.lines().enumerate() {
        let line = u32::try_from(n + 1).ok()?;
        let content = raw.trim_start_matches(' ');
        let indent = raw.len() - content.len();
        if content.starts_with('\t') {
            return None;
        }
        let content = content.trim_end();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if !started {
            started = true;
            if content == "---" {
                continue;
            }
            if content.starts_with(['{', '[', '%']) {
                return None;
            }
        }
        if content == "..." || content.starts_with("--- ") || content == "---" {
            break;
        }
        if let Some(skip) = &reader.skip {
            let is_dash = content == "-" || content.starts_with("- ");
            if indent > skip.indent || (indent == skip.indent && skip.dashes && is_dash) {
                continue;
            }
            reader.skip = None;
        }
        reader.line(line, indent, content)?;
    }
    Some(reader.positions)
}

struct Reader<'a> {
    prefixes: &'a HashSet<String>,
    positions: HashMap<String, LineCol>,
    stack: Vec<Frame>,
    pending: Option<Pending>,
    skip: Option<Skip>,
}

impl Reader<'_> {
    fn wanted(&self, pointer: &str) -> bool {
        self.prefixes.contains(pointer)
    }

    fn record(&mut self, pointer: &str, line: u32, column: usize) {
        if self.wanted(pointer) {
            let column = u32::try_from(column + 1).unwrap_or(u32::MAX);
            self.positions
                .insert(pointer.to_owned(), LineCol { line, column });
        }
    }

    fn line(&mut self, line: u32, indent: usize, content: &str) -> Option<()> {
        let is_dash = content == "-" || content.starts_with("- ");
        if let Some(p) = self.pending.take()
            && (indent > p.indent || (indent == p.indent && is_dash))
        {
            if !self.wanted(&p.pointer) {
                self.skip = Some(Skip {
                    indent: p.indent,
                    dashes: indent == p.indent,
                });
                return Some(());
            }
            self.stack.push(Frame {
                indent,
                pointer: p.pointer,
                seq: is_dash.then_some(0),
            });
        }
        while self.stack.last().is_some_and(|f| {
            f.indent > indent || (!is_dash && f.seq.is_some() && f.indent == indent)
        }) {
            // Deeper containers end; so does a compact sequence (dashes at its key's column)
            // when a key at that column follows.
            self.stack.pop();
        }
        let top = self.stack.last()?;
        if top.indent < indent {
            // A continuation line of a multi-line plain scalar.
            return if is_dash || key_of(content).is_some() {
                None
            } else {
                Some(())
            };
        }
        if is_dash {
            self.item(line, indent, content)
        } else {
            if top.seq.is_some() {
                return None;
            }
            self.entry(line, indent, content)
        }
    }

    /// `- value`, `- key: value` or `-` (the item on the next lines).
    fn item(&mut self, line: u32, indent: usize, content: &str) -> Option<()> {
        let top = self.stack.last_mut()?;
        let index = top.seq.as_mut()?;
        let pointer = format!("{}/{index}", top.pointer);
        *index += 1;
        let rest = content[1..].trim_start_matches(' ');
        let column = indent + (content.len() - rest.len());
        if rest.is_empty() {
            self.pending = Some(Pending { indent, pointer });
            return Some(());
        }
        if rest.starts_with('-') && (rest == "-" || rest.starts_with("- ")) {
            return None;
        }
        self.record(&pointer, line, column);
        if key_of(rest).is_some() {
            if !self.wanted(&pointer) {
                self.skip = Some(Skip {
                    indent: column - 1,
                    dashes: false,
                });
                return Some(());
            }
            self.stack.push(Frame {
                indent: column,
                pointer,
                seq: None,
            });
            return self.entry(line, column, rest);
        }
        self.value(indent, rest)
    }

    /// `key: value` or `key:` (the value on the next lines).
    fn entry(&mut self, line: u32, indent: usize, content: &str) -> Option<()> {
        let (key, rest) = key_of(content)?;
        let top = self.stack.last()?;
        let pointer = format!("{}/{}", top.pointer, escape(&key));
        self.record(&pointer, line, indent);
        let rest = rest.trim_start_matches(' ');
        if rest.is_empty() || rest.starts_with('#') {
            self.pending = Some(Pending { indent, pointer });
            return Some(());
        }
        self.value(indent, rest)
    }

    /// An inline value: scalars need nothing; block scalars skip their lines; anything exotic
    /// gives up.
    fn value(&mut self, indent: usize, value: &str) -> Option<()> {
        match value.as_bytes().first()? {
            b'|' | b'>' => {
                self.skip = Some(Skip {
                    indent,
                    dashes: false,
                });
                Some(())
            }
            b'&' | b'*' | b'!' | b'?' => None,
            b'[' | b'{' => balanced(value).then_some(()),
            b'"' => closed_double(value).then_some(()),
            b'\'' => closed_single(value).then_some(()),
            _ => Some(()),
        }
    }
}

/// Splits `key: rest` (plain, `"double"` or `'single'` quoted key); `None` when the line is not
/// a mapping entry.
fn key_of(content: &str) -> Option<(String, &str)> {
    match content.as_bytes().first()? {
        b'"' => {
            let end = double_end(content)?;
            let key: String = serde_json::from_str(&content[..=end]).ok()?;
            let rest = content[end + 1..].strip_prefix(':')?;
            (rest.is_empty() || rest.starts_with(' ')).then_some((key, rest))
        }
        b'\'' => {
            let end = single_end(content)?;
            let key = content[1..end].replace("''", "'");
            let rest = content[end + 1..].strip_prefix(':')?;
            (rest.is_empty() || rest.starts_with(' ')).then_some((key, rest))
        }
        b'[' | b'{' | b'&' | b'*' | b'!' | b'?' | b'|' | b'>' | b'%' | b'@' | b'`' | b'#' => None,
        _ => {
            let at = content
                .find(": ")
                .or_else(|| content.ends_with(':').then(|| content.len() - 1))?;
            let key = &content[..at];
            if key.contains(" #") {
                return None;
            }
            Some((key.trim_end().to_owned(), &content[at + 1..]))
        }
    }
}

/// Index of the closing quote of a double-quoted scalar starting at 0.
fn double_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Index of the closing quote of a single-quoted scalar starting at 0 (`''` is an escaped quote).
fn single_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

fn closed_double(s: &str) -> bool {
    double_end(s).is_some()
}

fn closed_single(s: &str) -> bool {
    single_end(s).is_some()
}

/// Whether a flow collection closes on its own line (quotes respected).
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            }
            '"' => match double_end(&s[i..]) {
                Some(end) => {
                    for _ in 0..s[i + 1..i + end].chars().count() + 1 {
                        chars.next();
                    }
                }
                None => return false,
            },
            _ => {}
        }
    }
    false
}
