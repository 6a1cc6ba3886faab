//! Schema validation helpers called by generated validators.
//!
//! The generator turns every schema of the contract into a function over `serde_json::Value` that
//! calls these helpers; requests are validated as JSON *before* typed deserialization, so every
//! violation is reported at once, each with a JSON pointer, and a handler never sees invalid input.

use std::fmt;

use serde_json::{Map, Value};

use super::error::ErrorDetail;

/// Where a field was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The JSON request body.
    Body,
    /// A path parameter.
    Path,
    /// A query parameter.
    Query,
    /// A request header.
    Header,
}

impl Location {
    /// The name used in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Body => "body",
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
        }
    }
}

/// One failed schema rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where the field was sent.
    pub location: Location,
    /// RFC 6901 pointer relative to the location.
    pub pointer: String,
    /// The schema keyword that failed.
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Violation {
    /// `query /limit: must be at most 100`.
    pub fn describe(&self) -> String {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        format!("{} {}: {}", self.location.as_str(), pointer, self.message)
    }

    pub(super) fn into_detail(self) -> ErrorDetail {
        ErrorDetail {
            location: self.location.as_str().to_owned(),
            pointer: self.pointer,
            rule: self.rule.to_owned(),
            message: self.message,
        }
    }
}

/// Collects violations while a validator walks a value, tracking the JSON pointer.
#[derive(Debug)]
pub struct Violations {
    location: Location,
    path: Vec<String>,
    list: Vec<Violation>,
}

impl Violations {
    /// An empty collector for one request location.
    pub fn new(location: Location) -> Self {
        Self {
            location,
            path: Vec::new(),
            list: Vec::new(),
        }
    }

    /// Runs `f` one level deeper, under `segment`.
    pub fn at(&mut self, segment: impl fmt::Display, f: impl FnOnce(&mut Self)) {
        self.path
            .push(openapi_doc::pointer::escape(&segment.to_string()).into_owned());
        f(self);
        self.path.pop();
    }

    /// Records a violation at the current pointer.
    pub fn fail(&mut self, rule: &'static str, message: impl Into<String>) {
        let pointer = self.path.iter().fold(String::new(), |mut acc, s| {
            acc.push('/');
            acc.push_str(s);
            acc
        });
        self.list.push(Violation {
            location: self.location,
            pointer,
            rule,
            message: message.into(),
        });
    }

    /// The location this collector reports.
    pub fn location(&self) -> Location {
        self.location
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The violations found.
    pub fn into_vec(self) -> Vec<Violation> {
        self.list
    }
}

/// JSON types as OpenAPI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `object`
    Object,
    /// `array`
    Array,
    /// `string`
    String,
    /// `integer`
    Integer,
    /// `number`
    Number,
    /// `boolean`
    Boolean,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Object => "an object",
            Ty::Array => "an array",
            Ty::String => "a string",
            Ty::Integer => "an integer",
            Ty::Number => "a number",
            Ty::Boolean => "a boolean",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Ty::Object => v.is_object(),
            Ty::Array => v.is_array(),
            Ty::String => v.is_string(),
            Ty::Integer => as_integer(v).is_some(),
            Ty::Number => v.is_number(),
            Ty::Boolean => v.is_boolean(),
        }
    }
}

fn as_integer(v: &Value) -> Option<f64> {
    let n = v.as_f64()?;
    (v.is_i64() || v.is_u64() || n.fract() == 0.0).then_some(n)
}

/// Checks the type; returns whether further keywords apply (false for a mismatch or an allowed null).
pub fn check_type(v: &Value, ty: Ty, nullable: bool, out: &mut Violations) -> bool {
    if v.is_null() {
        if !nullable {
            out.fail("type", format!("must be {}, not null", ty.name()));
        }
        return false;
    }
    if !ty.matches(v) {
        out.fail("type", format!("must be {}", ty.name()));
        return false;
    }
    true
}

/// For schemas without `type`: only `nullable: false` restricts null.
pub fn check_null(v: &Value, nullable: bool, out: &mut Violations) -> bool {
    if v.is_null() {
        if !nullable {
            out.fail("nullable", "must not be null");
        }
        return false;
    }
    true
}

/// `minLength` / `maxLength`, counted in Unicode scalar values as JSON Schema says.
pub fn check_length(s: &str, min: Option<u64>, max: Option<u64>, out: &mut Violations) {
    let len = s.chars().count() as u64;
    if let Some(min) = min.filter(|m| len < *m) {
        out.fail(
            "minLength",
            format!("must be at least {min} characters long"),
        );
    }
    if let Some(max) = max.filter(|m| len > *m) {
        out.fail(
            "maxLength",
            format!("must be at most {max} characters long"),
        );
    }
}

/// `pattern` (ECMA 262, unanchored as JSON Schema says).
pub fn check_pattern(s: &str, re: &regress::Regex, source: &str, out: &mut Violations) {
    if re.find(s).is_none() {
        out.fail("pattern", format!("must match the pattern {source}"));
    }
}

/// `format` for strings.
pub fn check_format(s: &str, format: &str, out: &mut Violations) {
    let ok = match format {
        "uuid" => uuid::Uuid::try_parse(s).is_ok() && s.len() == 36,
        "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10,
        "email" => is_email(s),
        "uri" => is_uri(s),
        _ => true,
    };
    if !ok {
        out.fail("format", format!("must be a valid {format}"));
    }
}

fn is_email(s: &str) -> bool {
    // Deliberately the pragmatic shape check (RFC 5321 lengths, one `@`, a dotted domain):
    // deliverability is proven by sending mail, not by a regular expression.
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && s.len() <= 254
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    !rest.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Numeric keywords. `format` bounds (int32, uint32, ...) are passed as min/max by the generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    /// `minimum`
    pub minimum: Option<f64>,
    /// `maximum`
    pub maximum: Option<f64>,
    /// `exclusiveMinimum: true`
    pub exclusive_minimum: bool,
    /// `exclusiveMaximum: true`
    pub exclusive_maximum: bool,
    /// `multipleOf`
    pub multiple_of: Option<f64>,
}

/// Checks numeric bounds.
pub fn check_number(v: &Value, b: Bounds, out: &mut Violations) {
    let Some(n) = v.as_f64() else { return };
    if let Some(min) = b.minimum {
        if b.exclusive_minimum && n <= min {
            out.fail("exclusiveMinimum", format!("must be greater than {min}"));
        } else if n < min {
            out.fail("minimum", format!("must be at least {min}"));
        }
    }
    if let Some(max) = b.maximum {
        if b.exclusive_maximum && n >= max {
            out.fail("exclusiveMaximum", format!("must be less than {max}"));
        } else if n > max {
            out.fail("maximum", format!("must be at most {max}"));
        }
    }
    if let Some(m) = b.multiple_of
        && !is_multiple(n, m)
    {
        out.fail("multipleOf", format!("must be a multiple of {m}"));
    }
}

/// Whether `n` is a multiple of `m`, decided on the numbers' shortest decimal forms so that
/// `0.3` is a multiple of `0.1` (binary floats cannot say so) and `5e-324` is not one of `0.5`
/// (a tolerance would say it is).
fn is_multiple(n: f64, m: f64) -> bool {
    if m <= 0.0 || !m.is_finite() || !n.is_finite() {
        return false;
    }
    match (decimal(n), decimal(m)) {
        (Some((nd, ne)), Some((md, me))) => {
            if nd == 0 {
                return true;
            }
            // n/m = (nd / md) * 10^(ne - me): an integer iff nd * 10^(ne-me) is divisible by md.
            let shift = ne - me;
            if shift >= 0 {
                match 10u128
                    .checked_pow(shift.unsigned_abs())
                    .and_then(|p| nd.checked_mul(p))
                {
                    Some(scaled) => scaled % md == 0,
                    None => {
                        // Too large for exact arithmetic: such a number is a multiple when md
                        // divides nd times a power of ten, i.e. md's factors are all 2s and 5s
                        // or divide nd.
                        let mut d = md / gcd(nd, md);
                        while d.is_multiple_of(2) {
                            d /= 2;
                        }
                        while d.is_multiple_of(5) {
                            d /= 5;
                        }
                        d == 1
                    }
                }
            } else {
                match 10u128
                    .checked_pow(shift.unsigned_abs())
                    .and_then(|p| md.checked_mul(p))
                {
                    Some(scaled) => nd % scaled == 0,
                    None => false,
                }
            }
        }
        _ => {
            let q = n / m;
            (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
        }
    }
}

/// `|x|` as (digits, exponent) with `|x| = digits * 10^exponent`, from Rust's shortest
/// round-trip representation.
fn decimal(x: f64) -> Option<(u128, i32)> {
    let text = format!("{:e}", x.abs());
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    Some((digits, exponent - frac.len() as i32))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `minItems` / `maxItems` / `uniqueItems`.
pub fn check_items(
    items: &[Value],
    min: Option<u64>,
    max: Option<u64>,
    unique: bool,
    out: &mut Violations,
) {
    let len = items.len() as u64;
    if let Some(min) = min.filter(|m| len < *m) {
        out.fail("minItems", format!("must have at least {min} items"));
    }
    if let Some(max) = max.filter(|m| len > *m) {
        out.fail("maxItems", format!("must have at most {max} items"));
    }
    if unique {
        for (i, a) in items.iter().enumerate() {
            if items[..i].contains(a) {
                out.fail("uniqueItems", format!("item {i} repeats an earlier item"));
                break;
            }
        }
    }
}

/// `required`, `additionalProperties: false`, `minProperties` / `maxProperties`.
pub fn check_object(
    obj: &Map<String, Value>,
    required: &[&str],
    known: Option<&[&str]>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    out: &mut Violations,
) {
    for name in required {
        if !obj.contains_key(*name) {
            out.at(name, |out| out.fail("required", "is required"));
        }
    }
    if let Some(known) = known {
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            out.at(key, |out| {
                out.fail("additionalProperties", "is not a known field")
            });
        }
    }
    let len = obj.len() as u64;
    if let Some(min) = min_properties.filter(|m| len < *m) {
        out.fail(
            "minProperties",
            format!("must have at least {min} properties"),
        );
    }
    if let Some(max) = max_properties.filter(|m| len > *m) {
        out.fail(
            "maxProperties",
            format!("must have at most {max} properties"),
        );
    }
}

/// `enum`: the value must equal one of the listed JSON values (given as JSON text).
pub fn check_enum(v: &Value, allowed: &[&str], out: &mut Violations) {
    let found = allowed
        .iter()
        .any(|a| serde_json::from_str::<Value>(a).is_ok_and(|a| &a == v));
    if !found {
        out.fail("enum", format!("must be one of {}", allowed.join(", ")));
    }
}

/// Runs each branch of a `oneOf`/`anyOf` on a scratch collector; returns how many matched.
pub fn count_matches(v: &Value, location: Location, branches: &[Validator]) -> usize {
    branches
        .iter()
        .filter(|branch| {
            let mut scratch = Violations::new(location);
            branch(v, &mut scratch);
            scratch.is_empty()
        })
        .count()
}

/// A generated validator function.
pub type Validator = fn(&Value, &mut Violations);

/// `oneOf` with a discriminator: dispatch on the tag property.
pub fn check_discriminated(
    v: &Value,
    property: &str,
    mapping: &[(&str, Validator)],
    out: &mut Violations,
) {
    let Some(obj) = v.as_object() else {
        out.fail("type", "must be an object");
        return;
    };
    match obj.get(property).and_then(Value::as_str) {
        None => out.at(property, |out| out.fail("required", "is required")),
        Some(tag) => match mapping.iter().find(|(name, _)| *name == tag) {
            Some((_, validate)) => validate(v, out),
            None => {
                let names: Vec<&str> = mapping.iter().map(|(n, _)| *n).collect();
                out.at(property, |out| {
                    out.fail(
                        "discriminator",
                        format!("must be one of {}", names.join(", ")),
                    )
                });
            }
        },
    }
}

/// How to read a parameter's raw text as JSON before validating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// Kept as a string.
    String,
    /// Parsed as an integer when it looks like one.
    Integer,
    /// Parsed as a number when it looks like one.
    Number,
    /// `true` / `false`.
    Boolean,
}

/// A parameter's name and how its raw text is read.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The parameter name as the contract spells it (headers match case-insensitively).
    pub name: &'static str,
    /// The scalar type (of the items, for arrays).
    pub scalar: Scalar,
    /// Whether the parameter is an array (repeated query keys).
    pub array: bool,
}

/// Parameters as text, before typed extraction.
#[derive(Debug, Default)]
pub struct RawParams {
    pairs: Vec<(String, String)>,
}

impl RawParams {
    /// From name/value pairs (query pairs, path variables, header values).
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Turns the raw text into a JSON object per the fields' types. Text that does not parse as
    /// its type stays a string so that the validator reports it as a type violation.
    pub fn to_object(&self, fields: &[Field]) -> Map<String, Value> {
        let mut obj = Map::new();
        for field in fields {
            let values: Vec<Value> = self
                .pairs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(field.name))
                .map(|(_, v)| coerce(v, field.scalar))
                .collect();
            if values.is_empty() {
                continue;
            }
            let value = if field.array {
                Value::Array(values)
            } else {
                // A repeated scalar parameter: keep the last one, as Dropshot's deserializer does.
                values.into_iter().next_back().unwrap_or(Value::Null)
            };
            obj.insert(field.name.to_owned(), value);
        }
        obj
    }
}

fn coerce(raw: &str, scalar: Scalar) -> Value {
    let parsed = match scalar {
        Scalar::String => None,
        Scalar::Integer => raw
            .parse::<i64>()
            .ok()
            .map(Value::from)
            .or_else(|| raw.parse::<u64>().ok().map(Value::from)),
        Scalar::Number => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::from),
        Scalar::Boolean => match raw {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
    };
    parsed.unwrap_or_else(|| Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_escape_and_nest() {
        let mut out = Violations::new(Location::Body);
        out.at("a/b", |out| {
            out.at("c~d", |out| out.at(3, |out| out.fail("type", "x")))
        });
        let v = out.into_vec();
        assert_eq!(v[0].pointer, "/a~1b/c~0d/3");
    }

    #[test]
    fn null_is_allowed_only_when_nullable() {
        let mut out = Violations::new(Location::Body);
        assert!(!check_type(&Value::Null, Ty::String, true, &mut out));
        assert!(out.is_empty());
        assert!(!check_type(&Value::Null, Ty::String, false, &mut out));
        assert_eq!(out.into_vec()[0].rule, "type");
    }

    #[test]
    fn integers_accept_integral_floats_only() {
        let mut out = Violations::new(Location::Body);
        assert!(check_type(&json!(3.0), Ty::Integer, false, &mut out));
        assert!(!check_type(&json!(3.5), Ty::Integer, false, &mut out));
    }

    #[test]
    fn multiples_are_decided_in_decimal() {
        for (n, m, ok) in [
            (0.3, 0.1, true),
            (2.5, 0.5, true),
            (5e-324, 0.5, false),
            (0.30000000000000004, 0.1, false),
            (1e30, 0.5, true),
            (7.0, 2.0, false),
            (0.0, 0.7, true),
            (-1.5, 0.5, true),
        ] {
            assert_eq!(is_multiple(n, m), ok, "{n} multiple of {m}");
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut out = Violations::new(Location::Body);
        check_length("ééé", Some(3), Some(3), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn formats() {
        for (s, f, ok) in [
            ("0191b5a8-7c3e-7cc0-8a6b-5f0c5d1f2b3a", "uuid", true),
            ("0191b5a87c3e7cc08a6b5f0c5d1f2b3a", "uuid", false),
            ("2026-11-27T13:30:00Z", "date-time", true),
            ("2026-11-27 13:30", "date-time", false),
            ("a@example.com", "email", true),
            ("a@@example.com", "email", false),
            ("no-at.example.com", "email", false),
            ("https://x.test/a", "uri", true),
            ("not a uri", "uri", false),
        ] {
            let mut out = Violations::new(Location::Body);
            check_format(s, f, &mut out);
            assert_eq!(out.is_empty(), ok, "{s} as {f}");
        }
    }

    #[test]
    fn raw_params_coerce_and_keep_bad_text() {
        let raw = RawParams::new(vec![
            ("limit".into(), "abc".into()),
            ("tag".into(), "a".into()),
            ("tag".into(), "b".into()),
            ("on".into(), "true".into()),
        ]);
        let obj = raw.to_object(&[
            Field {
                name: "limit",
                scalar: Scalar::Integer,
                array: false,
            },
            Field {
                name: "tag",
                scalar: Scalar::String,
                array: true,
            },
            Field {
                name: "on",
                scalar: Scalar::Boolean,
                array: false,
            },
        ]);
        assert_eq!(
            Value::Object(obj),
            json!({"limit": "abc", "tag": ["a", "b"], "on": true})
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// k × m is a multiple of m for every integer k and decimal m, as a client would send
            /// them: decimal text parsed to the nearest float.
            #[test]
            fn integer_multiples_are_multiples(k in -1_000_000i64..1_000_000, digits in 1i64..999_999, scale in 0u32..6) {
                let text = |units: i64| {
                    let p = 10i64.pow(scale);
                    let sign = if units < 0 { "-" } else { "" };
                    let (int, frac) = (units.abs() / p, units.abs() % p);
                    format!("{sign}{int}.{frac:0width$}", width = scale as usize).parse::<f64>().unwrap_or(f64::NAN)
                };
                let (n, m) = (text(k * digits), text(digits));
                prop_assert!(is_multiple(n, m), "{} is a multiple of {}", n, m);
            }

            /// A value plus a fraction of m that is not a multiple is never a multiple.
            #[test]
            fn offsets_are_not_multiples(k in 0i64..10_000, m_tenths in 1u32..100) {
                let m = f64::from(m_tenths) / 10.0;
                let n: f64 = format!("{:.2}", (k as f64) * m + 0.01).parse().unwrap_or(0.0);
                prop_assume!(((n * 100.0).round() as i64) % i64::from(m_tenths * 10) != 0);
                prop_assert!(!is_multiple(n, m), "{} is not a multiple of {}", n, m);
            }

            /// Any string survives pointer escaping: the pointer names exactly that key.
            #[test]
            fn pointer_segments_round_trip(segment in ".*") {
                let mut out = Violations::new(Location::Body);
                out.at(&segment, |out| out.fail("type", "x"));
                let pointer = out.into_vec().remove(0).pointer;
                let unescaped = pointer[1..].replace("~1", "/").replace("~0", "~");
                prop_assert_eq!(unescaped, segment);
            }
        }
    }
}
