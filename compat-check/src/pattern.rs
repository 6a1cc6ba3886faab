//! Whether one `pattern` accepts everything another does, decided on automata where that is cheap.
//!
//! An OpenAPI `pattern` is an ECMA-262 regular expression matched *unanchored*: a string is valid
//! when the expression matches somewhere in it. So the language of `P` is `Σ* P Σ*`, and a pattern
//! change is harmless for requests when the new language includes the old one. Both languages are
//! compiled to anchored DFAs (`regex-automata`, byte-level, size-capped) and their product is walked
//! breadth-first looking for a string the narrow side accepts and the wide side rejects.
//!
//! Bytes rather than Unicode scalar values keep the automata small; both sides are read the same way,
//! so a difference found on bytes is a real one for the ASCII strings that patterns in API contracts
//! constrain (identifiers, slugs, codes). Anything this module cannot read the way ECMA does —
//! lookaround, backreferences, Unicode word boundaries — or whose automata grow past the caps is
//! *undecided* (`None`), never guessed.

use std::collections::{HashSet, VecDeque};

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, util::syntax};

/// Largest DFA built for one pattern, in bytes of transition table.
const DFA_SIZE_LIMIT: usize = 1 << 20;
/// Most state pairs visited before giving up.
const MAX_PAIRS: usize = 20_000;

fn dfa(pattern: &str) -> Option<dense::DFA<Vec<u32>>> {
    // Unanchored search semantics as a full-string language.
    let whole = format!("(?s:.)*(?:{pattern})(?s:.)*");
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Anchored)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
        )
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
        .build(&whole)
        .ok()
}

fn accepts_at_end(dfa: &dense::DFA<Vec<u32>>, state: StateID) -> Option<bool> {
    let end = dfa.next_eoi_state(state);
    if dfa.is_quit_state(end) {
        return None;
    }
    Some(dfa.is_match_state(end))
}

/// `Some(true)` when every string `narrow` matches, `wide` matches too; `Some(false)` when some
/// string matches `narrow` only; `None` when this cannot be decided here.
pub(crate) fn includes(wide: &str, narrow: &str) -> Option<bool> {
    if wide == narrow {
        return Some(true);
    }
    let (w, n) = (dfa(wide)?, dfa(narrow)?);
    let config = start::Config::new().anchored(Anchored::Yes);
    let start = (w.start_state(&config).ok()?, n.start_state(&config).ok()?);
    let mut seen: HashSet<(StateID, StateID)> = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some((sw, sn)) = queue.pop_front() {
        if n.is_dead_state(sn) {
            continue;
        }
        if accepts_at_end(&n, sn)? && !accepts_at_end(&w, sw)? {
            return Some(false);
        }
        for byte in 0..=255u8 {
            let next = (w.next_state(sw, byte), n.next_state(sn, byte));
            if w.is_quit_state(next.0) || n.is_quit_state(next.1) {
                return None;
            }
            if seen.insert(next) {
                if seen.len() > MAX_PAIRS {
                    return None;
                }
                queue.push_back(next);
            }
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::includes;

    #[test]
    fn widening_and_narrowing_are_decided() {
        assert_eq!(includes("^[a-z0-9]+$", "^[a-z]+$"), Some(true));
        assert_eq!(includes("^[a-z]+$", "^[a-z0-9]+$"), Some(false));
        assert_eq!(includes("^[a-z]{1,10}$", "^[a-z]{2,5}$"), Some(true));
        assert_eq!(includes("^[a-z]{2,5}$", "^[a-z]{1,10}$"), Some(false));
        // Unanchored: `abc` somewhere; `^abc` is the narrower language.
        assert_eq!(includes("abc", "^abc"), Some(true));
        assert_eq!(includes("^abc", "abc"), Some(false));
        // Spellings of "anything" include everything.
        assert_eq!(includes("", "^[a-z]+$"), Some(true));
        assert_eq!(includes("[\\s\\S]*", "^x$"), Some(true));
        assert_eq!(includes("^\\d+$", "^[0-9]+$"), Some(true));
    }

    #[test]
    fn what_the_automata_cannot_read_is_undecided() {
        assert_eq!(includes("^(?=.*[0-9])[a-z0-9]+$", "^[a-z]+$"), None);
        assert_eq!(includes("^(a)\\1$", "^aa$"), None);
    }
}
