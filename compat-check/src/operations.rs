//! Paths, operations, parameters, bodies, responses, headers and security.
//!
//! Paths are matched with parameter names erased (`/users/{id}` ≡ `/users/{user_id}`), so a path
//! parameter rename is reported as such rather than as a removed and an added operation. Payload
//! schemas are handed to `SchemaDiff` as roots with their direction and the operation's label.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use openapi_doc::METHODS;
use openapi_doc::pointer::{escape, last_token, unescape};
use serde_json::Value;

use crate::finding::Collector;
use crate::load::Document;
use crate::resolve::resolve;
use crate::rules::Direction;
use crate::schema_diff::SchemaDiff;

/// Compares every operation of the two documents.
pub(crate) struct OperationDiff<'d, 'x> {
    pub old: &'d Document,
    pub new: &'d Document,
    pub c: &'x mut Collector,
    pub schemas: &'x mut SchemaDiff<'d>,
    /// `YYYY-MM-DD`, for `x-sunset`.
    pub today: &'x str,
}

/// An operation being compared: where it is in each document and how to name it.
struct Op {
    old: String,
    new: String,
    old_path_item: String,
    new_path_item: String,
    label: String,
}

/// `/users/{id}` → `/users/{}`.
fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for ch in path.chars() {
        match ch {
            '{' => {
                depth += 1;
                out.push('{');
            }
            '}' => {
                depth -= 1;
                out.push('}');
            }
            _ if depth > 0 => {}
            _ => out.push(ch),
        }
    }
    out
}

/// Names of the path template's parameters, in order.
fn template_params(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
        .collect()
}

fn paths_of(doc: &Document) -> BTreeMap<String, String> {
    doc.value
        .get("paths")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| (normalize_path(k), k.clone())).collect())
        .unwrap_or_default()
}

impl OperationDiff<'_, '_> {
    pub(crate) fn run(&mut self) {
        let old_paths = paths_of(self.old);
        let new_paths = paths_of(self.new);
        for (norm, old_raw) in &old_paths {
            let old_item = format!("/paths/{}", escape(old_raw));
            let new_raw = new_paths.get(norm);
            for method in METHODS {
                let old_op = format!("{old_item}/{method}");
                if self.old.get(&old_op).is_none() {
                    continue;
                }
                let label = format!("{} {}", method.to_uppercase(), new_raw.unwrap_or(old_raw));
                let new_item = new_raw.map(|r| format!("/paths/{}", escape(r)));
                let new_op = new_item.as_ref().map(|i| format!("{i}/{method}"));
                match (new_item, new_op) {
                    (Some(ni), Some(no)) if self.new.get(&no).is_some() => {
                        self.operation(&Op {
                            old: old_op,
                            new: no,
                            old_path_item: old_item.clone(),
                            new_path_item: ni,
                            label,
                        });
                    }
                    _ => self.removed(&old_op, &label),
                }
            }
        }
        for (norm, new_raw) in &new_paths {
            let new_item = format!("/paths/{}", escape(new_raw));
            for method in METHODS {
                let new_op = format!("{new_item}/{method}");
                if self.new.get(&new_op).is_none() {
                    continue;
                }
                let existed = old_paths.get(norm).is_some_and(|o| {
                    self.old
                        .get(&format!("/paths/{}/{method}", escape(o)))
                        .is_some()
                });
                if !existed {
                    let label = format!("{} {new_raw}", method.to_uppercase());
                    let f = self.c.add("operation-added", None, Some(&new_op), || {
                        format!("new operation {label}")
                    });
                    self.c.add_user(f, &label);
                }
            }
        }
    }

    fn removed(&mut self, old_op: &str, label: &str) {
        let op = self.old.get(old_op);
        let deprecated = op
            .and_then(|o| o.get("deprecated"))
            .and_then(Value::as_bool)
            == Some(true);
        let sunset = op
            .and_then(|o| o.get("x-sunset"))
            .and_then(Value::as_str)
            .map(|s| s.get(..10).unwrap_or(s));
        let past_sunset = sunset.is_some_and(|s| s <= self.today);
        let f = if deprecated && past_sunset {
            self.c
                .add("operation-removed-after-sunset", Some(old_op), None, || {
                    format!("deprecated operation {label} was removed after its sunset date")
                })
        } else {
            let why = match (deprecated, sunset) {
                (true, Some(s)) => format!(" before its sunset date {s}"),
                (true, None) => " (deprecated, but without an x-sunset date)".to_owned(),
                _ => " without being deprecated first".to_owned(),
            };
            self.c.add("operation-removed", Some(old_op), None, || {
                format!("operation {label} was removed{why}")
            })
        };
        self.c.add_user(f, label);
    }

    fn add(
        &mut self,
        op: &Op,
        rule: &'static str,
        old: Option<&str>,
        new: Option<&str>,
        msg: String,
    ) {
        let f = self.c.add(rule, old, new, || msg);
        self.c.add_user(f, &op.label);
    }

    fn operation(&mut self, op: &Op) {
        let label = op.label.clone();
        let old_v = self.old.get(&op.old).cloned().unwrap_or(Value::Null);
        let new_v = self.new.get(&op.new).cloned().unwrap_or(Value::Null);
        let old_id = old_v.get("operationId").and_then(Value::as_str);
        let new_id = new_v.get("operationId").and_then(Value::as_str);
        match (old_id, new_id) {
            (Some(o), Some(n)) if o != n => self.add(
                op,
                "operation-id-changed",
                Some(&format!("{}/operationId", op.old)),
                Some(&format!("{}/operationId", op.new)),
                format!("operationId of {label} changed from `{o}` to `{n}`"),
            ),
            (Some(o), None) => self.add(
                op,
                "operation-id-removed",
                Some(&format!("{}/operationId", op.old)),
                Some(&op.new),
                format!("operationId `{o}` of {label} was removed"),
            ),
            _ => {}
        }
        let dep = |v: &Value| v.get("deprecated").and_then(Value::as_bool) == Some(true);
        if !dep(&old_v) && dep(&new_v) {
            self.add(
                op,
                "operation-deprecated",
                Some(&op.old),
                Some(&format!("{}/deprecated", op.new)),
                format!("{label} is now deprecated"),
            );
        }
        self.security(op, &old_v, &new_v);
        self.policy(op, &old_v, &new_v);
        self.parameters(op);
        self.request_body(op);
        self.responses(op);
        self.frames(op, &old_v, &new_v);
    }

    /// A WebSocket channel's frames (`x-agora-frames`): what the client sends is graded like a
    /// request body, what the server sends like a response body.
    fn frames(&mut self, op: &Op, old_v: &Value, new_v: &Value) {
        let has = |v: &Value| v.get("x-agora-frames").is_some();
        let label = op.label.clone();
        if has(old_v) && !has(new_v) {
            self.add(
                op,
                "channel-frames-removed",
                Some(&format!("{}/x-agora-frames", op.old)),
                Some(&op.new),
                format!("{label} no longer declares its frames (x-agora-frames)"),
            );
            return;
        }
        for side in ["client", "server"] {
            let os = format!("{}/x-agora-frames/{side}", op.old);
            let ns = format!("{}/x-agora-frames/{side}", op.new);
            if self.old.get(&os).is_none() || self.new.get(&ns).is_none() {
                continue;
            }
            if side == "client" {
                self.schemas
                    .root(self.c, &os, &ns, Direction::Request, &op.label);
            } else {
                // Server frames are an open union: clients skip frame types they do not know.
                self.schemas.root_open_union(self.c, &os, &ns, &op.label);
            }
        }
    }

    fn security(&mut self, op: &Op, old_v: &Value, new_v: &Value) {
        // Effective requirements: the operation's own, else the document's.
        let effective = |doc: &Document, v: &Value| -> (BTreeSet<BTreeSet<String>>, String, bool) {
            let (list, at, own) = match v.get("security") {
                Some(s) => (s, "security", true),
                None => match doc.value.get("security") {
                    Some(s) => (s, "/security", false),
                    None => return (BTreeSet::new(), String::new(), false),
                },
            };
            let reqs = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| {
                            r.as_object()
                                .map(|m| m.keys().cloned().collect())
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            (reqs, at.to_owned(), own)
        };
        let (o, _, _) = effective(self.old, old_v);
        let (n, at, own) = effective(self.new, new_v);
        // Public = no requirement, or one requirement that is empty (`{}` = anonymous allowed).
        let public =
            |s: &BTreeSet<BTreeSet<String>>| s.is_empty() || s.iter().any(BTreeSet::is_empty);
        let new_ptr = if own {
            format!("{}/{at}", op.new)
        } else if at.is_empty() {
            op.new.clone()
        } else {
            at
        };
        let label = op.label.clone();
        if public(&o) && !public(&n) {
            self.add(
                op,
                "operation-security-added",
                Some(&op.old),
                Some(&new_ptr),
                format!("{label} now requires authentication; it was public"),
            );
        } else if !public(&o) && !o.iter().all(|r| n.contains(r)) {
            self.add(
                op,
                "operation-security-changed",
                Some(&op.old),
                Some(&new_ptr),
                format!("{label} no longer accepts some of its previous security schemes"),
            );
        }
    }

    /// The policy extensions Agora's generator enforces. Tightening who may call (a role, a
    /// feature gate) breaks callers that worked; a rate-limit budget only adds the 429 every
    /// operation may already answer, so it warns; loosening is recorded as info.
    fn policy(&mut self, op: &Op, old_v: &Value, new_v: &Value) {
        const POLICIES: [(&str, &str, &str, &str, &str); 3] = [
            (
                "x-agora-role",
                "operation-role-added",
                "operation-role-changed",
                "operation-role-removed",
                "role",
            ),
            (
                "x-agora-feature",
                "operation-feature-gate-added",
                "operation-feature-gate-changed",
                "operation-feature-gate-removed",
                "feature gate",
            ),
            (
                "x-agora-rate-limit",
                "operation-rate-limit-added",
                "operation-rate-limit-changed",
                "operation-rate-limit-removed",
                "rate-limit class",
            ),
        ];
        let label = op.label.clone();
        for (key, added, changed, removed, what) in POLICIES {
            let text = |v: &Value| {
                v.get(key)
                    .map(|x| x.as_str().map_or(x.to_string(), str::to_owned))
            };
            let old_ptr = format!("{}/{}", op.old, escape(key));
            let new_ptr = format!("{}/{}", op.new, escape(key));
            match (text(old_v), text(new_v)) {
                (None, Some(n)) => self.add(
                    op,
                    added,
                    Some(&op.old),
                    Some(&new_ptr),
                    format!("{label} now has {what} `{n}` ({key})"),
                ),
                (Some(o), Some(n)) if o != n => self.add(
                    op,
                    changed,
                    Some(&old_ptr),
                    Some(&new_ptr),
                    format!("{what} of {label} changed from `{o}` to `{n}` ({key})"),
                ),
                (Some(o), None) => self.add(
                    op,
                    removed,
                    Some(&old_ptr),
                    Some(&op.new),
                    format!("{label} no longer has {what} `{o}` ({key})"),
                ),
                _ => {}
            }
        }
    }

    /// Path-item parameters overridden by operation parameters, keyed by (in, name).
    fn params(doc: &Document, path_item: &str, op: &str) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        for base in [path_item, op] {
            let n = doc
                .get(&format!("{base}/parameters"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..n {
                let raw = format!("{base}/parameters/{i}");
                let Some((ptr, v)) = resolve(doc, &raw) else {
                    continue;
                };
                let (Some(name), Some(loc)) = (
                    v.get("name").and_then(Value::as_str),
                    v.get("in").and_then(Value::as_str),
                ) else {
                    continue;
                };
                out.insert((loc.to_owned(), name.to_owned()), ptr);
            }
        }
        out
    }

    fn parameters(&mut self, op: &Op) {
        let old_params = Self::params(self.old, &op.old_path_item, &op.old);
        let mut new_params = Self::params(self.new, &op.new_path_item, &op.new);
        // Path parameters are matched by position in the template: the name is only a label.
        let old_tpl = op_path(&op.old_path_item);
        let new_tpl = op_path(&op.new_path_item);
        let old_names = template_params(&old_tpl);
        let new_names = template_params(&new_tpl);
        let mut path_renames: BTreeMap<String, String> = BTreeMap::new();
        for (o, n) in old_names.iter().zip(&new_names) {
            if o != n {
                path_renames.insert((*o).to_owned(), (*n).to_owned());
            }
        }
        let label = op.label.clone();
        let mut removed: Vec<(String, String, String)> = Vec::new();
        for ((loc, name), old_ptr) in &old_params {
            let new_name = if loc == "path" {
                path_renames.get(name).unwrap_or(name).clone()
            } else {
                name.clone()
            };
            let Some(new_ptr) = new_params.remove(&(loc.clone(), new_name.clone())) else {
                self.add(
                    op,
                    "request-parameter-removed",
                    Some(old_ptr),
                    None,
                    format!("{loc} parameter `{name}` of {label} was removed"),
                );
                removed.push((loc.clone(), name.clone(), old_ptr.clone()));
                continue;
            };
            if &new_name != name {
                self.add(
                    op,
                    "request-parameter-renamed",
                    Some(&format!("{old_ptr}/name")),
                    Some(&format!("{new_ptr}/name")),
                    format!("path parameter `{name}` of {label} was renamed to `{new_name}`"),
                );
            }
            self.parameter_pair(op, loc, name, old_ptr, &new_ptr);
        }
        let renamed = self.renamed_parameters(op, &removed, &new_params);
        for (loc, name, old_ptr) in &removed {
            if !renamed.contains(&(loc.clone(), name.clone())) {
                self.add(
                    op,
                    "request-parameter-removed-client",
                    Some(old_ptr),
                    None,
                    format!(
                        "{loc} parameter `{name}` of {label} is gone from the generated client"
                    ),
                );
            }
        }
        for ((loc, name), new_ptr) in new_params {
            let required = self
                .new
                .get(&new_ptr)
                .and_then(|v| v.get("required"))
                .and_then(Value::as_bool)
                == Some(true);
            if required {
                self.add(
                    op,
                    "request-parameter-added-required",
                    None,
                    Some(&new_ptr),
                    format!("{label} now requires {loc} parameter `{name}`"),
                );
            } else {
                self.add(
                    op,
                    "request-parameter-added-optional",
                    None,
                    Some(&new_ptr),
                    format!("{label} accepts a new optional {loc} parameter `{name}`"),
                );
            }
        }
    }

    /// One query/header/cookie parameter gone and one with the same schema added in the same
    /// place reads as a rename: on the wire that is the removal and addition already reported,
    /// but a generated client's argument changes name too.
    /// Answers the (location, name) of the removed parameters read as renamed.
    fn renamed_parameters(
        &mut self,
        op: &Op,
        removed: &[(String, String, String)],
        added: &BTreeMap<(String, String), String>,
    ) -> BTreeSet<(String, String)> {
        let mut renamed = BTreeSet::new();
        let schema = |doc: &Document, p: &str| doc.get(&format!("{p}/schema")).cloned();
        for (loc, name, old_ptr) in removed {
            let mut same_place = added.iter().filter(|((l, _), _)| l == loc);
            let (Some(((_, new_name), new_ptr)), None) = (same_place.next(), same_place.next())
            else {
                continue;
            };
            if removed.iter().filter(|(l, ..)| l == loc).count() != 1
                || schema(self.old, old_ptr) != schema(self.new, new_ptr)
            {
                continue;
            }
            let label = op.label.clone();
            self.add(
                op,
                "request-parameter-renamed",
                Some(&format!("{old_ptr}/name")),
                Some(&format!("{new_ptr}/name")),
                format!("{loc} parameter `{name}` of {label} was renamed to `{new_name}`"),
            );
            renamed.insert((loc.clone(), name.clone()));
        }
        renamed
    }

    fn parameter_pair(&mut self, op: &Op, loc: &str, name: &str, old_ptr: &str, new_ptr: &str) {
        let (Some(ov), Some(nv)) = (self.old.get(old_ptr), self.new.get(new_ptr)) else {
            return;
        };
        let required = |v: &Value| v.get("required").and_then(Value::as_bool) == Some(true);
        let label = op.label.clone();
        if !required(ov) && required(nv) {
            self.add(
                op,
                "request-parameter-became-required",
                Some(old_ptr),
                Some(&format!("{new_ptr}/required")),
                format!("{loc} parameter `{name}` of {label} is now required"),
            );
        }
        // Defaults from the OpenAPI spec, so an explicit default is not a change.
        let style = |v: &Value| -> (String, bool) {
            let default_style = match loc {
                "query" | "cookie" => "form",
                _ => "simple",
            };
            let s = v
                .get("style")
                .and_then(Value::as_str)
                .unwrap_or(default_style)
                .to_owned();
            let explode = v
                .get("explode")
                .and_then(Value::as_bool)
                .unwrap_or(s == "form");
            (s, explode)
        };
        let (os, ns) = (style(ov), style(nv));
        if os != ns {
            self.add(
                op,
                "request-parameter-style-changed",
                Some(old_ptr),
                Some(new_ptr),
                format!(
                    "{loc} parameter `{name}` of {label} is serialized differently now (style {} explode {} → style {} explode {})",
                    os.0, os.1, ns.0, ns.1
                ),
            );
        }
        let schema_of = |doc: &Document, p: &str| -> Option<String> {
            let v = doc.get(p)?;
            if v.get("schema").is_some() {
                return Some(format!("{p}/schema"));
            }
            let content = v.get("content")?.as_object()?;
            let mt = content.keys().next()?;
            Some(format!("{p}/content/{}/schema", escape(mt)))
        };
        let (os, ns) = (schema_of(self.old, old_ptr), schema_of(self.new, new_ptr));
        if !required(nv) {
            self.parameter_default(op, loc, name, os.as_deref(), ns.as_deref());
        }
        if let (Some(os), Some(ns)) = (os, ns)
            && self.old.get(&os).is_some()
            && self.new.get(&ns).is_some()
        {
            self.schemas
                .root(self.c, &os, &ns, Direction::Request, &op.label);
        }
    }

    /// A client that omits an optional parameter gets the default: moving it changes what the
    /// server does for every such client. Adding one where there was none only writes down what
    /// the server did anyway.
    fn parameter_default(
        &mut self,
        op: &Op,
        loc: &str,
        name: &str,
        old_schema: Option<&str>,
        new_schema: Option<&str>,
    ) {
        let default = |doc: &Document, p: Option<&str>| -> Option<(String, Value)> {
            let p = p?;
            let (at, schema) = resolve(doc, p)?;
            let value = schema.get("default")?.clone();
            Some((format!("{at}/default"), value))
        };
        let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        };
        let label = op.label.clone();
        match (
            default(self.old, old_schema),
            default(self.new, new_schema),
        ) {
            (Some((op_ptr, ov)), Some((np, nv))) if !same(&ov, &nv) => self.add(
                op,
                "request-parameter-default-changed",
                Some(&op_ptr),
                Some(&np),
                format!(
                    "{loc} parameter `{name}` of {label} now defaults to {nv} (was {ov}) for clients that omit it"
                ),
            ),
            (Some((op_ptr, ov)), None) => self.add(
                op,
                "request-parameter-default-changed",
                Some(&op_ptr),
                new_schema,
                format!(
                    "{loc} parameter `{name}` of {label} no longer defaults to {ov} for clients that omit it"
                ),
            ),
            _ => {}
        }
    }

    fn request_body(&mut self, op: &Op) {
        let ob = resolve(self.old, &format!("{}/requestBody", op.old));
        let nb = resolve(self.new, &format!("{}/requestBody", op.new));
        let required = |v: &Value| v.get("required").and_then(Value::as_bool) == Some(true);
        let label = op.label.clone();
        match (ob, nb) {
            (None, Some((np, nv))) => {
                let (rule, what) = if required(nv) {
                    ("request-body-added-required", "a required")
                } else {
                    ("request-body-added-optional", "an optional")
                };
                self.add(
                    op,
                    rule,
                    None,
                    Some(&np),
                    format!("{label} now takes {what} request body"),
                );
            }
            (Some((opt, ov)), None) => {
                // Decided: a warning at wire level even for a required body. Old clients keep
                // sending it and the server ignores a body it does not declare (Dropshot does),
                // as it ignores a removed parameter or property.
                let what = if required(ov) { "its required" } else { "its" };
                self.add(
                    op,
                    "request-body-removed",
                    Some(&opt),
                    None,
                    format!("{label} no longer takes {what} request body"),
                );
                self.add(
                    op,
                    "request-body-removed-client",
                    Some(&opt),
                    None,
                    format!("the generated client of {label} no longer takes a body"),
                );
            }
            (Some((opt, ov)), Some((np, nv))) => {
                if !required(ov) && required(nv) {
                    self.add(
                        op,
                        "request-body-became-required",
                        Some(&opt),
                        Some(&format!("{np}/required")),
                        format!("the request body of {label} is now required"),
                    );
                }
                self.content(op, &opt, &np, Direction::Request);
            }
            (None, None) => {}
        }
    }

    /// Media types of a body: removed ones break; shared ones compare their schemas.
    fn content(&mut self, op: &Op, old_ptr: &str, new_ptr: &str, dir: Direction) {
        let types = |doc: &Document, p: &str| -> BTreeMap<String, String> {
            doc.get(&format!("{p}/content"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .map(|k| (k.to_ascii_lowercase(), format!("{p}/content/{}", escape(k))))
                        .collect()
                })
                .unwrap_or_default()
        };
        let ot = types(self.old, old_ptr);
        let nt = types(self.new, new_ptr);
        let label = op.label.clone();
        for (mt, op_ptr) in &ot {
            match nt.get(mt) {
                None => {
                    let (rule, side) = match dir {
                        Direction::Request => ("request-media-type-removed", "request"),
                        _ => ("response-media-type-removed", "response"),
                    };
                    let where_ = if dir == Direction::Response {
                        format!(" ({} response)", status_of(old_ptr))
                    } else {
                        String::new()
                    };
                    self.add(
                        op,
                        rule,
                        Some(op_ptr),
                        Some(new_ptr),
                        format!("{label} no longer has a `{mt}` {side} body{where_}"),
                    );
                }
                Some(np) => {
                    let os = format!("{op_ptr}/schema");
                    let ns = format!("{np}/schema");
                    let accepts_anything = |doc: &Document, p: &str| {
                        doc.get(p)
                            .is_none_or(|v| v.as_object().is_some_and(|m| m.is_empty()))
                    };
                    if self.old.get(&os).is_some() && self.new.get(&ns).is_some() {
                        self.schemas.root(self.c, &os, &ns, dir, &op.label);
                    } else if dir == Direction::Request
                        && accepts_anything(self.old, &os)
                        && !accepts_anything(self.new, &ns)
                    {
                        self.add(
                            op,
                            "request-body-schema-added",
                            Some(op_ptr),
                            Some(&ns),
                            format!("the `{mt}` request body of {label} accepted anything and now has a schema"),
                        );
                    }
                }
            }
        }
    }

    fn responses(&mut self, op: &Op) {
        let statuses = |doc: &Document, p: &str| -> BTreeMap<String, String> {
            doc.get(&format!("{p}/responses"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .map(|k| {
                            (
                                k.to_ascii_uppercase(),
                                format!("{p}/responses/{}", escape(k)),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let os = statuses(self.old, &op.old);
        let ns = statuses(self.new, &op.new);
        let label = op.label.clone();
        for (status, old_ptr) in &os {
            let Some(new_ptr) = ns.get(status) else {
                let (rule, kind) = if status.starts_with('2') {
                    ("response-success-status-removed", "success ")
                } else {
                    ("response-status-removed", "")
                };
                self.add(
                    op,
                    rule,
                    Some(old_ptr),
                    Some(&format!("{}/responses", op.new)),
                    format!("{label} no longer returns {kind}status {status}"),
                );
                continue;
            };
            let (Some((ro, _)), Some((rn, _))) =
                (resolve(self.old, old_ptr), resolve(self.new, new_ptr))
            else {
                continue;
            };
            self.content(op, &ro, &rn, Direction::Response);
            self.headers(op, status, &ro, &rn);
        }
        for (status, new_ptr) in &ns {
            if !os.contains_key(status) {
                self.add(
                    op,
                    "response-status-added",
                    None,
                    Some(new_ptr),
                    format!("{label} may now return status {status}"),
                );
            }
        }
    }

    fn headers(&mut self, op: &Op, status: &str, old_ptr: &str, new_ptr: &str) {
        let headers = |doc: &Document, p: &str| -> BTreeMap<String, String> {
            doc.get(&format!("{p}/headers"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .map(|k| (k.to_ascii_lowercase(), format!("{p}/headers/{}", escape(k))))
                        .collect()
                })
                .unwrap_or_default()
        };
        let required = |doc: &Document, p: &str| {
            resolve(doc, p)
                .is_some_and(|(_, v)| v.get("required").and_then(Value::as_bool) == Some(true))
        };
        let oh = headers(self.old, old_ptr);
        let nh = headers(self.new, new_ptr);
        let label = op.label.clone();
        for (key, ohp) in &oh {
            // Matching ignores case (HTTP header names do); messages keep the spelling.
            let name = last_token(ohp).map_or_else(|| key.clone(), Cow::into_owned);
            let old_required = required(self.old, ohp);
            match nh.get(key) {
                None => {
                    let rule = if old_required {
                        "response-required-header-removed"
                    } else {
                        "response-header-removed"
                    };
                    self.add(
                        op,
                        rule,
                        Some(ohp),
                        Some(new_ptr),
                        format!("{label} {status} response no longer sends header `{name}`"),
                    );
                }
                Some(nhp) => {
                    if old_required && !required(self.new, nhp) {
                        self.add(
                            op,
                            "response-header-became-optional",
                            Some(ohp),
                            Some(nhp),
                            format!("header `{name}` of the {label} {status} response may now be missing"),
                        );
                    }
                    let (Some((ro, _)), Some((rn, _))) =
                        (resolve(self.old, ohp), resolve(self.new, nhp))
                    else {
                        continue;
                    };
                    let os = format!("{ro}/schema");
                    let ns = format!("{rn}/schema");
                    if self.old.get(&os).is_some() && self.new.get(&ns).is_some() {
                        self.schemas
                            .root(self.c, &os, &ns, Direction::Response, &op.label);
                    }
                }
            }
        }
    }
}

/// The raw path of a path-item pointer (`/paths/~1users~1{id}` → `/users/{id}`).
fn op_path(path_item: &str) -> String {
    unescape(path_item.strip_prefix("/paths/").unwrap_or(path_item)).into_owned()
}

/// The status token of a response pointer, for messages.
fn status_of(ptr: &str) -> String {
    ptr.rsplit_once("/responses/")
        .map(|(_, s)| s.split('/').next().unwrap_or(s).to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_templates() {
        assert_eq!(
            normalize_path("/users/{id}/posts/{post_id}"),
            "/users/{}/posts/{}"
        );
        assert_eq!(
            template_params("/users/{id}/posts/{post_id}"),
            ["id", "post_id"]
        );
    }
}
