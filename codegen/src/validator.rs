//! Emits validation code from schemas: one function per component schema plus anonymous helpers,
//! each walking a `serde_json::Value` and calling `agora_api::rt::validate`.

use heck::ToSnakeCase;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use serde_json::Value;

/// Accumulates validator functions and the regex statics they use.
#[derive(Default)]
pub(crate) struct Validators {
    items: Vec<TokenStream>,
    anon: usize,
    regexes: usize,
}

/// The name of the validator function of a component schema.
pub(crate) fn fn_name(component: &str) -> Ident {
    format_ident!("validate_{}", component.to_snake_case())
}

impl Validators {
    /// Emits `fn validate_<name>(v, out)` for a component schema.
    pub fn component(&mut self, name: &str, schema: &Value) {
        let ident = fn_name(name);
        let body = self.body(schema);
        let doc = format!("Validates a value against the `{name}` schema.");
        self.items.push(quote! {
            #[doc = #doc]
            pub fn #ident(v: &Value, out: &mut Violations) { #body }
        });
    }

    /// Emits a named validator for a synthesized schema (e.g. an operation's parameters).
    pub fn named(&mut self, ident: &Ident, doc: &str, schema: &Value) {
        let body = self.body(schema);
        self.items.push(quote! {
            #[doc = #doc]
            pub fn #ident(v: &Value, out: &mut Violations) { #body }
        });
    }

    /// The module holding every validator.
    pub fn into_module(self) -> TokenStream {
        let items = self.items;
        quote! {
            /// Validators generated from the contract's schemas.
            #[allow(clippy::all, clippy::expect_used, unused_variables, unused_braces)]
            pub mod validators {
                use ::agora_api::rt::reexport::serde_json::Value;
                use ::agora_api::rt::validate::*;
                #(#items)*
            }
        }
    }

    fn branch_fn(&mut self, schema: &Value) -> TokenStream {
        if let Some(name) = ref_target(schema) {
            let ident = fn_name(name);
            return quote!(#ident);
        }
        self.anon += 1;
        let ident = format_ident!("validate_anon_{}", self.anon);
        let body = self.body(schema);
        self.items
            .push(quote! { fn #ident(v: &Value, out: &mut Violations) { #body } });
        quote!(#ident)
    }

    fn regex(&mut self, source: &str) -> Ident {
        self.regexes += 1;
        let ident = format_ident!("PATTERN_{}", self.regexes);
        self.items.push(quote! {
            static #ident: ::std::sync::LazyLock<::regress::Regex> = ::std::sync::LazyLock::new(|| {
                ::regress::Regex::new(#source).expect("the generator compiled this pattern at build time")
            });
        });
        ident
    }

    /// Statements validating `v` into `out`.
    fn body(&mut self, schema: &Value) -> TokenStream {
        if let Some(name) = ref_target(schema) {
            let ident = fn_name(name);
            return quote! { #ident(v, out); };
        }
        let nullable = schema
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ty = schema.get("type").and_then(Value::as_str);
        let mut checks = Vec::new();

        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let texts: Vec<String> = values
                .iter()
                .filter(|v| !v.is_null())
                .map(Value::to_string)
                .collect();
            checks.push(quote! { check_enum(v, &[#(#texts),*], out); });
        }
        match ty {
            Some("string") => checks.push(self.string_checks(schema)),
            Some("integer") | Some("number") => checks.push(number_checks(schema)),
            Some("array") => {
                let min = opt_u64(schema, "minItems");
                let max = opt_u64(schema, "maxItems");
                let unique = schema
                    .get("uniqueItems")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let item = schema
                    .get("items")
                    .map(|s| self.body(s))
                    .unwrap_or_default();
                checks.push(quote! {
                    if let Some(items) = v.as_array() {
                        check_items(items, #min, #max, #unique, out);
                        for (i, item) in items.iter().enumerate() {
                            out.at(i, |out| { let v = item; #item });
                        }
                    }
                });
            }
            _ => {}
        }
        if ty == Some("object") || schema.get("properties").is_some() {
            checks.push(self.object_checks(schema));
        }
        if let Some(list) = schema.get("allOf").and_then(Value::as_array) {
            for branch in list {
                let b = self.body(branch);
                checks.push(quote! { { #b } });
            }
        }
        if let Some(list) = schema.get("oneOf").and_then(Value::as_array) {
            if let Some(property) = schema
                .pointer("/discriminator/propertyName")
                .and_then(Value::as_str)
            {
                let mapping = schema
                    .pointer("/discriminator/mapping")
                    .and_then(Value::as_object);
                let arms: Vec<TokenStream> = list
                    .iter()
                    .filter_map(ref_target_full)
                    .map(|reference| {
                        let name = reference.trim_start_matches("#/components/schemas/");
                        let tag = mapping
                            .and_then(|m| m.iter().find(|(_, v)| v.as_str() == Some(reference)))
                            .map(|(k, _)| k.clone())
                            .unwrap_or_else(|| name.to_owned());
                        let ident = fn_name(name);
                        quote! { (#tag, #ident as Validator) }
                    })
                    .collect();
                checks.push(quote! { check_discriminated(v, #property, &[#(#arms),*], out); });
            } else {
                let fns: Vec<TokenStream> = list.iter().map(|b| self.branch_fn(b)).collect();
                checks.push(quote! {
                    let matched = count_matches(v, out.location(), &[#(#fns as Validator),*]);
                    if matched != 1 {
                        out.fail("oneOf", format!("must match exactly one alternative, matched {matched}"));
                    }
                });
            }
        }
        if let Some(list) = schema.get("anyOf").and_then(Value::as_array) {
            let fns: Vec<TokenStream> = list.iter().map(|b| self.branch_fn(b)).collect();
            checks.push(quote! {
                if count_matches(v, out.location(), &[#(#fns as Validator),*]) == 0 {
                    out.fail("anyOf", "must match at least one alternative");
                }
            });
        }

        let guard = match ty {
            Some(t) => {
                let variant = Ident::new(
                    match t {
                        "object" => "Object",
                        "array" => "Array",
                        "string" => "String",
                        "integer" => "Integer",
                        "number" => "Number",
                        _ => "Boolean",
                    },
                    Span::call_site(),
                );
                quote! { check_type(v, Ty::#variant, #nullable, out) }
            }
            None => quote! { check_null(v, #nullable, out) },
        };
        quote! { if #guard { #(#checks)* } }
    }

    fn string_checks(&mut self, schema: &Value) -> TokenStream {
        let min = opt_u64(schema, "minLength");
        let max = opt_u64(schema, "maxLength");
        let mut checks = vec![quote! { check_length(s, #min, #max, out); }];
        if let Some(source) = schema.get("pattern").and_then(Value::as_str) {
            let re = self.regex(source);
            checks.push(quote! { check_pattern(s, &#re, #source, out); });
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            checks.push(quote! { check_format(s, #format, out); });
        }
        quote! { if let Some(s) = v.as_str() { #(#checks)* } }
    }

    fn object_checks(&mut self, schema: &Value) -> TokenStream {
        let props = schema.get("properties").and_then(Value::as_object);
        let names: Vec<&str> = props
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let additional = schema.get("additionalProperties");
        let known = if additional == Some(&Value::Bool(false)) {
            quote! { Some(&[#(#names),*]) }
        } else {
            quote! { None }
        };
        let minp = opt_u64(schema, "minProperties");
        let maxp = opt_u64(schema, "maxProperties");
        let mut per_prop = Vec::new();
        for (name, sub) in props.into_iter().flatten() {
            let body = self.body(sub);
            per_prop.push(quote! {
                if let Some(v) = obj.get(#name) { out.at(#name, |out| { #body }); }
            });
        }
        if let Some(extra) = additional.filter(|a| a.is_object()) {
            let body = self.body(extra);
            per_prop.push(quote! {
                for (key, v) in obj.iter().filter(|(k, _)| ![#(#names),*].contains(&k.as_str())) {
                    out.at(key, |out| { #body });
                }
            });
        }
        quote! {
            if let Some(obj) = v.as_object() {
                check_object(obj, &[#(#required),*], #known, #minp, #maxp, out);
                #(#per_prop)*
            }
        }
    }
}

fn ref_target(schema: &Value) -> Option<&str> {
    ref_target_full(schema).map(|r| r.trim_start_matches("#/components/schemas/"))
}

fn ref_target_full(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str)
}

fn opt_u64(schema: &Value, key: &str) -> TokenStream {
    match schema.get(key).and_then(Value::as_u64) {
        Some(n) => quote!(Some(#n)),
        None => quote!(None),
    }
}

fn opt_f64(n: Option<f64>) -> TokenStream {
    match n {
        Some(n) => quote!(Some(#n)),
        None => quote!(None),
    }
}

/// Numeric checks; integer formats contribute their range, so `format: int32` is enforced too.
fn number_checks(schema: &Value) -> TokenStream {
    let (fmin, fmax) = match schema.get("format").and_then(Value::as_str) {
        Some("int8") => (Some(i8::MIN as f64), Some(i8::MAX as f64)),
        Some("int16") => (Some(i16::MIN as f64), Some(i16::MAX as f64)),
        Some("int32") => (Some(i32::MIN as f64), Some(i32::MAX as f64)),
        Some("int64") => (Some(i64::MIN as f64), Some(i64::MAX as f64)),
        Some("uint8") => (Some(0.0), Some(u8::MAX as f64)),
        Some("uint16") => (Some(0.0), Some(u16::MAX as f64)),
        Some("uint32") => (Some(0.0), Some(u32::MAX as f64)),
        Some("uint64") => (Some(0.0), Some(u64::MAX as f64)),
        _ => (None, None),
    };
    let minimum = schema.get("minimum").and_then(Value::as_f64);
    let maximum = schema.get("maximum").and_then(Value::as_f64);
    let excl_min = schema
        .get("exclusiveMinimum")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && minimum.is_some();
    let excl_max = schema
        .get("exclusiveMaximum")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && maximum.is_some();
    // The schema's own bound wins when it is tighter than the format's range.
    let min = match (minimum, fmin) {
        (Some(m), Some(f)) if f > m => Some(f),
        (Some(m), _) => Some(m),
        (None, f) => f,
    };
    let max = match (maximum, fmax) {
        (Some(m), Some(f)) if f < m => Some(f),
        (Some(m), _) => Some(m),
        (None, f) => f,
    };
    let excl_min = excl_min && min == minimum;
    let excl_max = excl_max && max == maximum;
    let min = opt_f64(min);
    let max = opt_f64(max);
    let multiple = opt_f64(schema.get("multipleOf").and_then(Value::as_f64));
    quote! {
        check_number(v, Bounds {
            minimum: #min, maximum: #max,
            exclusive_minimum: #excl_min, exclusive_maximum: #excl_max,
            multiple_of: #multiple,
        }, out);
    }
}
