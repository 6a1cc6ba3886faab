//! compat-check: detects breaking changes between two OpenAPI 3.0 documents.
//!
//! The comparison works on the parsed JSON tree (not a typed model) so vendor extensions and
//! line numbers stay available. Payload schemas are compared direction-aware — requests may only
//! widen, responses may only narrow — over a memoized graph of schema pairs, and each change is
//! reported once with the operations that reach it. See README.md for the rule catalogue.

mod date;
mod finding;
mod gate;
mod load;
mod operations;
mod pattern;
/// Source positions of JSON pointers (from the shared document model).
pub use openapi_doc::positions as position;
pub mod release;
mod report;
mod resolve;
pub mod rules;
mod schema_diff;
mod waivers;

pub use date::today_utc;
pub use finding::{Finding, Location};
pub use gate::{GateOutcome, gate};
pub use load::{Document, LoadError};
pub use report::{Format, Report, Summary};
pub use rules::{Direction, Level, RULES, Rule, Severity};
pub use waivers::{Waiver, WaiverError, load_waivers, parse_waivers};

use finding::Collector;
use operations::OperationDiff;
use schema_diff::SchemaDiff;

/// How to compare.
#[derive(Debug, Clone)]
pub struct Options {
    /// `Wire` drops the client-level (source-compatibility) rules.
    pub level: Level,
    /// Accepted breaking changes.
    pub waivers: Vec<Waiver>,
    /// `YYYY-MM-DD` used for `x-sunset` and waiver expiry; `None` = today (UTC).
    pub today: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            level: Level::Client,
            waivers: Vec::new(),
            today: None,
        }
    }
}

/// Compares OLD with NEW and reports every change that matters at `opts.level`.
pub fn compare_documents(old: &Document, new: &Document, opts: &Options) -> Report {
    let today = opts.today.clone().unwrap_or_else(today_utc);
    let mut collector = Collector::new();
    let mut schemas = SchemaDiff::new(old, new);
    OperationDiff {
        old,
        new,
        c: &mut collector,
        schemas: &mut schemas,
        today: &today,
    }
    .run();
    removed_components(old, new, &schemas.inlined, &mut collector);
    let (old_ptrs, new_ptrs) = collector.prepare(new, opts.level);
    // The position walks read whole documents; they run beside each other and beside the
    // attribution of users (and the release of the comparison graph) on this thread.
    let (old_pos, new_pos) = std::thread::scope(|s| {
        let old_walk = (!old_ptrs.is_empty()).then(|| s.spawn(|| positions(old, &old_ptrs)));
        let new_walk = (!new_ptrs.is_empty()).then(|| s.spawn(|| positions(new, &new_ptrs)));
        schemas.attribute_users(&mut collector);
        drop(schemas);
        let join = |h: Option<std::thread::ScopedJoinHandle<'_, Vec<_>>>, n: usize| {
            h.and_then(|h| h.join().ok())
                .unwrap_or_else(|| vec![None; n])
        };
        (
            join(old_walk, old_ptrs.len()),
            join(new_walk, new_ptrs.len()),
        )
    });
    let mut findings = collector.finish(old, new, opts.level, old_pos, new_pos);
    let outcome = waivers::apply(&mut findings, &opts.waivers, &today);
    Report::new(
        old.name.clone(),
        new.name.clone(),
        opts.level,
        findings,
        outcome.stale,
        outcome.expired,
    )
}

fn positions(doc: &Document, ptrs: &[String]) -> Vec<Option<position::LineCol>> {
    let ptrs: Vec<&str> = ptrs.iter().map(String::as_str).collect();
    doc.positions_of(&ptrs)
}

/// Component schemas gone from NEW that no rename explains: their generated types disappear.
fn removed_components(
    old: &Document,
    new: &Document,
    inlined: &std::collections::BTreeSet<String>,
    c: &mut Collector,
) {
    let names = |d: &Document| -> Vec<String> {
        d.get("/components/schemas")
            .and_then(serde_json::Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let new_names = names(new);
    let renamed = c.old_pointers_of("schema-renamed");
    for name in names(old) {
        if new_names.contains(&name) || inlined.contains(&name) {
            continue;
        }
        let ptr = format!(
            "/components/schemas/{}",
            openapi_doc::pointer::escape(&name)
        );
        if renamed.contains(&ptr) {
            continue;
        }
        c.add("schema-removed", Some(&ptr), None, || {
            format!("component schema `{name}` was removed")
        });
    }
}
