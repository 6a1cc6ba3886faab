//! The rule catalogue: every finding names one of these ids, and the README table mirrors it.
//!
//! Rules are direction-specific where the judgement is asymmetric (a request may only widen, a
//! response may only narrow), so a request rule usually has a response twin with the opposite
//! trigger. Severity and level are fixed per rule so that waivers and CI gates stay predictable.

use serde::Serialize;

/// How bad a finding is for existing clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing breaks; reported for the record.
    Info,
    /// May break some clients (depends on how they were written).
    Warning,
    /// Breaks existing clients at the selected level.
    Breaking,
}

impl Severity {
    /// Lower-case label used by every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Breaking => "breaking",
        }
    }
}

/// Which way data flows where the change was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Data a client sends: it may only widen.
    Request,
    /// Data a client receives: it may only narrow.
    Response,
    /// Not about a payload (paths, operations, security, names).
    Operation,
}

impl Direction {
    /// Lower-case label used by every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
            Direction::Operation => "operation",
        }
    }
}

/// Which compatibility promise a rule protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// HTTP/JSON compatibility only: an old client binary keeps working.
    Wire,
    /// Wire plus source compatibility of generated clients (names of operations, types, params).
    Client,
}

impl Level {
    /// Lower-case label used by the CLI and every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Wire => "wire",
            Level::Client => "client",
        }
    }
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable kebab-case id; waivers and scripts refer to it.
    pub id: &'static str,
    /// Severity of every finding of this rule.
    pub severity: Severity,
    /// Direction of every finding of this rule.
    pub direction: Direction,
    /// The lowest level at which the rule is reported (`Client` rules are dropped at `Wire`).
    pub level: Level,
    /// What the rule detects, for the README table and `--explain`-like listings.
    pub summary: &'static str,
}

macro_rules! rules {
    ($( $id:literal, $sev:ident, $dir:ident, $lvl:ident, $sum:literal; )*) => {
        /// Every rule the checker knows, in README order.
        pub const RULES: &[Rule] = &[
            $( Rule { id: $id, severity: Severity::$sev, direction: Direction::$dir, level: Level::$lvl, summary: $sum }, )*
        ];
    };
}

rules! {
    // Paths and operations.
    "operation-removed", Breaking, Operation, Wire, "An operation was removed (and was not deprecated past its x-sunset date).";
    "operation-removed-after-sunset", Info, Operation, Wire, "A deprecated operation was removed after its x-sunset date.";
    "operation-added", Info, Operation, Wire, "A new operation.";
    "operation-deprecated", Info, Operation, Wire, "An operation became deprecated.";
    "operation-security-added", Breaking, Operation, Wire, "A previously public operation now requires authentication.";
    "operation-security-changed", Warning, Operation, Wire, "The accepted security requirements of an operation changed.";
    "operation-id-changed", Breaking, Operation, Client, "operationId renamed: the generated client method changes name.";
    "operation-id-removed", Breaking, Operation, Client, "operationId removed: the generated client method changes name.";
    // Policy declared in the contract (x-agora-role, x-agora-feature, x-agora-rate-limit).
    "operation-role-added", Breaking, Operation, Wire, "An operation now requires a role (x-agora-role): callers without it get 403.";
    "operation-role-changed", Breaking, Operation, Wire, "The role an operation requires (x-agora-role) changed: holders of the old one get 403.";
    "operation-role-removed", Info, Operation, Wire, "An operation no longer requires a role.";
    "operation-feature-gate-added", Breaking, Operation, Wire, "An operation gained a feature gate (x-agora-feature): it may now answer 503 feature_disabled.";
    "operation-feature-gate-changed", Warning, Operation, Wire, "An operation's feature gate (x-agora-feature) names another flag, which may be off.";
    "operation-feature-gate-removed", Info, Operation, Wire, "An operation lost its feature gate.";
    "operation-rate-limit-added", Warning, Operation, Wire, "An operation now spends a rate-limit budget (x-agora-rate-limit): callers may get 429 where they did not.";
    "operation-rate-limit-changed", Warning, Operation, Wire, "An operation spends another rate-limit class (x-agora-rate-limit), shared with other operations.";
    "operation-rate-limit-removed", Info, Operation, Wire, "An operation no longer spends a rate-limit budget.";
    // WebSocket channels (x-agora-frames): client frames are graded as request bodies, server
    // frames as response bodies, by the request and response rules.
    "channel-frames-removed", Breaking, Operation, Wire, "A channel no longer declares its frames (x-agora-frames): the frames deployed clients send and expect are no longer promised.";
    // Parameters.
    "request-parameter-added-required", Breaking, Request, Wire, "A new required parameter.";
    "request-parameter-added-optional", Info, Request, Wire, "A new optional parameter.";
    "request-parameter-became-required", Breaking, Request, Wire, "An optional parameter became required.";
    "request-parameter-removed", Warning, Request, Wire, "A parameter was removed; old clients still send it.";
    "request-parameter-removed-client", Breaking, Request, Client, "A parameter was removed (not renamed): the generated client's argument for it disappears, so code that passes it no longer compiles.";
    "request-parameter-default-changed", Breaking, Request, Wire, "An optional parameter's default changed or was removed: the server now assumes another value for clients that omit it.";
    "request-parameter-style-changed", Breaking, Request, Wire, "A parameter's style or explode changed, so its serialization changed.";
    "request-parameter-renamed", Breaking, Request, Client, "A parameter was renamed (path parameters by position; others when one went and one with the same schema came): the generated client argument changes name.";
    // Request bodies.
    "request-body-added-required", Breaking, Request, Wire, "A required request body was added.";
    "request-body-added-optional", Info, Request, Wire, "An optional request body was added.";
    "request-body-became-required", Breaking, Request, Wire, "An optional request body became required.";
    "request-body-removed", Warning, Request, Wire, "The request body (required or not) was removed; old clients still send one, which the server ignores.";
    "request-body-removed-client", Breaking, Request, Client, "The request body was removed: the generated client's body argument disappears.";
    "request-body-schema-added", Breaking, Request, Wire, "A request media type that accepted anything (no schema, or an empty one) now has a schema.";
    "request-media-type-removed", Breaking, Request, Wire, "A request media type is no longer accepted.";
    // Responses.
    "response-success-status-removed", Breaking, Response, Wire, "A success (2xx) response status was removed.";
    "response-status-removed", Warning, Response, Wire, "A non-success response status was removed.";
    "response-status-added", Info, Response, Wire, "A response status was added.";
    "response-media-type-removed", Breaking, Response, Wire, "A response media type (or the whole body) was removed.";
    "response-required-header-removed", Breaking, Response, Wire, "A required response header was removed.";
    "response-header-removed", Warning, Response, Wire, "An optional response header was removed.";
    "response-header-became-optional", Breaking, Response, Wire, "A required response header became optional.";
    // Schemas: types and formats.
    "request-type-narrowed", Breaking, Request, Wire, "A request schema no longer accepts a type it accepted.";
    "response-type-widened", Breaking, Response, Wire, "A response schema may now produce a type it did not produce.";
    "request-format-changed", Breaking, Request, Wire, "A request format was added or changed to a narrower one.";
    "response-format-changed", Breaking, Response, Wire, "A response format was removed or changed to a wider one.";
    // Schemas: enums.
    "request-enum-value-removed", Breaking, Request, Wire, "A request enum no longer accepts a value.";
    "request-enum-added", Breaking, Request, Wire, "A request schema became an enum.";
    "response-enum-value-added", Breaking, Response, Wire, "A response enum may produce a new value (generated clients use closed enums).";
    "response-enum-removed", Breaking, Response, Wire, "A response schema stopped being an enum, so any value may come back.";
    "response-enum-value-removed", Breaking, Response, Client, "A response enum lost a value: harmless on the wire, but the generated enum loses its variant, so code that matches it no longer compiles.";
    // Schemas: bounds.
    "request-max-decreased", Breaking, Request, Wire, "A request maximum was added or lowered (or made exclusive).";
    "request-min-increased", Breaking, Request, Wire, "A request minimum was added or raised (or made exclusive).";
    "request-max-length-decreased", Breaking, Request, Wire, "A request maxLength was added or lowered.";
    "request-min-length-increased", Breaking, Request, Wire, "A request minLength was added or raised.";
    "request-max-items-decreased", Breaking, Request, Wire, "A request maxItems was added or lowered.";
    "request-min-items-increased", Breaking, Request, Wire, "A request minItems was added or raised.";
    "request-max-properties-decreased", Breaking, Request, Wire, "A request maxProperties was added or lowered.";
    "request-min-properties-increased", Breaking, Request, Wire, "A request minProperties was added or raised.";
    "response-max-increased", Breaking, Response, Wire, "A response maximum was raised or removed.";
    "response-min-decreased", Breaking, Response, Wire, "A response minimum was lowered or removed.";
    "response-max-length-increased", Breaking, Response, Wire, "A response maxLength was raised or removed.";
    "response-min-length-decreased", Breaking, Response, Wire, "A response minLength was lowered or removed.";
    "response-max-items-increased", Breaking, Response, Wire, "A response maxItems was raised or removed.";
    "response-min-items-decreased", Breaking, Response, Wire, "A response minItems was lowered or removed.";
    "response-max-properties-increased", Breaking, Response, Wire, "A response maxProperties was raised or removed.";
    "response-min-properties-decreased", Breaking, Response, Wire, "A response minProperties was lowered or removed.";
    // Schemas: other constraints.
    "request-pattern-added", Breaking, Request, Wire, "A request pattern was added.";
    "request-pattern-changed", Breaking, Request, Wire, "A request pattern changed so it refuses strings it accepted (decided on automata).";
    "request-pattern-unproven", Warning, Request, Wire, "A request pattern changed in a way that cannot be proven compatible here (lookaround, backreferences, or automata too large): review it.";
    "response-pattern-changed", Warning, Response, Wire, "A response pattern was removed or changed to one that may allow more (a proven narrowing is not reported).";
    "request-multiple-of-changed", Breaking, Request, Wire, "A request multipleOf was added or changed so fewer numbers pass.";
    "response-multiple-of-changed", Breaking, Response, Wire, "A response multipleOf was removed or changed so more numbers may come back.";
    "request-unique-items-added", Breaking, Request, Wire, "A request array now requires unique items.";
    "response-unique-items-removed", Warning, Response, Wire, "A response array may now contain duplicates.";
    "request-nullable-removed", Breaking, Request, Wire, "A request value may no longer be null.";
    "response-nullable-added", Breaking, Response, Wire, "A response value may now be null.";
    "request-additional-properties-closed", Breaking, Request, Wire, "A request object no longer accepts (some) additional properties.";
    "response-additional-properties-opened", Warning, Response, Wire, "A response object may now carry additional properties.";
    // Schemas: properties.
    "request-required-property-added", Breaking, Request, Wire, "A new required request property.";
    "request-optional-property-added", Info, Request, Wire, "A new optional request property.";
    "request-property-became-required", Breaking, Request, Wire, "An optional request property became required.";
    "request-property-removed", Warning, Request, Wire, "A request property was removed; old clients still send it.";
    "request-property-removed-client", Breaking, Request, Client, "A request property was removed: the generated request type loses the field, so code that sets it no longer compiles.";
    "response-property-removed", Breaking, Response, Wire, "A required response property was removed.";
    "response-optional-property-removed", Warning, Response, Wire, "An optional response property was removed.";
    "response-optional-property-removed-client", Breaking, Response, Client, "An optional response property was removed: the generated response type loses the field, so code that reads it no longer compiles.";
    "response-property-became-optional", Breaking, Response, Wire, "A required response property became optional.";
    "response-property-added", Info, Response, Wire, "A new response property.";
    // Schemas: composition.
    "request-variant-removed", Breaking, Request, Wire, "A request oneOf/anyOf no longer accepts one of its variants.";
    "response-variant-added", Breaking, Response, Wire, "A response oneOf/anyOf may produce a new variant.";
    "channel-frame-added", Info, Response, Wire, "A channel's server frames (x-agora-frames.server, an open union) gained a frame type: clients ignore frame types they do not know.";
    "response-wrapped-in-one-of", Breaking, Response, Wire, "A response schema was wrapped in oneOf/anyOf.";
    "request-one-of-overlap", Breaking, Request, Wire, "A request oneOf gained a branch (or replaced a plain schema) that may match what another branch matches: a value matching two branches of a oneOf is rejected.";
    "request-wrapped-in-one-of", Breaking, Request, Client, "A request schema was wrapped in oneOf/anyOf: the generated type becomes an enum.";
    // Names that generated clients expose.
    "schema-renamed", Breaking, Operation, Client, "A component schema was renamed: the generated type changes name.";
    "schema-removed", Warning, Operation, Client, "A component schema was removed: its generated type disappears.";
    "schema-inlined", Breaking, Operation, Client, "A named schema was inlined: the generated type loses its name.";
    "schema-extracted", Breaking, Operation, Client, "An inline schema was extracted into a component: the generated type changes name.";
}

/// Looks up a rule by id; ids passed in from code are constants, so a miss is a programming error
/// caught by the `every_rule_id_used_is_catalogued` test rather than a runtime failure.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(
                r.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{} is not kebab-case",
                r.id
            );
        }
    }
}
