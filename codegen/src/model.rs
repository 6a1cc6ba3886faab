//! Reads operations out of the document into a model the emitter can use, checking every
//! construct on the way; anything unsupported is an error naming its JSON pointer.

use openapi_doc::METHODS;
use openapi_doc::pointer::escape as esc;
use serde_json::{Map, Value, json};

use crate::error::At;
use crate::policy::{self, Policy};
use crate::schema;

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamLocation {
    Path,
    Query,
    Header,
}

impl ParamLocation {
    pub fn suffix(self) -> &'static str {
        match self {
            ParamLocation::Path => "Path",
            ParamLocation::Query => "Query",
            ParamLocation::Header => "Headers",
        }
    }
}

/// The parameters of one location, as a synthesized object schema.
#[derive(Debug, Clone)]
pub(crate) struct ParamGroup {
    pub location: ParamLocation,
    /// `{type: object, properties, required}` in OpenAPI form.
    pub schema: Value,
    /// Parameter names in order.
    pub names: Vec<String>,
    /// `x-dropshot-pagination` value, for paginated query groups.
    pub pagination: Option<Value>,
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub schema: Value,
    pub pointer: String,
}

/// What a successful call returns.
#[derive(Debug, Clone)]
pub(crate) enum Success {
    /// A JSON body with 200, 201 or 202.
    Json {
        status: u16,
        schema: Value,
        pointer: String,
    },
    /// 204, no body.
    NoContent,
    /// A text body (text/plain, application/yaml, ...) with 200.
    Text { media_type: String },
    /// A WebSocket channel (`x-dropshot-websocket`).
    WebSocket,
}

/// One operation.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub id: String,
    pub method: String,
    pub path: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub deprecated: bool,
    pub secured: bool,
    pub params: Vec<ParamGroup>,
    pub body: Option<Body>,
    pub body_max_bytes: Option<u64>,
    pub success: Success,
    pub policy: Policy,
    /// A channel's frame schemas (`x-agora-frames`).
    pub frames: Option<Frames>,
    /// A channel's close codes (`x-agora-close-codes`).
    pub close_codes: Vec<CloseCode>,
}

/// The component schemas of a channel's frames, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frames {
    /// What the client sends (validated like a request body).
    pub client: String,
    /// What the server sends.
    pub server: String,
    /// The policy of each kind of client frame (`x-agora-rate-limit` and `x-agora-feature` on
    /// the frame's schema), enforced before the service sees a frame.
    pub client_policy: FramePolicies,
}

/// Where a client frame's policy comes from: one per `oneOf` branch of the client frame schema,
/// or the schema's own when it is a single kind of frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FramePolicies {
    /// The client frame schema is a `oneOf`; one entry per branch, in the contract's order.
    Variants(Vec<FramePolicy>),
    /// The client frame schema is one kind of frame.
    Single(FramePolicy),
}

/// One kind of client frame and what spending or gating it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FramePolicy {
    /// The branch's component schema (typify names the enum variant after it).
    pub schema: String,
    /// The frame's `type` (the discriminator value), for metrics and logs.
    pub name: String,
    pub rate_limit: Option<String>,
    pub feature: Option<String>,
}

/// One entry of `x-agora-close-codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseCode {
    pub code: u16,
    pub name: String,
    pub description: String,
}

/// Reads `x-agora-frames`: `client` and `server`, each a `$ref` to a component schema.
fn frames(
    op: &Value,
    ptr: &str,
    websocket: bool,
    components: &serde_json::Map<String, Value>,
) -> Result<Option<Frames>, At> {
    let Some(value) = op.get("x-agora-frames") else {
        return Ok(None);
    };
    let fptr = format!("{ptr}/x-agora-frames");
    if !websocket {
        return Err(At::new(
            &fptr,
            "frames belong to a WebSocket channel (x-dropshot-websocket)",
        ));
    }
    let side = |key: &str| -> Result<String, At> {
        let reference = value
            .pointer(&format!("/{key}/$ref"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                At::new(
                    format!("{fptr}/{key}"),
                    "must be a $ref to a component schema",
                )
            })?;
        let name = reference
            .strip_prefix("#/components/schemas/")
            .filter(|n| components.contains_key(*n))
            .ok_or_else(|| {
                At::new(
                    format!("{fptr}/{key}/$ref"),
                    format!("{reference:?} is not a component schema"),
                )
            })?;
        Ok(name.to_owned())
    };
    if let Some(map) = value.as_object()
        && let Some(extra) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "client" | "server"))
    {
        return Err(At::new(
            format!("{fptr}/{extra}"),
            "unknown key; frames have `client` and `server`",
        ));
    }
    let client = side("client")?;
    let client_policy = client_policies(&client, components)?;
    Ok(Some(Frames {
        client,
        server: side("server")?,
        client_policy,
    }))
}

/// The `x-agora-*` keys a client frame's schema may carry.
const FRAME_EXTENSIONS: &[&str] = &["x-agora-rate-limit", "x-agora-feature"];

/// Reads the policy of each kind of client frame from its component schema.
fn client_policies(
    client: &str,
    components: &serde_json::Map<String, Value>,
) -> Result<FramePolicies, At> {
    let cptr = format!("/components/schemas/{client}");
    // `side` checked that the schema exists.
    let schema = components.get(client).unwrap_or(&Value::Null);
    let Some(branches) = schema.get("oneOf").and_then(Value::as_array) else {
        return frame_policy(client, client, schema, &cptr).map(FramePolicies::Single);
    };
    let mapping = schema
        .pointer("/discriminator/mapping")
        .and_then(Value::as_object);
    let mut policies = Vec::with_capacity(branches.len());
    for (i, branch) in branches.iter().enumerate() {
        let bptr = format!("{cptr}/oneOf/{i}");
        let reference = branch.get("$ref").and_then(Value::as_str);
        let Some((name, target)) = reference
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|n| components.get(n).map(|target| (n, target)))
        else {
            return Err(At::new(
                bptr,
                "each kind of client frame must be a $ref to a component schema (its policy \
                 lives there)",
            ));
        };
        // The frame's `type`: the discriminator value mapped to this branch, else the single
        // value its `type` property allows, else the schema's name.
        let tag = mapping
            .and_then(|m| {
                m.iter()
                    .find(|(_, target)| target.as_str() == reference)
                    .map(|(tag, _)| tag.clone())
            })
            .or_else(|| {
                target
                    .pointer("/properties/type/enum/0")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| name.to_owned());
        policies.push(frame_policy(
            name,
            &tag,
            target,
            &format!("/components/schemas/{name}"),
        )?);
    }
    Ok(FramePolicies::Variants(policies))
}

fn frame_policy(
    schema_name: &str,
    tag: &str,
    schema: &Value,
    ptr: &str,
) -> Result<FramePolicy, At> {
    if let Some(map) = schema.as_object()
        && let Some(key) = map
            .keys()
            .find(|k| k.starts_with("x-agora-") && !FRAME_EXTENSIONS.contains(&k.as_str()))
    {
        return Err(At::new(
            format!("{ptr}/{key}"),
            format!(
                "unknown client frame extension {key:?}; known: {}",
                FRAME_EXTENSIONS.join(", ")
            ),
        ));
    }
    Ok(FramePolicy {
        schema: schema_name.to_owned(),
        name: tag.to_owned(),
        rate_limit: crate::policy::snake_name(schema, ptr, "x-agora-rate-limit")?,
        feature: crate::policy::snake_name(schema, ptr, "x-agora-feature")?,
    })
}

/// Reads `x-agora-close-codes`: a list of `{code, name, description}` with unique codes and
/// snake_case names (they become constants), codes 1000–4999.
fn close_codes(op: &Value, ptr: &str, websocket: bool) -> Result<Vec<CloseCode>, At> {
    let Some(value) = op.get("x-agora-close-codes") else {
        return Ok(Vec::new());
    };
    let cptr = format!("{ptr}/x-agora-close-codes");
    if !websocket {
        return Err(At::new(
            &cptr,
            "close codes belong to a WebSocket channel (x-dropshot-websocket)",
        ));
    }
    let list = value
        .as_array()
        .ok_or_else(|| At::new(&cptr, "must be a list of {code, name, description}"))?;
    let mut out: Vec<CloseCode> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let eptr = format!("{cptr}/{i}");
        let code = entry
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (1000..=4999).contains(c))
            .ok_or_else(|| {
                At::new(
                    format!("{eptr}/code"),
                    "must be a close code from 1000 to 4999",
                )
            })?;
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .ok_or_else(|| At::new(format!("{eptr}/name"), "must be a snake_case name"))?;
        let description = entry
            .get("description")
            .and_then(Value::as_str)
            .ok_or_else(|| At::new(format!("{eptr}/description"), "is required"))?;
        if out.iter().any(|c| c.code == code || c.name == name) {
            return Err(At::new(
                &eptr,
                format!("close code {code} ({name}) is listed twice"),
            ));
        }
        out.push(CloseCode {
            code,
            name: name.to_owned(),
            description: description.to_owned(),
        });
    }
    Ok(out)
}

/// Reads every operation of the document.
pub(crate) fn operations(doc: &Value) -> Result<Vec<Operation>, At> {
    let components = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    check_security_schemes(doc)?;
    let global_secured = secured(doc.get("security"), "/security")?.unwrap_or(false);
    let roles = policy::contract_roles(doc);
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| At::new("/paths", "paths are required"))?;
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item_ptr = format!("/paths/{}", esc(path));
        let item = item
            .as_object()
            .ok_or_else(|| At::new(&item_ptr, "a path item must be an object"))?;
        if item.contains_key("$ref") {
            return Err(At::new(&item_ptr, "path item $ref is not supported"));
        }
        let shared = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for key in item.keys() {
            if !METHODS.contains(&key.as_str())
                && !matches!(key.as_str(), "parameters" | "summary" | "description")
                && !key.starts_with("x-")
            {
                return Err(At::new(
                    format!("{item_ptr}/{}", esc(key)),
                    format!("unsupported path item field {key:?}"),
                ));
            }
        }
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let ptr = format!("{item_ptr}/{method}");
            ops.push(operation(
                doc,
                &components,
                path,
                method,
                op,
                &shared,
                &ptr,
                global_secured,
                roles.as_deref(),
            )?);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for op in &ops {
        if !seen.insert(op.id.clone()) {
            return Err(At::new(
                "/paths",
                format!("operationId {:?} is used twice", op.id),
            ));
        }
    }
    Ok(ops)
}

fn check_security_schemes(doc: &Value) -> Result<(), At> {
    if let Some(schemes) = doc
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
    {
        for (name, scheme) in schemes {
            let ok = scheme.get("type").and_then(Value::as_str) == Some("http")
                && scheme
                    .get("scheme")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                    == Some("bearer");
            if !ok {
                return Err(At::new(
                    format!("/components/securitySchemes/{}", esc(name)),
                    "only http bearer security schemes are supported",
                ));
            }
        }
    }
    Ok(())
}

/// `Some(true)` when the requirement list names a bearer scheme, `Some(false)` for `[]`.
fn secured(security: Option<&Value>, pointer: &str) -> Result<Option<bool>, At> {
    let Some(list) = security else {
        return Ok(None);
    };
    let list = list
        .as_array()
        .ok_or_else(|| At::new(pointer, "security must be an array"))?;
    if list.is_empty() {
        return Ok(Some(false));
    }
    for (i, req) in list.iter().enumerate() {
        let req = req
            .as_object()
            .ok_or_else(|| At::new(format!("{pointer}/{i}"), "must be an object"))?;
        if req.is_empty() {
            return Err(At::new(
                format!("{pointer}/{i}"),
                "optional authentication ({}) is not supported: an operation is public or it is not",
            ));
        }
    }
    Ok(Some(true))
}

#[allow(clippy::too_many_arguments)]
fn operation(
    doc: &Value,
    components: &Map<String, Value>,
    path: &str,
    method: &str,
    op: &Value,
    shared: &[Value],
    ptr: &str,
    global_secured: bool,
    roles: Option<&[String]>,
) -> Result<Operation, At> {
    let id = op
        .get("operationId")
        .and_then(Value::as_str)
        .ok_or_else(|| At::new(ptr, "every operation needs an operationId"))?
        .to_owned();
    let snake = !id.is_empty()
        && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        return Err(At::new(
            format!("{ptr}/operationId"),
            format!("operationId {id:?} must be snake_case"),
        ));
    }
    if op.get("callbacks").is_some() {
        return Err(At::new(
            format!("{ptr}/callbacks"),
            "callbacks are not supported",
        ));
    }
    let secured =
        secured(op.get("security"), &format!("{ptr}/security"))?.unwrap_or(global_secured);
    let websocket = op.get("x-dropshot-websocket").is_some();
    let policy = policy::read(op, ptr, method, secured, websocket, roles)?;

    // Parameters: path-level first, operation-level override by (name, in).
    let mut params: Vec<(Value, String)> = Vec::new();
    for (i, p) in shared.iter().enumerate() {
        params.push((p.clone(), format!("/paths/{}/parameters/{i}", esc(path))));
    }
    for (i, p) in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = (p.get("name").cloned(), p.get("in").cloned());
        params.retain(|(q, _)| (q.get("name").cloned(), q.get("in").cloned()) != key);
        params.push((p.clone(), format!("{ptr}/parameters/{i}")));
    }
    let pagination = op.get("x-dropshot-pagination").cloned();
    let mut groups: Vec<ParamGroup> = Vec::new();
    for (p, pptr) in params {
        let p = resolve_parameter(doc, &p, &pptr)?;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| At::new(&pptr, "parameter needs a name"))?;
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => ParamLocation::Path,
            Some("query") => ParamLocation::Query,
            Some("header") => ParamLocation::Header,
            other => {
                return Err(At::new(
                    format!("{pptr}/in"),
                    format!("unsupported parameter location {other:?}"),
                ));
            }
        };
        for unsupported in [
            "content",
            "style",
            "explode",
            "allowReserved",
            "allowEmptyValue",
        ] {
            if p.get(unsupported).is_some() {
                return Err(At::new(
                    format!("{pptr}/{unsupported}"),
                    format!(
                        "parameter {unsupported:?} is not supported (Dropshot uses form/simple styles)"
                    ),
                ));
            }
        }
        let schema = p
            .get("schema")
            .ok_or_else(|| At::new(&pptr, "a parameter needs a schema"))?;
        schema::check(schema, &format!("{pptr}/schema"), components)?;
        let resolved = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => components
                .get(schema::ref_name(r, &pptr)?)
                .unwrap_or(schema),
            None => schema,
        };
        let scalar = matches!(
            resolved.get("type").and_then(Value::as_str),
            Some("string" | "integer" | "number" | "boolean")
        );
        if !scalar {
            return Err(At::new(
                format!("{pptr}/schema"),
                "parameters must have a scalar type (string, integer, number, boolean): \
                 Dropshot cannot extract arrays or objects",
            ));
        }
        let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
        if location == ParamLocation::Path && !required {
            return Err(At::new(&pptr, "path parameters must be required"));
        }
        if location == ParamLocation::Path && !path.contains(&format!("{{{name}}}")) {
            return Err(At::new(
                &pptr,
                format!("path parameter {name:?} is not in the path"),
            ));
        }
        let mut prop = schema.clone();
        if let (Some(d), Some(obj)) = (p.get("description"), prop.as_object_mut()) {
            obj.insert("description".into(), d.clone());
        }
        let group = match groups.iter_mut().find(|g| g.location == location) {
            Some(g) => g,
            None => {
                groups.push(ParamGroup {
                    location,
                    schema: json!({"type": "object", "properties": {}, "required": []}),
                    names: vec![],
                    pagination: None,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        group.names.push(name.to_owned());
        group.schema["properties"][name] = prop;
        if required && let Some(req) = group.schema["required"].as_array_mut() {
            req.push(Value::String(name.to_owned()));
        }
    }
    for segment in path.split('/') {
        if let Some(var) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let declared = groups
                .iter()
                .any(|g| g.location == ParamLocation::Path && g.names.iter().any(|n| n == var));
            if !declared {
                return Err(At::new(
                    ptr,
                    format!("path variable {{{var}}} has no path parameter"),
                ));
            }
        }
    }
    if let Some(p) = pagination.clone() {
        let group = groups
            .iter_mut()
            .find(|g| g.location == ParamLocation::Query);
        let ok = group.as_ref().is_some_and(|g| {
            g.names.iter().any(|n| n == "limit") && g.names.iter().any(|n| n == "page_token")
        });
        if !ok {
            return Err(At::new(
                format!("{ptr}/x-dropshot-pagination"),
                "a paginated operation needs query parameters limit and page_token",
            ));
        }
        if let Some(g) = group {
            g.pagination = Some(p);
        }
    }

    let body = match op.get("requestBody") {
        None => None,
        Some(rb) => {
            let rptr = format!("{ptr}/requestBody");
            if rb.get("$ref").is_some() {
                return Err(At::new(
                    &rptr,
                    "requestBody $ref is not supported; reference the schema instead",
                ));
            }
            if rb.get("required").and_then(Value::as_bool) != Some(true) {
                return Err(At::new(
                    &rptr,
                    "request bodies must be required: true (Dropshot has no optional bodies)",
                ));
            }
            let content = rb
                .get("content")
                .and_then(Value::as_object)
                .ok_or_else(|| At::new(&rptr, "needs content"))?;
            if content.len() != 1 || !content.contains_key("application/json") {
                return Err(At::new(
                    format!("{rptr}/content"),
                    "request bodies must be application/json only",
                ));
            }
            let sptr = format!("{rptr}/content/application~1json/schema");
            let schema = content["application/json"]
                .get("schema")
                .ok_or_else(|| At::new(&sptr, "needs a schema"))?;
            schema::check(schema, &sptr, components)?;
            Some(Body {
                schema: schema.clone(),
                pointer: sptr,
            })
        }
    };
    if websocket && body.is_some() {
        return Err(At::new(
            ptr,
            "a WebSocket operation cannot have a request body",
        ));
    }
    let body_max_bytes = match op.get("x-agora-body-max-bytes") {
        None => None,
        Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            At::new(
                format!("{ptr}/x-agora-body-max-bytes"),
                "must be a positive integer (bytes)",
            )
        })?),
    };

    let success = responses(doc, components, op, ptr, websocket)?;
    let frames = frames(op, ptr, websocket, components)?;
    let close_codes = close_codes(op, ptr, websocket)?;
    let tags = op
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Operation {
        id,
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        summary: op.get("summary").and_then(Value::as_str).map(str::to_owned),
        description: op
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        tags,
        deprecated: op
            .get("deprecated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        secured,
        params: groups,
        body,
        body_max_bytes,
        success,
        policy,
        frames,
        close_codes,
    })
}

fn resolve_parameter(doc: &Value, p: &Value, ptr: &str) -> Result<Value, At> {
    resolve_component(doc, p, "parameters", "parameter", ptr).cloned()
}

fn resolve_response<'a>(doc: &'a Value, r: &'a Value, ptr: &str) -> Result<&'a Value, At> {
    resolve_component(doc, r, "responses", "response", ptr)
}

/// `value`, or what its `$ref` names under `#/components/<kind>/` (one hop; other targets are
/// refused, a missing one is a dangling reference).
fn resolve_component<'a>(
    doc: &'a Value,
    value: &'a Value,
    kind: &str,
    what: &str,
    ptr: &str,
) -> Result<&'a Value, At> {
    let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
        return Ok(value);
    };
    if openapi_doc::reference::component_name(reference, kind).is_none() {
        return Err(At::new(
            ptr,
            format!("unsupported {what} $ref {reference:?}"),
        ));
    }
    openapi_doc::reference::target(doc, reference)
        .map_err(|_| At::new(ptr, format!("dangling $ref {reference:?}")))
}

fn responses(
    doc: &Value,
    components: &Map<String, Value>,
    op: &Value,
    ptr: &str,
    websocket: bool,
) -> Result<Success, At> {
    let rptr = format!("{ptr}/responses");
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or_else(|| At::new(&rptr, "responses are required"))?;
    let mut success = None;
    for (code, response) in responses {
        let cptr = format!("{rptr}/{}", esc(code));
        let resolved = resolve_response(doc, response, &cptr)?;
        let is_error = code.starts_with('4') || code.starts_with('5');
        if is_error {
            let schema = resolved
                .pointer("/content/application~1json/schema/$ref")
                .and_then(Value::as_str);
            if schema != Some("#/components/schemas/ApiError") {
                return Err(At::new(
                    &cptr,
                    "every 4XX/5XX response must be application/json with the ApiError schema",
                ));
            }
            continue;
        }
        if code == "default" {
            return Err(At::new(
                &cptr,
                "default responses are not supported: document each status",
            ));
        }
        if websocket {
            if code != "101" {
                return Err(At::new(
                    &cptr,
                    "a WebSocket operation documents 101 as its only success",
                ));
            }
            success = Some(Success::WebSocket);
            continue;
        }
        if success.is_some() {
            return Err(At::new(
                &cptr,
                "only one success status per operation is supported",
            ));
        }
        if resolved
            .get("headers")
            .and_then(Value::as_object)
            .is_some_and(|h| !h.is_empty())
        {
            return Err(At::new(
                format!("{cptr}/headers"),
                "success response headers are not supported yet",
            ));
        }
        let content = resolved.get("content").and_then(Value::as_object);
        success = Some(match (code.as_str(), content) {
            ("204", None) => Success::NoContent,
            ("204", Some(_)) => return Err(At::new(&cptr, "204 has no content")),
            ("200" | "201" | "202", Some(content)) if content.len() == 1 => {
                let (media, mt) = content.iter().next().expect("len is 1");
                if media == "application/json" {
                    let sptr = format!("{cptr}/content/application~1json/schema");
                    let schema = mt
                        .get("schema")
                        .ok_or_else(|| At::new(&sptr, "needs a schema"))?;
                    schema::check(schema, &sptr, components)?;
                    Success::Json {
                        status: code.parse().unwrap_or(200),
                        schema: schema.clone(),
                        pointer: sptr,
                    }
                } else if code == "200"
                    && (media.starts_with("text/") || media == "application/yaml")
                {
                    Success::Text {
                        media_type: media.clone(),
                    }
                } else {
                    return Err(At::new(
                        format!("{cptr}/content"),
                        format!("unsupported response media type {media:?}"),
                    ));
                }
            }
            _ => {
                return Err(At::new(
                    &cptr,
                    "supported successes: 200/201/202 with one media type, or 204 without content",
                ));
            }
        });
    }
    success.ok_or_else(|| At::new(&rptr, "an operation needs a success response"))
}
