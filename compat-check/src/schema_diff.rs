//! Direction-aware schema comparison over a memoized graph of schema pairs.
//!
//! A request schema may only widen (the server must accept all it accepted); a response schema
//! may only narrow (clients must understand all it produces). Each (old pointer, new pointer,
//! direction) pair is compared once: the pair's own findings are recorded on a node, child pairs
//! (properties, items, variants) become edges, and cycles simply revisit an existing node. The
//! work list is explicit rather than recursive so deeply nested or chained schemas cannot
//! overflow the stack. Who uses a finding is worked out at the end by walking the graph backwards
//! from the nodes that carry findings to the roots that operations registered.
//!
//! Pairs and views are keyed by the address of the resolved schema value rather than by its
//! pointer: both documents are borrowed immutably for the whole comparison, so an address is a
//! stable identity, and the large-document profile was dominated by hashing pointer strings.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use serde_json::Value;

use crate::finding::Collector;
use crate::load::Document;
use crate::resolve::{self, Additional, At, SchemaView, describe};
use crate::rules::Direction;

/// FNV-1a: keys are addresses and short `$ref` strings, and SipHash showed up in profiles.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Identity of a schema value inside an immutably borrowed document.
fn addr(v: &Value) -> usize {
    std::ptr::from_ref(v) as usize
}

struct Node<'d> {
    /// Resolved schemas.
    old: At<'d>,
    new: At<'d>,
    dir: Direction,
    findings: Vec<usize>,
    children: Vec<usize>,
    /// Operations (interned labels) that compared this pair directly.
    roots: BTreeSet<u32>,
    /// An open union: a channel's server frames, whose clients ignore frame types they do not
    /// know, so a new variant breaks nobody.
    open: bool,
}

/// Views built so far for one document: a component is viewed once, whatever the number of
/// pairs, directions and variant matches it takes part in.
pub(crate) struct ViewCache<'d> {
    doc: &'d Document,
    /// Keyed by the address of the resolved schema value: the document is borrowed immutably
    /// for the whole comparison, so an address identifies a schema without hashing its pointer.
    views: FastMap<usize, Rc<SchemaView<'d>>>,
}

impl<'d> ViewCache<'d> {
    fn new(doc: &'d Document) -> Self {
        ViewCache {
            doc,
            views: FastMap::default(),
        }
    }

    /// The view of a resolved schema.
    fn get(&mut self, at: &At<'d>) -> Rc<SchemaView<'d>> {
        let key = addr(at.value);
        if let Some(v) = self.views.get(&key) {
            return Rc::clone(v);
        }
        let v = Rc::new(SchemaView::build(self.doc, &at.ptr, at.value));
        self.views.insert(key, Rc::clone(&v));
        v
    }
}

/// Resolves `at`, remembering `$ref` targets: thousands of schemas point at the same few.
/// Borrows `at` itself when it is not a reference (most edges), so a hit on an existing pair
/// allocates nothing.
fn resolve_cached<'x, 'd>(
    doc: &'d Document,
    cache: &mut FastMap<&'d str, Option<At<'d>>>,
    at: &'x At<'d>,
) -> Option<Cow<'x, At<'d>>> {
    let Some(target) = at.value.get("$ref").and_then(Value::as_str) else {
        return Some(Cow::Borrowed(at));
    };
    if let Some(hit) = cache.get(target) {
        return hit.clone().map(Cow::Owned);
    }
    let resolved = at.resolve(doc);
    cache.insert(target, resolved.clone());
    resolved.map(Cow::Owned)
}

/// The comparison graph for one pair of documents.
pub(crate) struct SchemaDiff<'d> {
    old: &'d Document,
    new: &'d Document,
    old_views: ViewCache<'d>,
    new_views: ViewCache<'d>,
    /// (old value address, new value address, direction) → node; see `ViewCache::views`.
    pairs: FastMap<(usize, usize, Direction), usize>,
    /// `$ref` string → resolved target, per document.
    old_targets: FastMap<&'d str, Option<At<'d>>>,
    new_targets: FastMap<&'d str, Option<At<'d>>>,
    nodes: Vec<Node<'d>>,
    queue: Vec<usize>,
    /// Components of OLD that were inlined somewhere (their removal is not reported again).
    pub(crate) inlined: BTreeSet<String>,
}

/// The component a raw schema names: its `$ref` target, or itself.
fn named(raw: &At) -> Option<String> {
    raw.ref_name()
        .or_else(|| resolve::component_name(&raw.ptr).map(str::to_owned))
}

impl<'d> SchemaDiff<'d> {
    pub(crate) fn new(old: &'d Document, new: &'d Document) -> Self {
        SchemaDiff {
            old,
            new,
            old_views: ViewCache::new(old),
            new_views: ViewCache::new(new),
            pairs: FastMap::default(),
            old_targets: FastMap::default(),
            new_targets: FastMap::default(),
            nodes: Vec::new(),
            queue: Vec::new(),
            inlined: BTreeSet::new(),
        }
    }

    /// Compares the schemas at the raw pointers `old_ptr`/`new_ptr` for operation `user`.
    pub(crate) fn root(
        &mut self,
        c: &mut Collector,
        old_ptr: &str,
        new_ptr: &str,
        dir: Direction,
        user: &str,
    ) {
        let (Some(o), Some(n)) = (At::lookup(self.old, old_ptr), At::lookup(self.new, new_ptr))
        else {
            return;
        };
        if let Some(id) = self.edge(c, &o, &n, dir) {
            let user = c.user_id(user);
            self.nodes[id].roots.insert(user);
        }
        self.drain(c);
    }

    /// Like [`SchemaDiff::root`] for a channel's server frames (`x-agora-frames.server`): an open
    /// union, so a new frame type at its top is `channel-frame-added` (info) rather than
    /// `response-variant-added`. Only the union itself is open; what a frame holds is graded as
    /// any response.
    pub(crate) fn root_open_union(
        &mut self,
        c: &mut Collector,
        old_ptr: &str,
        new_ptr: &str,
        user: &str,
    ) {
        let (Some(o), Some(n)) = (At::lookup(self.old, old_ptr), At::lookup(self.new, new_ptr))
        else {
            return;
        };
        if let Some(id) = self.edge(c, &o, &n, Direction::Response) {
            let user = c.user_id(user);
            self.nodes[id].roots.insert(user);
            self.nodes[id].open = true;
        }
        self.drain(c);
    }

    /// Attributes users to every schema finding; call once after all roots were registered.
    ///
    /// Every node of a strongly connected component has the same ancestors, and recursive
    /// documents put most of their schemas into one such component, so the backwards walk runs
    /// once per component that holds findings, over the graph of components.
    pub(crate) fn attribute_users(&self, c: &mut Collector) {
        for (f, users) in self.users_per_finding() {
            for u in users {
                c.add_user_id(f, u);
            }
        }
    }

    /// (finding, users) for every finding recorded on a schema pair.
    fn users_per_finding(&self) -> Vec<(usize, BTreeSet<u32>)> {
        let mut out = Vec::new();
        let comp = self.components();
        let n_comps = comp.iter().map(|&k| k + 1).max().unwrap_or(0);
        let mut comp_parents: Vec<Vec<usize>> = vec![Vec::new(); n_comps];
        let mut comp_roots: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); n_comps];
        let mut comp_findings: Vec<Vec<usize>> = vec![Vec::new(); n_comps];
        for (i, n) in self.nodes.iter().enumerate() {
            let k = comp[i];
            comp_roots[k].extend(n.roots.iter().copied());
            comp_findings[k].extend(n.findings.iter().copied());
            for &ch in &n.children {
                if comp[ch] != k {
                    comp_parents[comp[ch]].push(k);
                }
            }
        }
        let mut seen = vec![usize::MAX; n_comps];
        for (start, findings) in comp_findings.iter().enumerate() {
            if findings.is_empty() {
                continue;
            }
            let mut users = BTreeSet::new();
            let mut stack = vec![start];
            seen[start] = start;
            while let Some(k) = stack.pop() {
                users.extend(comp_roots[k].iter().copied());
                for &p in &comp_parents[k] {
                    if seen[p] != start {
                        seen[p] = start;
                        stack.push(p);
                    }
                }
            }
            for &f in findings {
                out.push((f, users.clone()));
            }
        }
        out
    }

    /// Strongly connected components of the pair graph (Tarjan's algorithm with an explicit
    /// stack, since the graph can be as deep as the document is large). Returns each node's
    /// component number.
    fn components(&self) -> Vec<usize> {
        const UNVISITED: usize = usize::MAX;
        let n = self.nodes.len();
        let mut index = vec![UNVISITED; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut comp = vec![UNVISITED; n];
        let mut tarjan_stack = Vec::new();
        let mut next_index = 0;
        let mut next_comp = 0;
        // (node, position of the next child to look at)
        let mut call: Vec<(usize, usize)> = Vec::new();
        for start in 0..n {
            if index[start] != UNVISITED {
                continue;
            }
            call.push((start, 0));
            index[start] = next_index;
            low[start] = next_index;
            next_index += 1;
            tarjan_stack.push(start);
            on_stack[start] = true;
            while let Some(&mut (v, ref mut pos)) = call.last_mut() {
                if let Some(&w) = self.nodes[v].children.get(*pos) {
                    *pos += 1;
                    if index[w] == UNVISITED {
                        index[w] = next_index;
                        low[w] = next_index;
                        next_index += 1;
                        tarjan_stack.push(w);
                        on_stack[w] = true;
                        call.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = tarjan_stack.pop() {
                        on_stack[w] = false;
                        comp[w] = next_comp;
                        if w == v {
                            break;
                        }
                    }
                    next_comp += 1;
                }
            }
        }
        comp
    }

    /// Resolves both sides, notes inline↔named switches, and returns the (possibly new) node id.
    fn edge(
        &mut self,
        c: &mut Collector,
        old_at: &At<'d>,
        new_at: &At<'d>,
        dir: Direction,
    ) -> Option<usize> {
        let old = resolve_cached(self.old, &mut self.old_targets, old_at)?;
        let new = resolve_cached(self.new, &mut self.new_targets, new_at)?;
        let key = (addr(old.value), addr(new.value), dir);
        let id = match self.pairs.entry(key) {
            Entry::Occupied(slot) => *slot.get(),
            Entry::Vacant(slot) => {
                let id = self.nodes.len();
                slot.insert(id);
                self.nodes.push(Node {
                    old: old.into_owned(),
                    new: new.into_owned(),
                    dir,
                    findings: Vec::new(),
                    children: Vec::new(),
                    roots: BTreeSet::new(),
                    open: false,
                });
                self.queue.push(id);
                id
            }
        };
        // Generated clients name types after components: moving between inline and named changes
        // the type a caller wrote against, even though the wire format is the same.
        let old_name = named(old_at);
        let new_name = named(new_at);
        if old_name == new_name {
            return Some(id);
        }
        // An inline oneOf/anyOf around the named schema is reported as wrapping, not inlining.
        let composed =
            |raw: &At| raw.value.get("oneOf").is_some() || raw.value.get("anyOf").is_some();
        if composed(old_at) || composed(new_at) {
            return Some(id);
        }
        let (old_raw, new_raw) = (old_at.ptr.as_str(), new_at.ptr.as_str());
        if let (Some(n), None) = (&old_name, &new_name) {
            self.inlined.insert(n.clone());
        }
        let f = match (&old_name, &new_name) {
            (Some(n), None) => Some(c.add("schema-inlined", Some(old_raw), Some(new_raw), || {
                format!("schema `{n}` was inlined at {}", describe(new_raw))
            })),
            (None, Some(n)) => {
                Some(c.add("schema-extracted", Some(old_raw), Some(new_raw), || {
                    format!(
                        "inline schema at {} was extracted into component `{n}`",
                        describe(old_raw)
                    )
                }))
            }
            _ => None,
        };
        if let Some(f) = f {
            self.nodes[id].findings.push(f);
        }
        Some(id)
    }

    fn drain(&mut self, c: &mut Collector) {
        while let Some(id) = self.queue.pop() {
            let n = &self.nodes[id];
            let dir = n.dir;
            let ov = self.old_views.get(&n.old);
            let nv = self.new_views.get(&n.new);
            let open = n.open;
            let mut ctx = PairCtx {
                c,
                old: &ov,
                new: &nv,
                dir,
                open,
                findings: Vec::new(),
                children: Vec::new(),
                new_doc: self.new,
                old_doc: self.old,
                old_views: &mut self.old_views,
                new_views: &mut self.new_views,
            };
            ctx.compare();
            let PairCtx {
                findings, children, ..
            } = ctx;
            let mut child_ids = Vec::with_capacity(children.len());
            for (o, n) in &children {
                if let Some(ch) = self.edge(c, o, n, dir) {
                    child_ids.push(ch);
                }
            }
            let node = &mut self.nodes[id];
            node.findings.extend(findings);
            node.children.extend(child_ids);
        }
    }
}

/// Comparison of one pair of views; child pairs are returned, not followed.
struct PairCtx<'x, 'a> {
    c: &'x mut Collector,
    old_views: &'x mut ViewCache<'a>,
    new_views: &'x mut ViewCache<'a>,
    old: &'x SchemaView<'a>,
    new: &'x SchemaView<'a>,
    dir: Direction,
    /// See [`Node::open`].
    open: bool,
    findings: Vec<usize>,
    children: Vec<(At<'a>, At<'a>)>,
    old_doc: &'a Document,
    new_doc: &'a Document,
}

impl PairCtx<'_, '_> {
    fn req(&self) -> bool {
        self.dir == Direction::Request
    }

    fn add(
        &mut self,
        rule: &'static str,
        old: Option<String>,
        new: Option<String>,
        msg: impl FnOnce() -> String,
    ) {
        let i = self.c.add(rule, old.as_deref(), new.as_deref(), msg);
        self.findings.push(i);
    }

    /// Adds a finding located at `keyword` on both sides.
    fn at_keyword(&mut self, rule: &'static str, keyword: &'static str, msg: String) {
        let o = self.old.keyword_ptr(keyword);
        let n = self.new.keyword_ptr(keyword);
        self.add(rule, Some(o), Some(n), || msg);
    }

    fn what(&self) -> String {
        describe(&self.new.ptr)
    }

    fn compare(&mut self) {
        self.renamed();
        match (&self.old.variants, &self.new.variants) {
            (None, None) => {}
            (Some(_), Some(_)) => self.variants(),
            // Wrapping or unwrapping: the container's own keywords are not comparable with the
            // plain schema's, so only the variant logic runs.
            _ => {
                self.variants();
                return;
            }
        }
        // A changed type already says it all; its format follow-up would be noise.
        if !self.types() {
            self.format();
        }
        self.enums();
        self.bounds();
        self.pattern();
        self.multiple_of();
        self.unique_items();
        self.nullable();
        self.properties();
        self.additional();
        if let (Some(o), Some(n)) = (&self.old.items, &self.new.items) {
            self.children.push((o.clone(), n.clone()));
        }
    }

    fn renamed(&mut self) {
        let (Some(o), Some(n)) = (&self.old.name, &self.new.name) else {
            return;
        };
        let still_there = self
            .new_doc
            .get(&format!("{}{o}", resolve::SCHEMAS_PREFIX))
            .is_some();
        if o != n && !still_there {
            let (o, n) = (o.clone(), n.clone());
            self.add(
                "schema-renamed",
                Some(self.old.ptr.clone()),
                Some(self.new.ptr.clone()),
                || format!("schema `{o}` was renamed to `{n}`"),
            );
        }
    }

    /// Returns whether a type finding was recorded.
    fn types(&mut self) -> bool {
        let (wider, narrower) = if self.req() {
            (self.new.types, self.old.types)
        } else {
            (self.old.types, self.new.types)
        };
        let broken = match (wider, narrower) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(w), Some(n)) => {
                // An integer is a number: `number` covers `integer`.
                let w = if w & resolve::NUMBER != 0 {
                    w | resolve::INTEGER
                } else {
                    w
                };
                n & !w != 0
            }
        };
        if !broken {
            return false;
        }
        let (o, n) = (
            resolve::type_label(self.old.types),
            resolve::type_label(self.new.types),
        );
        let what = self.what();
        if self.req() {
            self.at_keyword(
                "request-type-narrowed",
                "type",
                format!("`{what}` must now be {n} (was {o}); clients sending {o} get rejected"),
            );
        } else {
            self.at_keyword(
                "response-type-widened",
                "type",
                format!("`{what}` may now be {n} (was {o}); clients expect {o}"),
            );
        }
        true
    }

    fn format(&mut self) {
        // Widening pairs: (narrow, wide).
        let widens = |narrow: &str, wide: &str| {
            matches!((narrow, wide), ("int32", "int64") | ("float", "double"))
        };
        let (o, n) = (self.old.format, self.new.format);
        let broken = if self.req() {
            match (o, n) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(o), Some(n)) => o != n && !widens(o, n),
            }
        } else {
            match (o, n) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(o), Some(n)) => o != n && !widens(n, o),
            }
        };
        if broken {
            let show = |f: Option<&str>| f.map_or("none".to_owned(), |f| format!("`{f}`"));
            let msg = format!(
                "`{}` format changed from {} to {}",
                self.what(),
                show(o),
                show(n)
            );
            let rule = if self.req() {
                "request-format-changed"
            } else {
                "response-format-changed"
            };
            self.at_keyword(rule, "format", msg);
        }
    }

    fn enums(&mut self) {
        let show = |vals: &[&Value]| {
            vals.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.old.enum_values, self.new.enum_values, self.req()) {
            (Some(o), Some(n), true) => {
                let gone: Vec<&Value> = o.iter().filter(|v| !n.contains(v)).collect();
                if !gone.is_empty() {
                    let msg = format!("`{}` no longer accepts {}", self.what(), show(&gone));
                    self.at_keyword("request-enum-value-removed", "enum", msg);
                }
            }
            (Some(o), Some(n), false) => {
                let gone: Vec<&Value> = o.iter().filter(|v| !n.contains(v)).collect();
                if !gone.is_empty() {
                    let msg = format!(
                        "`{}` no longer returns {}: the generated enum loses those variants",
                        self.what(),
                        show(&gone)
                    );
                    self.at_keyword("response-enum-value-removed", "enum", msg);
                }
                let added: Vec<&Value> = n.iter().filter(|v| !o.contains(v)).collect();
                if !added.is_empty() {
                    let msg = format!(
                        "`{}` may now return {}, which clients with closed enums reject",
                        self.what(),
                        show(&added)
                    );
                    self.at_keyword("response-enum-value-added", "enum", msg);
                }
            }
            (None, Some(_), true) => {
                let msg = format!("`{}` now only accepts a fixed set of values", self.what());
                self.at_keyword("request-enum-added", "enum", msg);
            }
            (Some(_), None, false) => {
                let msg = format!("`{}` is no longer limited to a fixed set", self.what());
                self.at_keyword("response-enum-removed", "enum", msg);
            }
            _ => {}
        }
    }

    /// Whether every value of the enums of both sides satisfies `bound` (of keyword `kw`), so
    /// adding or moving the bound admits or refuses nothing.
    fn enum_within(&self, kw: &str, bound: Option<(f64, bool)>) -> bool {
        let (Some(old), Some(new)) = (self.old.enum_values, self.new.enum_values) else {
            return false;
        };
        let Some((limit, exclusive)) = bound else {
            return false;
        };
        let fits = |v: &serde_json::Value| -> bool {
            let measure = match kw {
                "maxLength" | "minLength" => v.as_str().map(|s| s.chars().count() as f64),
                "maximum" | "minimum" => v.as_f64(),
                _ => None,
            };
            let Some(m) = measure else { return false };
            match (kw.starts_with("max"), exclusive) {
                (true, false) => m <= limit,
                (true, true) => m < limit,
                (false, false) => m >= limit,
                (false, true) => m > limit,
            }
        };
        old.iter().chain(new.iter()).all(fits)
    }

    fn bounds(&mut self) {
        const TABLE: [(&str, &str, &str); 8] = [
            ("maximum", "request-max-decreased", "response-max-increased"),
            ("minimum", "request-min-increased", "response-min-decreased"),
            (
                "maxLength",
                "request-max-length-decreased",
                "response-max-length-increased",
            ),
            (
                "minLength",
                "request-min-length-increased",
                "response-min-length-decreased",
            ),
            (
                "maxItems",
                "request-max-items-decreased",
                "response-max-items-increased",
            ),
            (
                "minItems",
                "request-min-items-increased",
                "response-min-items-decreased",
            ),
            (
                "maxProperties",
                "request-max-properties-decreased",
                "response-max-properties-increased",
            ),
            (
                "minProperties",
                "request-min-properties-increased",
                "response-min-properties-decreased",
            ),
        ];
        for (kw, req_rule, resp_rule) in TABLE {
            let is_max = kw.starts_with("max");
            let excl = |v: &SchemaView| match kw {
                "maximum" => v.exclusive_maximum,
                "minimum" => v.exclusive_minimum,
                _ => false,
            };
            let idx = resolve::NUMERIC_KEYWORDS
                .iter()
                .position(|k| *k == kw)
                .unwrap_or(0);
            let o = self.old.numbers[idx].map(|n| (n, excl(self.old)));
            let n = self.new.numbers[idx].map(|n| (n, excl(self.new)));
            // `tighter(a, b)`: bound a admits strictly less than bound b.
            let tighter = |a: (f64, bool), b: (f64, bool)| {
                if is_max {
                    a.0 < b.0 || (a.0 == b.0 && a.1 && !b.1)
                } else {
                    a.0 > b.0 || (a.0 == b.0 && a.1 && !b.1)
                }
            };
            let narrowed = match (o, n) {
                (None, Some(_)) => true,
                (Some(o), Some(n)) => tighter(n, o),
                _ => false,
            };
            let widened = match (o, n) {
                (Some(_), None) => true,
                (Some(o), Some(n)) => tighter(o, n),
                _ => false,
            };
            let show = |b: Option<(f64, bool)>| match b {
                None => "none".to_owned(),
                Some((v, true)) => format!("{v} (exclusive)"),
                Some((v, false)) => v.to_string(),
            };
            // Every enum value already fits the bound that matters: nothing changes on the wire.
            if (self.req() && narrowed && self.enum_within(kw, n))
                || (!self.req() && widened && self.enum_within(kw, o))
            {
                continue;
            }
            if self.req() && narrowed {
                let what = self.what();
                let msg = format!("`{what}` {kw} tightened from {} to {}", show(o), show(n));
                self.at_keyword(req_rule, kw_static(kw), msg);
            } else if !self.req() && widened {
                let what = self.what();
                let msg = format!("`{what}` {kw} loosened from {} to {}", show(o), show(n));
                self.at_keyword(resp_rule, kw_static(kw), msg);
            }
        }
    }

    fn pattern(&mut self) {
        // A pattern that matches every string constrains nothing: going to or from one is
        // going from or to no pattern.
        let o = self.old.pattern.filter(|p| !matches_everything(p));
        let n = self.new.pattern.filter(|p| !matches_everything(p));
        if o == n {
            return;
        }
        let what = self.what();
        // No pattern is the language of every string, like the empty pattern.
        let (old_lang, new_lang) = (o.unwrap_or(""), n.unwrap_or(""));
        if self.req() {
            // Old clients send what the old pattern accepted: harmless when the new one accepts
            // all of it.
            match crate::pattern::includes(new_lang, old_lang) {
                Some(true) => {}
                Some(false) if o.is_none() => {
                    let msg = format!("`{what}` must now match /{new_lang}/");
                    self.at_keyword("request-pattern-added", "pattern", msg);
                }
                Some(false) => {
                    let msg = format!(
                        "`{what}` pattern changed from /{old_lang}/ to /{new_lang}/, which refuses strings the old one accepted"
                    );
                    self.at_keyword("request-pattern-changed", "pattern", msg);
                }
                None => {
                    let msg = format!(
                        "`{what}` pattern changed from /{old_lang}/ to /{new_lang}/; whether the new one accepts everything the old one did cannot be decided here"
                    );
                    self.at_keyword("request-pattern-unproven", "pattern", msg);
                }
            }
        } else if o.is_some()
            // Clients saw only what the old pattern allowed: harmless when the new one is narrower.
            && crate::pattern::includes(old_lang, new_lang) != Some(true)
        {
            let msg = format!(
                "`{what}` pattern /{old_lang}/ was removed or changed to one that allows more"
            );
            self.at_keyword("response-pattern-changed", "pattern", msg);
        }
    }

    fn multiple_of(&mut self) {
        // b divides a when every multiple of a is a multiple of b.
        let divides = |a: f64, b: f64| b != 0.0 && ((a / b) - (a / b).round()).abs() < 1e-9;
        let (o, n) = (self.old.multiple_of, self.new.multiple_of);
        let broken = if self.req() {
            match (o, n) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(o), Some(n)) => !divides(o, n),
            }
        } else {
            match (o, n) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(o), Some(n)) => !divides(n, o),
            }
        };
        if broken {
            let show = |v: Option<f64>| v.map_or("none".to_owned(), |v| v.to_string());
            let msg = format!(
                "`{}` multipleOf changed from {} to {}",
                self.what(),
                show(o),
                show(n)
            );
            let rule = if self.req() {
                "request-multiple-of-changed"
            } else {
                "response-multiple-of-changed"
            };
            self.at_keyword(rule, "multipleOf", msg);
        }
    }

    fn unique_items(&mut self) {
        let (o, n) = (self.old.unique_items, self.new.unique_items);
        if self.req() && !o && n {
            let msg = format!("`{}` now rejects duplicate items", self.what());
            self.at_keyword("request-unique-items-added", "uniqueItems", msg);
        } else if !self.req() && o && !n {
            let msg = format!("`{}` may now contain duplicate items", self.what());
            self.at_keyword("response-unique-items-removed", "uniqueItems", msg);
        }
    }

    fn nullable(&mut self) {
        let (o, n) = (self.old.nullable, self.new.nullable);
        if self.req() && o && !n {
            let msg = format!("`{}` no longer accepts null", self.what());
            self.at_keyword("request-nullable-removed", "nullable", msg);
        } else if !self.req() && !o && n {
            let msg = format!("`{}` may now be null", self.what());
            self.at_keyword("response-nullable-added", "nullable", msg);
        }
    }

    fn properties(&mut self) {
        let names: BTreeSet<&str> = self
            .old
            .properties
            .keys()
            .chain(self.new.properties.keys())
            .copied()
            .collect();
        let req = self.req();
        // readOnly properties are never sent, writeOnly ones never returned: their
        // required-ness only binds the other direction.
        let flag = if req { "readOnly" } else { "writeOnly" };
        let (old_doc, new_doc) = (self.old_doc, self.new_doc);
        let hidden = |doc, at: &At| {
            at.resolve(doc)
                .is_some_and(|r| r.value.get(flag).and_then(Value::as_bool) == Some(true))
        };
        for name in names {
            let op = self.old.properties.get(name).cloned();
            let np = self.new.properties.get(name).cloned();
            let old_req = self.old.required.contains(name);
            let new_req = self.new.required.contains(name);
            let new_view: &SchemaView = self.new;
            let what = move || format!("{}.{name}", describe(&new_view.ptr));
            match (op, np) {
                (Some(o), Some(n)) => {
                    if req && !old_req && new_req && !hidden(new_doc, &n) {
                        self.add(
                            "request-property-became-required",
                            Some(o.ptr.clone()),
                            Some(n.ptr.clone()),
                            || format!("`{}` is now required in requests", what()),
                        );
                    }
                    if !req && old_req && !new_req && !hidden(old_doc, &o) {
                        self.add(
                            "response-property-became-optional",
                            Some(o.ptr.clone()),
                            Some(n.ptr.clone()),
                            || format!("`{}` may now be missing from responses", what()),
                        );
                    }
                    // A property never sent in this direction (readOnly in requests, writeOnly
                    // in responses) constrains nothing here, whatever its bounds or pattern.
                    if !(hidden(old_doc, &o) && hidden(new_doc, &n)) {
                        self.children.push((o, n));
                    }
                }
                (Some(o), None) if hidden(old_doc, &o) => {
                    // Never sent in this direction; the other one reports the removal.
                }
                (Some(o), None) => {
                    if req {
                        self.add(
                            "request-property-removed",
                            Some(o.ptr.clone()),
                            None,
                            || format!("`{}` was removed from the request", what()),
                        );
                        self.add("request-property-removed-client", Some(o.ptr), None, || {
                            format!("`{}` is gone from the generated request type", what())
                        });
                    } else if old_req {
                        self.add("response-property-removed", Some(o.ptr), None, || {
                            format!("`{}` was removed from the response", what())
                        });
                    } else {
                        self.add(
                            "response-optional-property-removed",
                            Some(o.ptr.clone()),
                            None,
                            || format!("optional `{}` was removed from the response", what()),
                        );
                        self.add(
                            "response-optional-property-removed-client",
                            Some(o.ptr),
                            None,
                            || format!("`{}` is gone from the generated response type", what()),
                        );
                    }
                }
                (None, Some(n)) => {
                    if req && new_req && !hidden(new_doc, &n) {
                        self.add("request-required-property-added", None, Some(n.ptr), || {
                            format!("new required request property `{}`", what())
                        });
                    } else if req {
                        self.add("request-optional-property-added", None, Some(n.ptr), || {
                            format!("new optional request property `{}`", what())
                        });
                    } else {
                        self.add("response-property-added", None, Some(n.ptr), || {
                            format!("new response property `{}`", what())
                        });
                    }
                }
                (None, None) => {}
            }
        }
    }

    fn additional(&mut self) {
        match (&self.old.additional, &self.new.additional) {
            (Additional::Schema(o), Additional::Schema(n)) => {
                self.children.push((o.clone(), n.clone()));
            }
            (o, Additional::Closed) if self.req() && *o != Additional::Closed => {
                let msg = format!("`{}` no longer accepts additional properties", self.what());
                self.at_keyword(
                    "request-additional-properties-closed",
                    "additionalProperties",
                    msg,
                );
            }
            (Additional::Open, Additional::Schema(_)) if self.req() => {
                let msg = format!(
                    "`{}` restricts additional properties to a schema",
                    self.what()
                );
                self.at_keyword(
                    "request-additional-properties-closed",
                    "additionalProperties",
                    msg,
                );
            }
            (Additional::Closed, n) if !self.req() && *n != Additional::Closed => {
                let msg = format!("`{}` may now carry additional properties", self.what());
                self.at_keyword(
                    "response-additional-properties-opened",
                    "additionalProperties",
                    msg,
                );
            }
            _ => {}
        }
    }

    /// oneOf/anyOf: variants are matched by component name, then by structure; a plain schema
    /// on one side counts as a single variant.
    fn variants(&mut self) {
        let old_list = self.old.variants.as_ref().map_or_else(
            || {
                vec![At {
                    ptr: self.old.ptr.clone(),
                    value: self.old.value,
                }]
            },
            |(_, v)| v.clone(),
        );
        let new_list = self.new.variants.as_ref().map_or_else(
            || {
                vec![At {
                    ptr: self.new.ptr.clone(),
                    value: self.new.value,
                }]
            },
            |(_, v)| v.clone(),
        );
        let old_keys: Vec<VariantKey> = old_list
            .iter()
            .map(|p| VariantKey::of(self.old_views, p))
            .collect();
        let new_keys: Vec<VariantKey> = new_list
            .iter()
            .map(|p| VariantKey::of(self.new_views, p))
            .collect();
        let mut new_taken = vec![false; new_list.len()];
        let mut old_match: Vec<Option<usize>> = vec![None; old_list.len()];
        // Pass 1: same component name; pass 2: same shape; pass 3: same type.
        for pass in 0..3 {
            for (i, ok) in old_keys.iter().enumerate() {
                if old_match[i].is_some() {
                    continue;
                }
                let hit = new_keys.iter().enumerate().position(|(j, nk)| {
                    !new_taken[j]
                        && match pass {
                            0 => ok.name.is_some() && ok.name == nk.name,
                            1 => ok.shape == nk.shape,
                            _ => ok.shape.0 == nk.shape.0,
                        }
                });
                if let Some(j) = hit {
                    new_taken[j] = true;
                    old_match[i] = Some(j);
                }
            }
        }
        for (i, m) in old_match.iter().enumerate() {
            if let Some(j) = m {
                self.children
                    .push((old_list[i].clone(), new_list[*j].clone()));
            }
        }
        let kw = |v: &SchemaView| v.variants.as_ref().map_or("oneOf", |(k, _)| k.keyword());
        let what = self.what();
        if self.req() {
            self.one_of_overlaps(&old_list, &new_list, &old_match, &new_taken, &new_keys);
            for (i, m) in old_match.iter().enumerate() {
                if m.is_none() {
                    let label = old_keys[i].label(&old_list[i].ptr);
                    self.add(
                        "request-variant-removed",
                        Some(old_list[i].ptr.clone()),
                        Some(self.new.ptr.clone()),
                        || format!("`{what}` no longer accepts the {label} shape"),
                    );
                }
            }
            if self.old.variants.is_none() {
                let k = kw(self.new);
                self.add(
                    "request-wrapped-in-one-of",
                    Some(self.old.ptr.clone()),
                    Some(self.new.keyword_ptr_or(k)),
                    || format!("`{what}` was wrapped in {k}; the generated request type changes"),
                );
            }
        } else if self.old.variants.is_none() {
            let k = kw(self.new);
            self.add(
                "response-wrapped-in-one-of",
                Some(self.old.ptr.clone()),
                Some(self.new.keyword_ptr_or(k)),
                || format!("`{what}` was wrapped in {k}; clients must now handle several shapes"),
            );
        } else {
            for (j, taken) in new_taken.iter().enumerate() {
                if !taken {
                    let label = new_keys[j].label(&new_list[j].ptr);
                    if self.open {
                        self.add(
                            "channel-frame-added",
                            Some(self.old.ptr.clone()),
                            Some(new_list[j].ptr.clone()),
                            || format!("`{what}` has a new frame type: the {label} shape"),
                        );
                        continue;
                    }
                    self.add(
                        "response-variant-added",
                        Some(self.old.ptr.clone()),
                        Some(new_list[j].ptr.clone()),
                        || format!("`{what}` may now return the {label} shape"),
                    );
                }
            }
        }
    }
}

impl<'d> PairCtx<'_, 'd> {
    /// A request `oneOf` rejects a value that matches two of its branches: for each old shape
    /// and its branch in the new `oneOf`, any *other* branch that is new to exclusivity (added, or
    /// all of them when the old schema was not a `oneOf`) and may match the same values breaks
    /// old clients at wire level.
    fn one_of_overlaps(
        &mut self,
        old_list: &[At<'d>],
        new_list: &[At<'d>],
        old_match: &[Option<usize>],
        new_taken: &[bool],
        new_keys: &[VariantKey],
    ) {
        if !matches!(&self.new.variants, Some((resolve::VariantKind::OneOf, _)))
            || new_list.len() < 2
        {
            return;
        }
        let was_one_of = matches!(&self.old.variants, Some((resolve::VariantKind::OneOf, _)));
        let (old_doc, new_doc) = (self.old_doc, self.new_doc);
        let what = self.what();
        for (i, m) in old_match.iter().enumerate() {
            let Some(j) = *m else { continue };
            let Some(old_at) = old_list[i].resolve(old_doc) else {
                continue;
            };
            let old_view = self.old_views.get(&old_at);
            for (k, branch) in new_list.iter().enumerate() {
                if k == j || (was_one_of && new_taken[k]) {
                    continue;
                }
                let Some(new_at) = branch.resolve(new_doc) else {
                    continue;
                };
                let new_view = self.new_views.get(&new_at);
                if may_overlap(old_doc, &old_view, new_doc, &new_view) {
                    let label = new_keys[k].label(&branch.ptr);
                    self.add(
                        "request-one-of-overlap",
                        Some(old_list[i].ptr.clone()),
                        Some(branch.ptr.clone()),
                        || {
                            format!(
                                "`{what}`: values the old schema accepted may also match the {label} branch, and a oneOf rejects a value matching two branches"
                            )
                        },
                    );
                    return;
                }
            }
        }
    }
}

/// Whether some value may match both `a` and `b`: `true` unless they are provably disjoint —
/// by type (integers are numbers; `nullable` on both lets `null` through), by enum, by a property
/// one requires and the other's closed `additionalProperties` forbids, or by a property one
/// requires whose enum or type the other's declaration of it excludes (a discriminator).
fn may_overlap(a_doc: &Document, a: &SchemaView, b_doc: &Document, b: &SchemaView) -> bool {
    let expand = |t: u8| {
        if t & resolve::NUMBER != 0 {
            t | resolve::INTEGER
        } else {
            t
        }
    };
    if let (Some(ta), Some(tb)) = (a.types, b.types)
        && expand(ta) & expand(tb) == 0
        && !(a.nullable && b.nullable)
    {
        return false;
    }
    if let (Some(ea), Some(eb)) = (a.enum_values, b.enum_values)
        && !ea.iter().any(|v| eb.contains(v))
    {
        return false;
    }
    let forbids = |s: &SchemaView, name: &str| {
        matches!(s.additional, Additional::Closed) && !s.properties.contains_key(name)
    };
    if a.required.iter().any(|p| forbids(b, p)) || b.required.iter().any(|p| forbids(a, p)) {
        return false;
    }
    let enum_of = |v: &Value| -> Option<Vec<Value>> {
        v.get("enum")
            .and_then(Value::as_array)
            .cloned()
            .or_else(|| v.get("const").map(|c| vec![c.clone()]))
    };
    let type_of = |v: &Value| v.get("type").and_then(Value::as_str).map(resolve::type_bit);
    for name in a.required.union(&b.required) {
        let (Some(pa), Some(pb)) = (a.properties.get(name), b.properties.get(name)) else {
            continue;
        };
        let (Some(ra), Some(rb)) = (pa.resolve(a_doc), pb.resolve(b_doc)) else {
            continue;
        };
        if let (Some(x), Some(y)) = (enum_of(ra.value), enum_of(rb.value))
            && !x.iter().any(|v| y.contains(v))
        {
            return false;
        }
        if let (Some(x), Some(y)) = (type_of(ra.value), type_of(rb.value))
            && expand(x) & expand(y) == 0
        {
            return false;
        }
    }
    true
}

impl SchemaView<'_> {
    /// Pointer of a composition keyword on this schema.
    fn keyword_ptr_or(&self, keyword: &str) -> String {
        format!("{}/{keyword}", self.ptr)
    }
}

/// Enough of a variant to match it across versions.
struct VariantKey {
    name: Option<String>,
    /// (types, sorted property names).
    shape: (Option<u8>, Vec<String>),
}

impl VariantKey {
    fn of<'d>(views: &mut ViewCache<'d>, raw: &At<'d>) -> Self {
        let name = raw.ref_name();
        let shape = match raw.resolve(views.doc) {
            Some(at) => {
                let v = views.get(&at);
                (
                    v.types,
                    v.properties.keys().map(|k| (*k).to_owned()).collect(),
                )
            }
            None => (None, Vec::new()),
        };
        VariantKey { name, shape }
    }

    fn label(&self, raw: &str) -> String {
        match &self.name {
            Some(n) => format!("`{n}`"),
            None => format!("inline ({})", describe(raw)),
        }
    }
}

/// Maps a keyword (from the bounds table) to the `'static` str used as an origin key.
fn kw_static(kw: &str) -> &'static str {
    resolve::NUMERIC_KEYWORDS
        .iter()
        .copied()
        .find(|k| *k == kw)
        .unwrap_or("")
}

/// Whether an (ECMA-262, unanchored) `pattern` matches every string: the empty pattern and the
/// usual spellings of "anything". Conservative: an unlisted pattern is treated as constraining.
fn matches_everything(pattern: &str) -> bool {
    matches!(
        pattern,
        "" | ".*"
            | "^.*"
            | ".*$"
            | "(.*)"
            | "[\\s\\S]*"
            | "^[\\s\\S]*$"
            | "[\\S\\s]*"
            | "^[\\S\\s]*$"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SchemaDiff<'_> {
        /// The obvious algorithm: a backwards walk from every node with findings.
        fn users_naive(&self) -> Vec<(usize, BTreeSet<u32>)> {
            let mut parents: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
            for (i, n) in self.nodes.iter().enumerate() {
                for &ch in &n.children {
                    parents[ch].push(i);
                }
            }
            let mut out = Vec::new();
            for (start, node) in self.nodes.iter().enumerate() {
                let mut users = BTreeSet::new();
                let mut seen = vec![false; self.nodes.len()];
                let mut stack = vec![start];
                seen[start] = true;
                while let Some(i) = stack.pop() {
                    users.extend(self.nodes[i].roots.iter().copied());
                    for &p in &parents[i] {
                        if !seen[p] {
                            seen[p] = true;
                            stack.push(p);
                        }
                    }
                }
                out.extend(node.findings.iter().map(|&f| (f, users.clone())));
            }
            out
        }
    }

    #[test]
    fn component_attribution_matches_the_naive_walk() {
        // Two recursive families (A<->B, C self-loop), a shared leaf D, several operations.
        let old = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}}\n  /c:\n    post:\n      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/C'}}}}\n      responses:\n        '200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/B'}}}}\n  /d:\n    get:\n      responses:\n        '200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/D'}}}}\ncomponents:\n  schemas:\n    A: {type: object, properties: {b: {$ref: '#/components/schemas/B'}, d: {$ref: '#/components/schemas/D'}, x: {type: string, maxLength: 5}}}\n    B: {type: object, properties: {a: {$ref: '#/components/schemas/A'}, y: {type: integer}}}\n    C: {type: object, properties: {c: {$ref: '#/components/schemas/C'}, d: {$ref: '#/components/schemas/D'}}}\n    D: {type: object, required: [z], properties: {z: {type: string, enum: [p, q]}}}\n";
        let new = old
            .replace("maxLength: 5", "maxLength: 9")
            .replace("y: {type: integer}", "y: {type: string}")
            .replace("enum: [p, q]", "enum: [p, q, r]")
            .replace("required: [z]", "required: []");
        let (Ok(o), Ok(n)) = (Document::from_str("o", old), Document::from_str("n", &new)) else {
            panic!("test documents must load");
        };
        let mut c = Collector::new();
        let mut sd = SchemaDiff::new(&o, &n);
        let today = String::from("2026-01-01");
        crate::operations::OperationDiff {
            old: &o,
            new: &n,
            c: &mut c,
            schemas: &mut sd,
            today: &today,
        }
        .run();
        let mut fast = sd.users_per_finding();
        let mut slow = sd.users_naive();
        fast.sort();
        slow.sort();
        assert!(!fast.is_empty());
        assert_eq!(fast, slow);
    }
}
