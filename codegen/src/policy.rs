//! Reads an operation's policy extensions — `x-agora-role`, `x-agora-rate-limit`,
//! `x-agora-feature` — and refuses malformed or contradictory ones, naming the JSON pointer.
//!
//! The rules that make a policy well-formed live here, in one place, because the adapter trusts
//! them: a role on a public operation could never be checked (there is no caller), and an
//! authenticated write without a rate-limit class would be an abuse vector nobody chose.

use serde_json::Value;

use crate::error::At;

/// The `x-agora-*` keys an operation may carry; any other is refused (a typo would otherwise
/// silently drop a guard).
pub(crate) const OPERATION_EXTENSIONS: &[&str] = &[
    "x-agora-role",
    "x-agora-rate-limit",
    "x-agora-feature",
    "x-agora-body-max-bytes",
    "x-agora-frames",
    "x-agora-close-codes",
];

/// An operation's declared policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    pub role: Option<String>,
    pub rate_limit: Option<String>,
    pub feature: Option<String>,
}

/// Methods that change nothing; every other method on an authenticated operation is a write.
const SAFE_METHODS: &[&str] = &["get", "head", "options"];

/// Reads the policy of the operation at `ptr`. `roles` are the values of the contract's `Role`
/// schema enum, when it has one.
pub(crate) fn read(
    op: &Value,
    ptr: &str,
    method: &str,
    secured: bool,
    websocket: bool,
    roles: Option<&[String]>,
) -> Result<Policy, At> {
    if let Some(map) = op.as_object() {
        for key in map.keys() {
            if key.starts_with("x-agora-") && !OPERATION_EXTENSIONS.contains(&key.as_str()) {
                return Err(At::new(
                    format!("{ptr}/{key}"),
                    format!(
                        "unknown operation extension {key:?}; known: {}",
                        OPERATION_EXTENSIONS.join(", ")
                    ),
                ));
            }
        }
    }
    let role = name(op, ptr, "x-agora-role", is_snake)?;
    let rate_limit = name(op, ptr, "x-agora-rate-limit", is_snake)?;
    // Snake case for flags too: a key becomes a configuration key (`features.<key>`) and an
    // environment variable (`AGORA_FEATURES__<KEY>`), where `.` and `-` cannot appear.
    let feature = name(op, ptr, "x-agora-feature", is_snake)?;
    if let Some(role) = &role {
        if !secured {
            return Err(At::new(
                format!("{ptr}/x-agora-role"),
                "a role needs an authenticated caller: this operation is public (security: [])",
            ));
        }
        if let Some(roles) = roles
            && !roles.iter().any(|r| r == role)
        {
            return Err(At::new(
                format!("{ptr}/x-agora-role"),
                format!(
                    "role {role:?} is not a value of the Role schema ({})",
                    roles.join(", ")
                ),
            ));
        }
    }
    let write = !SAFE_METHODS.contains(&method) && !websocket;
    if secured && write && rate_limit.is_none() {
        return Err(At::new(
            ptr,
            "every authenticated write declares the budget it spends: add x-agora-rate-limit \
             (auth, write, chat, read or another class)",
        ));
    }
    Ok(Policy {
        role,
        rate_limit,
        feature,
    })
}

/// The snake_case name at `key` of `value` (an operation, or a client frame's schema), if any.
pub(crate) fn snake_name(value: &Value, ptr: &str, key: &str) -> Result<Option<String>, At> {
    name(value, ptr, key, is_snake)
}

fn name(op: &Value, ptr: &str, key: &str, valid: fn(&str) -> bool) -> Result<Option<String>, At> {
    match op.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if valid(s) => Ok(Some(s.clone())),
        Some(other) => Err(At::new(
            format!("{ptr}/{key}"),
            format!("{key} must be a snake_case name (a-z, 0-9, `_`), not {other}"),
        )),
    }
}

fn is_snake(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The values of `components.schemas.Role.enum`, when the contract defines roles that way.
pub(crate) fn contract_roles(doc: &Value) -> Option<Vec<String>> {
    let values = doc.pointer("/components/schemas/Role/enum")?.as_array()?;
    Some(
        values
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}
