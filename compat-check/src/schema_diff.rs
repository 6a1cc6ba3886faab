//! Direction-aware schema comparison over a memoized graph of schema pairs.
//!
//! A request schema may only widen (the server must accept all it accepted); a response schema
//! may only narrow (clients must understand all it produces). Each (old pointer, new pointer,
//! direction) pair is compared once: the pair's own findings are recorded on a node, child pairs
//! (properties, items, variants) become edges, and cycles simply revisit an existing node. The
//! work list is explicit rather than recursive so deeply nested or chained schemas cannot
//! overflow the stack. Who uses a finding is worked out at the end by walking the graph backwards
//! from the nodes that carry findings to the roots that operations registered.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::finding::Collector;
use crate::load::Document;
use crate::resolve::{self, Additional, SchemaView, describe};
use crate::rules::Direction;

type PairKey = (String, String, Direction);

struct Node {
    old: String,
    new: String,
    dir: Direction,
    findings: Vec<usize>,
    children: Vec<usize>,
    /// Operations that compared this pair directly (parameter, body, response, header schema).
    roots: BTreeSet<String>,
}

/// The comparison graph for one pair of documents.
pub(crate) struct SchemaDiff<'d> {
    old: &'d Document,
    new: &'d Document,
    pairs: HashMap<PairKey, usize>,
    nodes: Vec<Node>,
    queue: Vec<usize>,
    /// Components of OLD that were inlined somewhere (their removal is not reported again).
    pub(crate) inlined: BTreeSet<String>,
}

/// The component a raw schema pointer names: its `$ref` target, or itself.
fn named(doc: &Document, raw: &str) -> Option<String> {
    resolve::ref_name(doc, raw).or_else(|| resolve::component_name(raw).map(str::to_owned))
}

impl<'d> SchemaDiff<'d> {
    pub(crate) fn new(old: &'d Document, new: &'d Document) -> Self {
        SchemaDiff {
            old,
            new,
            pairs: HashMap::new(),
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
        if let Some(id) = self.edge(c, old_ptr, new_ptr, dir) {
            self.nodes[id].roots.insert(user.to_owned());
        }
        self.drain(c);
    }

    /// Attributes users to every schema finding; call once after all roots were registered.
    pub(crate) fn attribute_users(&self, c: &mut Collector) {
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &ch in &n.children {
                parents[ch].push(i);
            }
        }
        for (start, node) in self.nodes.iter().enumerate() {
            if node.findings.is_empty() {
                continue;
            }
            let mut users = BTreeSet::new();
            let mut seen = vec![false; self.nodes.len()];
            let mut stack = vec![start];
            seen[start] = true;
            while let Some(i) = stack.pop() {
                users.extend(self.nodes[i].roots.iter().cloned());
                for &p in &parents[i] {
                    if !seen[p] {
                        seen[p] = true;
                        stack.push(p);
                    }
                }
            }
            for &f in &node.findings {
                for u in &users {
                    c.add_user(f, u);
                }
            }
        }
    }

    /// Resolves both sides, notes inline↔named switches, and returns the (possibly new) node id.
    fn edge(
        &mut self,
        c: &mut Collector,
        old_raw: &str,
        new_raw: &str,
        dir: Direction,
    ) -> Option<usize> {
        let (old_ptr, _) = resolve::resolve(self.old, old_raw)?;
        let (new_ptr, _) = resolve::resolve(self.new, new_raw)?;
        let key = (old_ptr, new_ptr, dir);
        let id = match self.pairs.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.nodes.len();
                self.nodes.push(Node {
                    old: key.0.clone(),
                    new: key.1.clone(),
                    dir,
                    findings: Vec::new(),
                    children: Vec::new(),
                    roots: BTreeSet::new(),
                });
                self.pairs.insert(key, id);
                self.queue.push(id);
                id
            }
        };
        // Generated clients name types after components: moving between inline and named changes
        // the type a caller wrote against, even though the wire format is the same.
        let old_name = named(self.old, old_raw);
        let new_name = named(self.new, new_raw);
        // An inline oneOf/anyOf around the named schema is reported as wrapping, not inlining.
        let composed = |doc: &Document, raw: &str| {
            doc.get(raw)
                .is_some_and(|v| v.get("oneOf").is_some() || v.get("anyOf").is_some())
        };
        if composed(self.old, old_raw) || composed(self.new, new_raw) {
            return Some(id);
        }
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
            let (old, new, dir) = {
                let n = &self.nodes[id];
                (n.old.clone(), n.new.clone(), n.dir)
            };
            let ov = SchemaView::build(self.old, &old);
            let nv = SchemaView::build(self.new, &new);
            let mut ctx = PairCtx {
                c,
                old: &ov,
                new: &nv,
                dir,
                findings: Vec::new(),
                children: Vec::new(),
                new_doc: self.new,
                old_doc: self.old,
            };
            ctx.compare();
            let PairCtx {
                findings, children, ..
            } = ctx;
            let mut child_ids = Vec::with_capacity(children.len());
            for (o, n) in children {
                if let Some(ch) = self.edge(c, &o, &n, dir) {
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
    old: &'x SchemaView<'a>,
    new: &'x SchemaView<'a>,
    dir: Direction,
    findings: Vec<usize>,
    children: Vec<(String, String)>,
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
        let covers = |set: &BTreeSet<&str>, t: &str| {
            set.contains(t) || (t == "integer" && set.contains("number"))
        };
        let fmt = |s: &Option<BTreeSet<&str>>| match s {
            None => "any type".to_owned(),
            Some(s) => s.iter().copied().collect::<Vec<_>>().join("|"),
        };
        let (wider, narrower) = if self.req() {
            (&self.new.types, &self.old.types)
        } else {
            (&self.old.types, &self.new.types)
        };
        let broken = match (wider, narrower) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(w), Some(n)) => n.iter().any(|t| !covers(w, t)),
        };
        if !broken {
            return false;
        }
        let (o, n) = (fmt(&self.old.types), fmt(&self.new.types));
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
            let o = self.old.numbers.get(kw).map(|&n| (n, excl(self.old)));
            let n = self.new.numbers.get(kw).map(|&n| (n, excl(self.new)));
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
            let what = self.what();
            if self.req() && narrowed {
                let msg = format!("`{what}` {kw} tightened from {} to {}", show(o), show(n));
                self.at_keyword(req_rule, kw_static(kw), msg);
            } else if !self.req() && widened {
                let msg = format!("`{what}` {kw} loosened from {} to {}", show(o), show(n));
                self.at_keyword(resp_rule, kw_static(kw), msg);
            }
        }
    }

    fn pattern(&mut self) {
        let (o, n) = (self.old.pattern, self.new.pattern);
        let what = self.what();
        match (o, n, self.req()) {
            (None, Some(p), true) => {
                let msg = format!("`{what}` must now match /{p}/");
                self.at_keyword("request-pattern-added", "pattern", msg);
            }
            (Some(a), Some(b), true) if a != b => {
                let msg = format!("`{what}` pattern changed from /{a}/ to /{b}/");
                self.at_keyword("request-pattern-changed", "pattern", msg);
            }
            (Some(a), b, false) if Some(a) != b => {
                let msg = format!("`{what}` pattern /{a}/ was removed or changed");
                self.at_keyword("response-pattern-changed", "pattern", msg);
            }
            _ => {}
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
        for name in names {
            let op = self.old.properties.get(name).cloned();
            let np = self.new.properties.get(name).cloned();
            let old_req = self.old.required.contains(name);
            let new_req = self.new.required.contains(name);
            // readOnly properties are never sent, writeOnly ones never returned: their
            // required-ness only binds the other direction.
            let hidden = |doc: &Document, p: &Option<String>| {
                p.as_deref().is_some_and(|p| {
                    resolve::resolve(doc, p).is_some_and(|(_, v)| {
                        let flag = if req { "readOnly" } else { "writeOnly" };
                        v.get(flag).and_then(Value::as_bool) == Some(true)
                    })
                })
            };
            let what = format!("{}.{name}", self.what());
            match (op, np) {
                (Some(o), Some(n)) => {
                    if req && !old_req && new_req && !hidden(self.new_doc, &Some(n.clone())) {
                        self.add(
                            "request-property-became-required",
                            Some(o.clone()),
                            Some(n.clone()),
                            || format!("`{what}` is now required in requests"),
                        );
                    }
                    if !req && old_req && !new_req && !hidden(self.old_doc, &Some(o.clone())) {
                        self.add(
                            "response-property-became-optional",
                            Some(o.clone()),
                            Some(n.clone()),
                            || format!("`{what}` may now be missing from responses"),
                        );
                    }
                    self.children.push((o, n));
                }
                (Some(o), None) => {
                    if req {
                        self.add("request-property-removed", Some(o), None, || {
                            format!("`{what}` was removed from the request")
                        });
                    } else if old_req && !hidden(self.old_doc, &Some(o.clone())) {
                        self.add("response-property-removed", Some(o), None, || {
                            format!("`{what}` was removed from the response")
                        });
                    } else {
                        self.add("response-optional-property-removed", Some(o), None, || {
                            format!("optional `{what}` was removed from the response")
                        });
                    }
                }
                (None, Some(n)) => {
                    if req && new_req && !hidden(self.new_doc, &Some(n.clone())) {
                        self.add("request-required-property-added", None, Some(n), || {
                            format!("new required request property `{what}`")
                        });
                    } else if req {
                        self.add("request-optional-property-added", None, Some(n), || {
                            format!("new optional request property `{what}`")
                        });
                    } else {
                        self.add("response-property-added", None, Some(n), || {
                            format!("new response property `{what}`")
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
        let old_list = self
            .old
            .variants
            .as_ref()
            .map_or_else(|| vec![self.old.ptr.clone()], |(_, v)| v.clone());
        let new_list = self
            .new
            .variants
            .as_ref()
            .map_or_else(|| vec![self.new.ptr.clone()], |(_, v)| v.clone());
        let old_keys: Vec<VariantKey> = old_list
            .iter()
            .map(|p| VariantKey::of(self.old_doc, p))
            .collect();
        let new_keys: Vec<VariantKey> = new_list
            .iter()
            .map(|p| VariantKey::of(self.new_doc, p))
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
            for (i, m) in old_match.iter().enumerate() {
                if m.is_none() {
                    let label = old_keys[i].label(&old_list[i]);
                    self.add(
                        "request-variant-removed",
                        Some(old_list[i].clone()),
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
                    let label = new_keys[j].label(&new_list[j]);
                    self.add(
                        "response-variant-added",
                        Some(self.old.ptr.clone()),
                        Some(new_list[j].clone()),
                        || format!("`{what}` may now return the {label} shape"),
                    );
                }
            }
        }
    }
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
    shape: (Option<Vec<String>>, Vec<String>),
}

impl VariantKey {
    fn of(doc: &Document, raw: &str) -> Self {
        let name = resolve::ref_name(doc, raw);
        let shape = match resolve::resolve(doc, raw) {
            Some((ptr, _)) => {
                let v = SchemaView::build(doc, &ptr);
                (
                    v.types.map(|t| t.into_iter().map(str::to_owned).collect()),
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
