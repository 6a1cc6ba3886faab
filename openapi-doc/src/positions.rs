//! Maps JSON pointers to line:column in the source text, so findings can point at a line.
//!
//! serde_yaml drops positions, so the text is walked a second time with yaml-rust2's marked
//! events (JSON is valid YAML 1.2, so one walker serves both). The index is best-effort: if the
//! walker rejects something serde accepted, lookups fall back to the pointer alone. Lookups of a
//! pointer that is not indexed (a keyword that exists only on the other side, say) climb to the
//! nearest indexed ancestor, which is still the right neighbourhood for a reader.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// Pointer → position of the node (for a mapping entry, the position of its key).
#[derive(Debug, Default)]
pub struct PositionIndex {
    positions: HashMap<String, LineCol>,
}

impl PositionIndex {
    /// Builds the index; a text the walker cannot read yields an empty index.
    pub fn build(text: &str) -> Self {
        Self::walk(text, Walker::default())
    }

    /// Builds an index holding only `wanted` pointers and their ancestors (enough for
    /// `lookup`'s fallback), skipping the string work for every other node.
    pub fn build_for(text: &str, wanted: &[&str]) -> Self {
        let exact: HashSet<&str> = wanted.iter().copied().collect();
        let mut prefixes = HashSet::new();
        for w in wanted {
            let mut p = *w;
            loop {
                if !prefixes.insert(p.to_owned()) {
                    break;
                }
                match p.rfind('/') {
                    Some(i) => p = &p[..i],
                    None => break,
                }
            }
        }
        prefixes.insert(String::new());
        if let Some(positions) = crate::block_positions::index(text, &prefixes)
            && exact.iter().all(|p| positions.contains_key(*p))
        {
            return PositionIndex { positions };
        }
        Self::walk(
            text,
            Walker {
                only: Some(prefixes),
                exact: exact.iter().map(|p| (*p).to_owned()).collect(),
                remaining: Some(exact.len()),
                ..Walker::default()
            },
        )
    }

    fn walk(text: &str, mut walker: Walker) -> Self {
        let mut parser = Parser::new_from_str(text);
        // Only the first document matters (OpenAPI files hold one); an error leaves a partial
        // index. A targeted walk stops once every wanted pointer was seen.
        loop {
            match parser.next_token() {
                Ok((Event::StreamEnd | Event::DocumentEnd, _)) | Err(_) => break,
                Ok((ev, mark)) => walker.on_event(ev, mark),
            }
            if walker.remaining == Some(0) {
                break;
            }
        }
        PositionIndex {
            positions: walker.positions,
        }
    }

    /// Position of `pointer`, or of its nearest indexed ancestor.
    pub fn lookup(&self, pointer: &str) -> Option<LineCol> {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// Number of indexed nodes (used by tests).
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether nothing was indexed.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

/// Where the walker is inside a collection.
enum Frame {
    /// Inside a mapping: the pointer of the mapping, and the pending key (None = expecting a key).
    Map {
        base: Option<String>,
        key: Option<(String, Marker)>,
        /// Depth of a non-scalar key being skipped (complex keys are not addressable by pointers).
        skipping_key: usize,
    },
    /// Inside a sequence: its pointer and the index of the next item.
    Seq { base: Option<String>, next: usize },
}

#[derive(Default)]
struct Walker {
    /// When set, only these pointers (and so only their subtrees' ancestors) are tracked.
    only: Option<HashSet<String>>,
    /// The exact pointers asked for, and how many are still unseen (targeted walks only).
    exact: HashSet<String>,
    remaining: Option<usize>,
    stack: Vec<Frame>,
    positions: HashMap<String, LineCol>,
    started: bool,
}

fn to_linecol(m: Marker) -> LineCol {
    LineCol {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        column: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    }
}

impl Walker {
    /// Claims the slot for a new node: returns its pointer (None when it is not tracked) and
    /// records its position.
    fn place_node(&mut self, mark: Marker) -> Option<String> {
        let (ptr, at) = match self.stack.last_mut() {
            None => {
                if self.started {
                    return None;
                }
                self.started = true;
                (String::new(), mark)
            }
            Some(Frame::Seq { base, next }) => {
                let i = *next;
                *next += 1;
                (format!("{}/{i}", base.as_deref()?), mark)
            }
            Some(Frame::Map { base, key, .. }) => {
                let (k, kmark) = key.take()?;
                (
                    format!("{}/{}", base.as_deref()?, crate::pointer::escape(&k)),
                    kmark,
                )
            }
        };
        if self.only.as_ref().is_some_and(|only| !only.contains(&ptr)) {
            return None;
        }
        if let Some(n) = self.remaining.as_mut()
            && self.exact.contains(&ptr)
            && !self.positions.contains_key(&ptr)
        {
            *n = n.saturating_sub(1);
        }
        self.positions.insert(ptr.clone(), to_linecol(at));
        Some(ptr)
    }

    /// Returns true when the event was consumed as (part of) a mapping key.
    fn take_as_key(&mut self, ev: &Event, mark: Marker) -> bool {
        let Some(Frame::Map {
            key, skipping_key, ..
        }) = self.stack.last_mut()
        else {
            return false;
        };
        if *skipping_key > 0 {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => *skipping_key += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    *skipping_key -= 1;
                    if *skipping_key == 0 {
                        *key = Some(("?".to_owned(), mark));
                    }
                }
                _ => {}
            }
            return true;
        }
        if key.is_some() {
            return false;
        }
        match ev {
            Event::Scalar(s, ..) => *key = Some((s.clone(), mark)),
            Event::Alias(_) => *key = Some(("*".to_owned(), mark)),
            Event::MappingStart(..) | Event::SequenceStart(..) => *skipping_key = 1,
            // A mapping end while expecting a key is the mapping's own end.
            _ => return false,
        }
        true
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.take_as_key(&ev, mark) {
            return;
        }
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                self.place_node(mark);
            }
            Event::MappingStart(..) => {
                let base = self.place_node(mark);
                self.stack.push(Frame::Map {
                    base,
                    key: None,
                    skipping_key: 0,
                });
            }
            Event::SequenceStart(..) => {
                let base = self.place_node(mark);
                self.stack.push(Frame::Seq { base, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block-YAML fast path agrees with the full parser on every node it indexes, and indexes
    /// every node of the documents in the conformance corpus (or declines the document).
    #[test]
    fn fast_path_agrees_with_the_parser() {
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../compat-check/tests/corpus");
        let mut checked = 0;
        for case in std::fs::read_dir(&corpus).expect("corpus").flatten() {
            for file in ["old.yaml", "new.yaml"] {
                let Ok(text) = std::fs::read_to_string(case.path().join(file)) else {
                    continue;
                };
                let full = PositionIndex::build(&text);
                let wanted: HashSet<String> = full.positions.keys().cloned().collect();
                let Some(fast) = crate::block_positions::index(&text, &wanted) else {
                    continue;
                };
                for (pointer, at) in &fast {
                    let parsed = full.positions.get(pointer).copied();
                    // For a sequence item that is a mapping the parser's mark sits at the first
                    // key's colon; the fast path points at the key. Same line either way.
                    let is_item = pointer.is_empty()
                        || pointer
                            .rsplit('/')
                            .next()
                            .is_some_and(|t| t.parse::<usize>().is_ok());
                    if is_item {
                        assert_eq!(
                            parsed.map(|p| p.line),
                            Some(at.line),
                            "{}/{file} {pointer}",
                            case.path().display()
                        );
                    } else {
                        assert_eq!(
                            parsed,
                            Some(*at),
                            "{}/{file} {pointer}",
                            case.path().display()
                        );
                    }
                }
                let missing: Vec<&String> =
                    wanted.iter().filter(|p| !fast.contains_key(*p)).collect();
                assert!(
                    missing.is_empty(),
                    "{}/{file}: fast path missed {missing:?}",
                    case.path().display()
                );
                checked += 1;
            }
        }
        assert!(
            checked > 50,
            "the fast path declined too many corpus documents ({checked} checked)"
        );
    }

    #[test]
    fn indexes_yaml_keys_and_items() {
        let text = "openapi: 3.0.3\npaths:\n  /a/b:\n    get:\n      tags: [x, y]\n      parameters:\n        - name: q\n";
        let idx = PositionIndex::build(text);
        assert_eq!(idx.lookup("/openapi"), Some(LineCol { line: 1, column: 1 }));
        assert_eq!(
            idx.lookup("/paths/~1a~1b/get"),
            Some(LineCol { line: 4, column: 5 })
        );
        assert_eq!(
            idx.lookup("/paths/~1a~1b/get/parameters/0/name"),
            Some(LineCol {
                line: 7,
                column: 11
            })
        );
        assert_eq!(
            idx.lookup("/paths/~1a~1b/get/tags/1"),
            Some(LineCol {
                line: 5,
                column: 17
            })
        );
        // Unknown leaf climbs to the nearest ancestor.
        assert_eq!(
            idx.lookup("/paths/~1a~1b/get/nope"),
            Some(LineCol { line: 4, column: 5 })
        );
    }

    #[test]
    fn targeted_index_matches_full_index() {
        let text = "a:\n  b:\n    - x\n    - c: 1\n  d: 2\ne: 3\n";
        let full = PositionIndex::build(text);
        let part = PositionIndex::build_for(text, &["/a/b/1/c", "/e"]);
        for p in ["/a/b/1/c", "/e", "/a"] {
            assert_eq!(full.lookup(p), part.lookup(p), "{p}");
        }
        // Climbs to the item `- c: 1`: the same line (the column differs by design, see
        // `fast_path_agrees_with_the_parser`).
        let line = |i: &PositionIndex| i.lookup("/a/b/1/zzz").map(|l| l.line);
        assert_eq!(line(&full), line(&part));
        assert!(part.len() < full.len());
    }

    #[test]
    fn indexes_json() {
        let text = "{\n  \"a\": {\n    \"b\": [1, {\"c\": 2}]\n  }\n}\n";
        let idx = PositionIndex::build(text);
        assert_eq!(idx.lookup("/a/b"), Some(LineCol { line: 3, column: 5 }));
        assert_eq!(
            idx.lookup("/a/b/1/c"),
            Some(LineCol {
                line: 3,
                column: 15
            })
        );
    }
}
