//! Findings and the collector that de-duplicates them: one finding per change, listing its users.
//!
//! A change inside a shared component is reached from many operations; the collector keys each
//! finding by (rule, old pointer, new pointer) so every path to it lands on the same entry and only
//! adds a user.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::load::Document;
use crate::position::LineCol;
use crate::rules::{self, Direction, Level, Rule, Severity};

/// Where a finding is, in one of the two documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Document name (path or `git:REF:PATH`).
    pub file: String,
    /// JSON pointer (RFC 6901) of the changed node.
    pub pointer: String,
    /// 1-based line, when the position index knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column, when the position index knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Location {
    fn new(doc: &Document, pointer: &str, pos: Option<LineCol>) -> Self {
        Location {
            file: doc.name.clone(),
            pointer: pointer.to_owned(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
        }
    }

    /// `file:line:col` (or `file#pointer` when the line is unknown).
    pub fn short(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            _ => format!("{}#{}", self.file, self.pointer),
        }
    }
}

/// One detected change.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Rule id (see `rules::RULES`).
    pub rule: &'static str,
    /// Severity of the rule.
    pub severity: Severity,
    /// Request, response or operation.
    pub direction: Direction,
    /// Lowest level at which the rule applies.
    pub level: Level,
    /// One line a frontend developer understands.
    pub message: String,
    /// Location in OLD, when the changed thing exists there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Location>,
    /// Location in NEW, when the changed thing exists there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Location>,
    /// Operations affected (`GET /v1/users`), sorted.
    pub users: Vec<String>,
    /// Reason of the waiver that accepted this finding, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
}

impl Finding {
    /// Breaking and not waived.
    pub fn is_blocking(&self) -> bool {
        self.severity == Severity::Breaking && self.accepted.is_none()
    }
}

struct Raw {
    rule: &'static Rule,
    message: String,
    old: Option<String>,
    new: Option<String>,
    users: BTreeSet<u32>,
}

/// Gathers findings during a comparison.
pub(crate) struct Collector {
    raw: Vec<Raw>,
    /// Interned operation labels: findings in shared schemas collect thousands of users, and
    /// integer sets keep that cheap.
    labels: Vec<String>,
    label_ids: HashMap<String, u32>,
    index: HashMap<(&'static str, Option<String>, Option<String>), usize>,
}

impl Collector {
    pub(crate) fn new() -> Self {
        Collector {
            raw: Vec::new(),
            labels: Vec::new(),
            label_ids: HashMap::new(),
            index: HashMap::new(),
        }
    }

    /// Records a finding (or returns the existing one for the same rule and locations).
    pub(crate) fn add(
        &mut self,
        rule_id: &'static str,
        old: Option<&str>,
        new: Option<&str>,
        message: impl FnOnce() -> String,
    ) -> usize {
        let key = (rule_id, old.map(str::to_owned), new.map(str::to_owned));
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let Some(rule) = rules::rule(rule_id) else {
            // Rule ids come from constants in this crate; the catalogue test covers them.
            debug_assert!(false, "unknown rule id {rule_id}");
            return usize::MAX;
        };
        let i = self.raw.len();
        self.raw.push(Raw {
            rule,
            message: message(),
            old: key.1.clone(),
            new: key.2.clone(),
            users: BTreeSet::new(),
        });
        self.index.insert(key, i);
        i
    }

    /// The id of an operation label.
    pub(crate) fn user_id(&mut self, user: &str) -> u32 {
        if let Some(&id) = self.label_ids.get(user) {
            return id;
        }
        let id = u32::try_from(self.labels.len()).unwrap_or(u32::MAX);
        self.labels.push(user.to_owned());
        self.label_ids.insert(user.to_owned(), id);
        id
    }

    /// Adds an operation label to a finding's users.
    pub(crate) fn add_user(&mut self, finding: usize, user: &str) {
        let id = self.user_id(user);
        self.add_user_id(finding, id);
    }

    /// Adds an interned operation label to a finding's users.
    pub(crate) fn add_user_id(&mut self, finding: usize, user: u32) {
        if let Some(r) = self.raw.get_mut(finding) {
            r.users.insert(user);
        }
    }

    /// Drops findings above `level`, gives removed things a place in NEW, and returns the
    /// pointers whose positions `finish` needs (OLD side, NEW side, in finding order).
    pub(crate) fn prepare(&mut self, new: &Document, level: Level) -> (Vec<String>, Vec<String>) {
        // Finding indices are held by the schema graph until users are attributed, so nothing
        // is removed here; `finish` applies the same level filter.
        // Something removed still needs a place in NEW (PR annotations can only point at the
        // new file): the nearest surviving ancestor, e.g. the schema that lost a property.
        for r in &mut self.raw {
            if r.new.is_none()
                && let Some(o) = &r.old
            {
                let mut p = o.as_str();
                while let Some(i) = p.rfind('/') {
                    p = &p[..i];
                    if new.get(p).is_some() {
                        break;
                    }
                }
                r.new = Some(p.to_owned());
            }
        }
        let kept = || self.raw.iter().filter(|r| r.rule.level <= level);
        (
            kept().filter_map(|r| r.old.clone()).collect(),
            kept().filter_map(|r| r.new.clone()).collect(),
        )
    }

    /// Final, sorted findings; `old_pos`/`new_pos` answer `prepare`'s pointers in order.
    pub(crate) fn finish(
        self,
        old: &Document,
        new: &Document,
        level: Level,
        old_pos: Vec<Option<LineCol>>,
        new_pos: Vec<Option<LineCol>>,
    ) -> Vec<Finding> {
        let Collector { raw, labels, .. } = self;
        let kept = raw.into_iter().filter(|r| r.rule.level <= level);
        let mut old_pos = old_pos.into_iter();
        let mut new_pos = new_pos.into_iter();
        let mut out: Vec<Finding> = kept
            .map(|r| Finding {
                rule: r.rule.id,
                severity: r.rule.severity,
                direction: r.rule.direction,
                level: r.rule.level,
                message: r.message,
                old: r
                    .old
                    .as_deref()
                    .map(|p| Location::new(old, p, old_pos.next().flatten())),
                new: r
                    .new
                    .as_deref()
                    .map(|p| Location::new(new, p, new_pos.next().flatten())),
                users: {
                    let mut users: Vec<String> = r
                        .users
                        .iter()
                        .filter_map(|&u| labels.get(u as usize).cloned())
                        .collect();
                    users.sort();
                    users
                },
                accepted: None,
            })
            .collect();
        out.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.rule.cmp(b.rule))
                .then_with(|| ptr_of(a).cmp(ptr_of(b)))
        });
        out
    }
}

fn ptr_of(f: &Finding) -> &str {
    f.new
        .as_ref()
        .or(f.old.as_ref())
        .map_or("", |l| l.pointer.as_str())
}

impl Collector {
    /// Old pointers of the findings of `rule` recorded so far.
    pub(crate) fn old_pointers_of(&self, rule: &str) -> std::collections::BTreeSet<String> {
        self.raw
            .iter()
            .filter(|r| r.rule.id == rule)
            .filter_map(|r| r.old.clone())
            .collect()
    }
}
