//! `$ref` resolution and the merged view of a schema (its own keywords plus its `allOf` members).
//!
//! The comparison never looks at a raw schema object: it looks at a `SchemaView`, in which `$ref`
//! chains are followed and `allOf` members are folded in, so a property moved from a schema into an
//! `allOf` base (or the reverse) is not a change. Every keyword remembers which object it came
//! from, so findings still point at the line that defines it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use openapi_doc::pointer::{escape, tokens, unescape};
use serde_json::Value;

use crate::load::Document;

/// `allOf` nesting deeper than this stops merging; real documents stay far below it.
const MAX_ALLOF_DEPTH: usize = 32;

/// Prefix of named component schemas.
pub(crate) const SCHEMAS_PREFIX: &str = "/components/schemas/";

/// Follows `$ref`s from `ptr`; returns the pointer of the object finally reached and its value.
/// A ref cycle or a missing target yields `None` (the loader rejects dangling refs up front).
pub(crate) fn resolve<'a>(doc: &'a Document, ptr: &str) -> Option<(String, &'a Value)> {
    openapi_doc::reference::resolve(&doc.value, ptr)
}

/// A schema location: its pointer and the value found there (so following it needs no lookup).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct At<'a> {
    pub ptr: String,
    pub value: &'a Value,
}

impl<'a> At<'a> {
    /// The value at `ptr` in `doc`.
    pub(crate) fn lookup(doc: &'a Document, ptr: &str) -> Option<Self> {
        doc.get(ptr).map(|value| At {
            ptr: ptr.to_owned(),
            value,
        })
    }

    /// Follows `$ref`s; an object without `$ref` resolves to itself without any lookup.
    pub(crate) fn resolve(&self, doc: &'a Document) -> Option<Self> {
        match self.value.get("$ref") {
            None => Some(self.clone()),
            Some(_) => resolve(doc, &self.ptr).map(|(ptr, value)| At { ptr, value }),
        }
    }

    /// The component a `$ref` here names.
    pub(crate) fn ref_name(&self) -> Option<String> {
        let target = self.value.get("$ref")?.as_str()?;
        let decoded = openapi_doc::reference::fragment(target).ok()?;
        component_name(&decoded).map(|n| unescape(n).into_owned())
    }
}

/// The component name (escaped) if `ptr` is exactly `/components/schemas/NAME`.
pub(crate) fn component_name(ptr: &str) -> Option<&str> {
    openapi_doc::reference::component_name(ptr, "schemas")
}

/// `additionalProperties` as far as compatibility cares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Additional<'a> {
    /// Absent or `true`: anything goes.
    Open,
    /// `false`.
    Closed,
    /// A schema that extra values must match.
    Schema(At<'a>),
}

/// Which composition keyword holds the variants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum VariantKind {
    OneOf,
    AnyOf,
}

impl VariantKind {
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            VariantKind::OneOf => "oneOf",
            VariantKind::AnyOf => "anyOf",
        }
    }
}

/// JSON types as bits, so a view's type set needs no allocation.
pub(crate) const TYPE_NAMES: [&str; 8] = [
    "string", "integer", "number", "boolean", "object", "array", "null", "unknown",
];

/// The bit of a type name (unknown names share the last bit).
pub(crate) fn type_bit(name: &str) -> u8 {
    let i = TYPE_NAMES[..7].iter().position(|t| *t == name).unwrap_or(7);
    1 << i
}

pub(crate) const INTEGER: u8 = 1 << 1;
pub(crate) const NUMBER: u8 = 1 << 2;

/// `string|integer` for messages.
pub(crate) fn type_label(bits: Option<u8>) -> String {
    match bits {
        None => "any type".to_owned(),
        Some(b) => TYPE_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| b & (1 << i) != 0)
            .map(|(_, t)| *t)
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// Keywords whose location `keyword_ptr` can report.
const LOCATED_KEYWORDS: [&str; 17] = [
    "type",
    "nullable",
    "format",
    "enum",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "pattern",
    "multipleOf",
    "uniqueItems",
    "required",
    "additionalProperties",
];

/// Numeric keywords compared by the bounds rules.
pub(crate) const NUMERIC_KEYWORDS: [&str; 8] = [
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
];

/// A schema with refs followed and `allOf` folded in.
#[derive(Debug, Clone)]
pub(crate) struct SchemaView<'a> {
    /// Pointer of the resolved schema object.
    pub ptr: String,
    /// The resolved schema object.
    pub value: &'a Value,
    /// Component name when the schema is `/components/schemas/NAME`.
    pub name: Option<String>,
    /// Allowed types as `type_bit`s; `None` = any.
    pub types: Option<u8>,
    pub nullable: bool,
    pub format: Option<&'a str>,
    pub enum_values: Option<&'a Vec<Value>>,
    /// Values of `NUMERIC_KEYWORDS`, by index.
    pub numbers: [Option<f64>; 8],
    pub exclusive_maximum: bool,
    pub exclusive_minimum: bool,
    pub pattern: Option<&'a str>,
    pub multiple_of: Option<f64>,
    pub unique_items: bool,
    /// Property name → its (raw, possibly `$ref`) schema.
    pub properties: BTreeMap<&'a str, At<'a>>,
    pub required: BTreeSet<&'a str>,
    pub additional: Additional<'a>,
    /// The raw `items` schema.
    pub items: Option<At<'a>>,
    /// oneOf/anyOf and the raw variants.
    pub variants: Option<(VariantKind, Vec<At<'a>>)>,
    pub read_only: bool,
    pub write_only: bool,
    /// Keyword → pointer of the allOf member that defines it, for keywords this schema does
    /// not state itself (views are built for every schema, so only merged ones pay for this).
    pub origin: Vec<(&'static str, Rc<str>)>,
}

impl<'a> SchemaView<'a> {
    fn empty(ptr: String, value: &'a Value) -> Self {
        SchemaView {
            value,
            name: component_name(&ptr).map(str::to_owned),
            ptr,
            types: None,
            nullable: false,
            format: None,
            enum_values: None,
            numbers: [None; 8],
            exclusive_maximum: false,
            exclusive_minimum: false,
            pattern: None,
            multiple_of: None,
            unique_items: false,
            properties: BTreeMap::new(),
            required: BTreeSet::new(),
            additional: Additional::Open,
            items: None,
            variants: None,
            read_only: false,
            write_only: false,
            origin: Vec::new(),
        }
    }

    /// Builds the view of the (already resolved) schema `value` found at `ptr`.
    pub(crate) fn build(doc: &'a Document, ptr: &str, value: &'a Value) -> Self {
        let mut seen = BTreeSet::new();
        let mut view = Self::build_inner(doc, ptr, value, 0, &mut seen);
        view.infer_type();
        view
    }

    /// Pointer of `keyword` as written (in this schema or the allOf member defining it).
    pub(crate) fn keyword_ptr(&self, keyword: &'static str) -> String {
        if self.value.get(keyword).is_some() {
            return format!("{}/{keyword}", self.ptr);
        }
        match self.origin.iter().find(|(k, _)| *k == keyword) {
            Some((_, base)) => format!("{base}/{keyword}"),
            None => self.ptr.clone(),
        }
    }

    /// Schemas without `type` that have object or array keywords are still objects or arrays;
    /// inferring this keeps "added `type: object`" from reading as a narrowing.
    fn infer_type(&mut self) {
        if self.types.is_some() || self.variants.is_some() {
            return;
        }
        if !self.properties.is_empty() || self.additional != Additional::Open {
            self.types = Some(type_bit("object"));
        } else if self.items.is_some() {
            self.types = Some(type_bit("array"));
        }
    }

    fn build_inner(
        doc: &'a Document,
        ptr: &str,
        value: &'a Value,
        depth: usize,
        seen: &mut BTreeSet<String>,
    ) -> Self {
        let mut view = Self::empty(ptr.to_owned(), value);
        let Some(obj) = value.as_object() else {
            return view;
        };
        seen.insert(ptr.to_owned());
        if let Some(t) = obj.get("type").and_then(Value::as_str) {
            view.types = Some(type_bit(t));
        }
        view.nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
        if let Some(f) = obj.get("format").and_then(Value::as_str) {
            view.format = Some(f);
        }
        if let Some(e) = obj.get("enum").and_then(Value::as_array) {
            view.enum_values = Some(e);
        }
        for (i, kw) in NUMERIC_KEYWORDS.iter().enumerate() {
            view.numbers[i] = obj.get(*kw).and_then(Value::as_f64);
        }
        view.exclusive_maximum = obj.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
        view.exclusive_minimum = obj.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
        if let Some(p) = obj.get("pattern").and_then(Value::as_str) {
            view.pattern = Some(p);
        }
        if let Some(m) = obj.get("multipleOf").and_then(Value::as_f64) {
            view.multiple_of = Some(m);
        }
        view.unique_items = obj.get("uniqueItems").and_then(Value::as_bool) == Some(true);
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, value) in props {
                let ptr = format!("{ptr}/properties/{}", escape(name));
                view.properties.insert(name.as_str(), At { ptr, value });
            }
        }
        if let Some(req) = obj.get("required").and_then(Value::as_array) {
            view.required.extend(req.iter().filter_map(Value::as_str));
        }
        match obj.get("additionalProperties") {
            Some(Value::Bool(false)) => view.additional = Additional::Closed,
            Some(value @ Value::Object(_)) => {
                let ptr = format!("{ptr}/additionalProperties");
                view.additional = Additional::Schema(At { ptr, value });
            }
            _ => {}
        }
        if let Some(value) = obj.get("items").filter(|v| v.is_object()) {
            view.items = Some(At {
                ptr: format!("{ptr}/items"),
                value,
            });
        }
        for kind in [VariantKind::OneOf, VariantKind::AnyOf] {
            if let Some(list) = obj.get(kind.keyword()).and_then(Value::as_array)
                && view.variants.is_none()
            {
                let ptrs = list
                    .iter()
                    .enumerate()
                    .map(|(i, value)| At {
                        ptr: format!("{ptr}/{}/{i}", kind.keyword()),
                        value,
                    })
                    .collect();
                view.variants = Some((kind, ptrs));
            }
        }
        view.read_only = obj.get("readOnly").and_then(Value::as_bool) == Some(true);
        view.write_only = obj.get("writeOnly").and_then(Value::as_bool) == Some(true);

        if let Some(members) = obj.get("allOf").and_then(Value::as_array)
            && depth < MAX_ALLOF_DEPTH
        {
            for (i, value) in members.iter().enumerate() {
                let raw = At {
                    ptr: format!("{ptr}/allOf/{i}"),
                    value,
                };
                let Some(member) = raw.resolve(doc) else {
                    continue;
                };
                // A member that (through refs) contains this schema again adds nothing new.
                if seen.contains(&member.ptr) {
                    continue;
                }
                let member = Self::build_inner(doc, &member.ptr, member.value, depth + 1, seen);
                view.merge(member);
            }
        }
        view
    }

    /// Folds an allOf member in: constraints of all members hold at once.
    fn merge(&mut self, m: SchemaView<'a>) {
        // Keywords this schema does not state come from the member (or the member's members).
        let member_ptr: Rc<str> = Rc::from(m.ptr.as_str());
        for kw in LOCATED_KEYWORDS {
            if self.value.get(kw).is_some() || self.origin.iter().any(|(k, _)| *k == kw) {
                continue;
            }
            if m.value.get(kw).is_some() {
                self.origin.push((kw, Rc::clone(&member_ptr)));
            } else if let Some((_, p)) = m.origin.iter().find(|(k, _)| *k == kw) {
                self.origin.push((kw, Rc::clone(p)));
            }
        }
        self.types = match (self.types.take(), m.types) {
            (Some(a), Some(b)) => {
                // "integer" and "number" meet at "integer"; otherwise a plain intersection.
                let mut out = a & b;
                if out == 0 && (a | b) & (INTEGER | NUMBER) == INTEGER | NUMBER {
                    out = INTEGER;
                }
                Some(out)
            }
            (a, b) => a.or(b),
        };
        self.nullable |= m.nullable;
        self.read_only |= m.read_only;
        self.write_only |= m.write_only;
        self.unique_items |= m.unique_items;
        self.exclusive_maximum |= m.exclusive_maximum;
        self.exclusive_minimum |= m.exclusive_minimum;
        if self.format.is_none() {
            self.format = m.format;
        }
        if self.enum_values.is_none() {
            self.enum_values = m.enum_values;
        }
        if self.pattern.is_none() {
            self.pattern = m.pattern;
        }
        if self.multiple_of.is_none() {
            self.multiple_of = m.multiple_of;
        }
        for (i, kw) in NUMERIC_KEYWORDS.iter().enumerate() {
            let Some(n) = m.numbers[i] else {
                continue;
            };
            let tighter = |old: f64| {
                if kw.starts_with("max") {
                    old.min(n)
                } else {
                    old.max(n)
                }
            };
            self.numbers[i] = Some(self.numbers[i].map_or(n, tighter));
        }
        for (name, p) in m.properties {
            self.properties.entry(name).or_insert(p);
        }
        self.required.extend(m.required);
        if m.additional == Additional::Closed || self.additional == Additional::Open {
            self.additional = m.additional;
        }
        if self.items.is_none() {
            self.items = m.items;
        }
        if self.variants.is_none() {
            self.variants = m.variants;
        }
    }
}

/// A short human name for a schema pointer: `User.address.city`, `POST /v1/posts request body.title`.
pub(crate) fn describe(ptr: &str) -> String {
    let tokens: Vec<String> = tokens(ptr).map(Cow::into_owned).collect();
    let (mut out, rest) = match tokens.as_slice() {
        [c, s, name, rest @ ..] if c == "components" && s == "schemas" => (name.clone(), rest),
        [p, path, method, rb, c, _mt, s, rest @ ..]
            if p == "paths" && rb == "requestBody" && c == "content" && s == "schema" =>
        {
            (
                format!("{} {path} request body", method.to_uppercase()),
                rest,
            )
        }
        [p, path, method, r, status, c, _mt, s, rest @ ..]
            if p == "paths" && r == "responses" && c == "content" && s == "schema" =>
        {
            (
                format!("{} {path} {status} response", method.to_uppercase()),
                rest,
            )
        }
        [p, path, method, r, status, h, header, s, rest @ ..]
            if p == "paths" && r == "responses" && h == "headers" && s == "schema" =>
        {
            (
                format!("{} {path} {status} header {header}", method.to_uppercase()),
                rest,
            )
        }
        _ => return ptr.to_owned(),
    };
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "properties" if i + 1 < rest.len() => {
                out.push('.');
                out.push_str(&rest[i + 1]);
                i += 2;
            }
            "items" => {
                out.push_str("[]");
                i += 1;
            }
            "additionalProperties" => {
                out.push_str(".*");
                i += 1;
            }
            "allOf" | "oneOf" | "anyOf" if i + 1 < rest.len() => {
                out.push_str(&format!(" ({} #{})", rest[i], rest[i + 1]));
                i += 2;
            }
            other => {
                out.push('/');
                out.push_str(other);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_pointers() {
        assert_eq!(
            describe("/components/schemas/User/properties/address/properties/city"),
            "User.address.city"
        );
        assert_eq!(
            describe(
                "/paths/~1v1~1posts/post/requestBody/content/application~1json/schema/properties/tags/items"
            ),
            "POST /v1/posts request body.tags[]"
        );
    }

    #[test]
    fn allof_merges_properties_and_required() {
        let text = "openapi: 3.0.3\npaths: {}\ncomponents:\n  schemas:\n    Base:\n      type: object\n      required: [id]\n      properties:\n        id: {type: string}\n    User:\n      allOf:\n        - $ref: '#/components/schemas/Base'\n        - properties:\n            name: {type: string}\n          required: [name]\n";
        let doc = Document::from_str("t.yaml", text).ok();
        let Some(doc) = doc else {
            panic!("test document must load");
        };
        let Some(user) = doc.get("/components/schemas/User") else {
            panic!("User exists");
        };
        let v = SchemaView::build(&doc, "/components/schemas/User", user);
        assert_eq!(
            v.properties.keys().copied().collect::<Vec<_>>(),
            ["id", "name"]
        );
        assert_eq!(v.required.len(), 2);
        assert_eq!(v.types, Some(type_bit("object")));
        assert_eq!(
            v.keyword_ptr("type"),
            "/components/schemas/Base/type".to_owned()
        );
    }
}
