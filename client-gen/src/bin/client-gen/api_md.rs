//! Renders `ts-client/API.md`: every operation of the contract with the TypeScript call that
//! reaches it, grouped by tag, plus the schema names. Output depends only on the contract text, in
//! its own order, so `--check` can compare it byte for byte.

use std::fmt::Write as _;

use openapi_doc::METHODS;
use serde_yaml::{Mapping, Value};

/// One operation, as it appears in the reference.
struct Operation {
    id: String,
    tag: String,
    method: String,
    path: String,
    summary: String,
    public: bool,
    call: String,
    returns: String,
}

/// What a successful call's `data` is, and whether it must be read as text.
struct Returns {
    display: String,
    text: bool,
}

pub fn render(contract: &str) -> Result<String, String> {
    let doc: Value = serde_yaml::from_str(contract).map_err(|e| format!("openapi.yaml: {e}"))?;
    let title = str_at(&doc, &["info", "title"]).unwrap_or("API");
    let version = str_at(&doc, &["info", "version"]).unwrap_or("?");
    let operations = operations(&doc)?;

    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "# {title} {version} — TypeScript API reference\n");
    let _ = writeln!(
        out,
        "<!-- Generated from openapi.yaml by `cargo run -p client-gen -- ts`; do not edit. -->\n"
    );
    let _ = writeln!(
        out,
        "Every call resolves to `{{ data, response }}` on 2xx or `{{ error, response }}` otherwise, where \
         `error` is an `AgoraError` (see [README.md](README.md#handle-errors)). Operations marked \
         *bearer* send the stored access token and refresh it once on a 401.\n"
    );

    // Tags in the contract's order, then any tag used by an operation but not declared.
    let mut tags: Vec<String> = seq_at(&doc, &["tags"])
        .iter()
        .filter_map(|t| str_at(t, &["name"]).map(str::to_owned))
        .collect();
    for op in &operations {
        if !tags.contains(&op.tag) {
            tags.push(op.tag.clone());
        }
    }
    for tag in &tags {
        let in_tag: Vec<&Operation> = operations.iter().filter(|op| &op.tag == tag).collect();
        if in_tag.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {tag}\n");
        let _ = writeln!(
            out,
            "| Operation | Call | Auth | Returns (`data`) | Summary |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for op in in_tag {
            let _ = writeln!(
                out,
                "| `{}`<br>`{} {}` | `{}` | {} | {} | {} |",
                op.id,
                op.method.to_uppercase(),
                cell(&op.path),
                cell(&op.call),
                if op.public { "public" } else { "bearer" },
                cell(&op.returns),
                cell(&op.summary),
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Schemas\n");
    let _ = writeln!(
        out,
        "Each is exported as `Schema<\"Name\">` (and `components[\"schemas\"][\"Name\"]`) from `@agora/client`.\n"
    );
    if let Some(schemas) = map_at(&doc, &["components", "schemas"]) {
        for (name, schema) in schemas {
            let name = name.as_str().unwrap_or("?");
            let description = str_at(schema, &["description"])
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            let _ = writeln!(out, "- `{name}` — {}", description.trim());
        }
    }
    Ok(out)
}

fn operations(doc: &Value) -> Result<Vec<Operation>, String> {
    let root_public = seq_at(doc, &["security"]).is_empty();
    let Some(paths) = map_at(doc, &["paths"]) else {
        return Ok(Vec::new());
    };
    let mut operations = Vec::new();
    for (path, item) in paths {
        let path = path
            .as_str()
            .ok_or("openapi.yaml: a path key is not a string")?;
        let shared_params = seq_at(item, &["parameters"]);
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let id = str_at(op, &["operationId"])
                .ok_or_else(|| format!("openapi.yaml: {method} {path} has no operationId"))?;
            let public = match op.get("security") {
                Some(Value::Sequence(s)) => s.is_empty(),
                _ => root_public,
            };
            let mut params: Vec<&Value> = shared_params.iter().collect();
            params.extend(seq_at(op, &["parameters"]));
            let returns = returns(doc, op);
            // A channel (WebSocket) is opened with connectRealtime, not fetched.
            let channel = op.get("x-dropshot-websocket").is_some();
            let (call, returns_display) = if channel {
                let server = at(op, &["x-agora-frames", "server"])
                    .map_or_else(|| "frames".to_owned(), |s| schema_name(Some(s)));
                (
                    "connectRealtime(client, { onFrame?, onStateChange?, onEnd?, positions? })"
                        .to_owned(),
                    format!("`{server}` frames"),
                )
            } else {
                (
                    call(doc, method, path, &params, op, returns.text),
                    returns.display,
                )
            };
            operations.push(Operation {
                id: id.to_owned(),
                tag: seq_at(op, &["tags"])
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_owned(),
                method: method.to_owned(),
                path: path.to_owned(),
                summary: str_at(op, &["summary"]).unwrap_or("").to_owned(),
                public,
                call,
                returns: returns_display,
            });
        }
    }
    Ok(operations)
}

/// The TypeScript call, e.g. `client.GET("/v1/users/{id}", { params: { path: { id } } })`.
fn call(
    doc: &Value,
    method: &str,
    path: &str,
    params: &[&Value],
    op: &Value,
    text: bool,
) -> String {
    let mut groups: Vec<String> = Vec::new();
    for location in ["path", "query", "header"] {
        let names: Vec<String> = params
            .iter()
            .map(|p| resolve(doc, p))
            .filter(|p| str_at(p, &["in"]) == Some(location))
            .filter_map(|p| {
                let name = str_at(p, &["name"])?;
                let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                Some(if required {
                    name.to_owned()
                } else {
                    format!("{name}?")
                })
            })
            .collect();
        if !names.is_empty() {
            groups.push(format!("{location}: {{ {} }}", names.join(", ")));
        }
    }
    let mut options: Vec<String> = Vec::new();
    if !groups.is_empty() {
        options.push(format!("params: {{ {} }}", groups.join(", ")));
    }
    if let Some(body) = op.get("requestBody").map(|b| resolve(doc, b)) {
        let required = body
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ty = map_at(body, &["content"])
            .and_then(|c| c.get("application/json"))
            .map_or_else(|| "body".to_owned(), |m| schema_name(m.get("schema")));
        options.push(format!("body{}: {ty}", if required { "" } else { "?" }));
    }
    if text {
        options.push("parseAs: \"text\"".to_owned());
    }
    let method = method.to_uppercase();
    if options.is_empty() {
        format!("client.{method}(\"{path}\")")
    } else {
        format!("client.{method}(\"{path}\", {{ {} }})", options.join(", "))
    }
}

/// What a 2xx answer's `data` is: a schema name, or a string read as text for other media types.
fn returns(doc: &Value, op: &Value) -> Returns {
    let plain = |display: &str| Returns {
        display: display.to_owned(),
        text: false,
    };
    let Some(responses) = map_at(op, &["responses"]) else {
        return plain("—");
    };
    let success = responses
        .iter()
        .find(|(status, _)| status_key(status).starts_with('2'));
    let Some((_, response)) = success else {
        return plain("—");
    };
    let response = resolve(doc, response);
    let Some(content) = map_at(response, &["content"]) else {
        return plain("no content");
    };
    if let Some(json) = content.get("application/json") {
        return plain(&format!("`{}`", schema_name(json.get("schema"))));
    }
    match content.iter().next() {
        Some((media, _)) => Returns {
            display: format!("`string` ({})", media.as_str().unwrap_or("?")),
            text: true,
        },
        None => plain("no content"),
    }
}

fn status_key(status: &Value) -> String {
    match status {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `Name` for a `$ref` to `#/components/schemas/Name`, else the schema's type (or `object`).
fn schema_name(schema: Option<&Value>) -> String {
    let Some(schema) = schema else {
        return "unknown".to_owned();
    };
    if let Some(reference) = str_at(schema, &["$ref"]) {
        return openapi_doc::pointer::last_token(reference)
            .map_or_else(|| reference.to_owned(), |name| name.into_owned());
    }
    match str_at(schema, &["type"]) {
        Some("array") => format!("{}[]", schema_name(schema.get("items"))),
        Some(ty) => ty.to_owned(),
        None => "object".to_owned(),
    }
}

/// Follows a local `$ref` (`#/components/...`) once; anything else is returned as is. (The
/// walk is over `serde_yaml::Value`, which keeps the contract's key order for the reference.)
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let Some(reference) = str_at(value, &["$ref"]) else {
        return value;
    };
    let Ok(pointer) = openapi_doc::reference::fragment(reference) else {
        return value;
    };
    openapi_doc::pointer::tokens(&pointer)
        .try_fold(doc, |node, key| node.get(key.as_ref()))
        .unwrap_or(value)
}

fn at<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |node, key| node.get(*key))
}

fn str_at<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    at(value, keys).and_then(Value::as_str)
}

fn map_at<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Mapping> {
    at(value, keys).and_then(Value::as_mapping)
}

fn seq_at<'a>(value: &'a Value, keys: &[&str]) -> &'a [Value] {
    at(value, keys)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// Makes text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::render;

    const CONTRACT: &str = r##"
openapi: 3.0.3
info: { title: T, version: 2.0.0 }
security: [{ bearerAuth: [] }]
tags: [{ name: posts }]
paths:
  /v1/posts/{post_id}:
    parameters:
      - { name: post_id, in: path, required: true, schema: { type: string } }
    patch:
      operationId: update_post
      tags: [posts]
      summary: Edit a post | carefully
      parameters:
        - $ref: "#/components/parameters/Limit"
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/PostEdit" } } }
      responses:
        "200": { $ref: "#/components/responses/Post" }
  /v1/realtime:
    get:
      operationId: connect_realtime
      tags: [posts]
      summary: The channel
      x-dropshot-websocket: {}
      x-agora-frames:
        server: { $ref: "#/components/schemas/ServerFrame" }
      responses:
        default: { description: upgrade }
  /healthz:
    get:
      operationId: get_healthz
      tags: [ops]
      security: []
      responses:
        "204": { description: ok }
components:
  parameters:
    Limit: { name: limit, in: query, schema: { type: integer } }
  responses:
    Post:
      description: a post
      content: { application/json: { schema: { $ref: "#/components/schemas/Post" } } }
  schemas:
    Post: { description: "A post.\nMore.", type: object }
    PostEdit: { type: object }
    ServerFrame: { type: object }
"##;

    #[test]
    fn renders_calls_auth_and_returns() {
        let md = render(CONTRACT).expect("renders");
        assert!(
            md.starts_with("# T 2.0.0 — TypeScript API reference\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "| `update_post`<br>`PATCH /v1/posts/{post_id}` | `client.PATCH(\"/v1/posts/{post_id}\", { params: { path: { post_id }, query: { limit? } }, body: PostEdit })` | bearer | `Post` | Edit a post \\| carefully |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `client.GET(\"/healthz\")` | public | no content |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| `connect_realtime`<br>`GET /v1/realtime` | `connectRealtime(client, { onFrame?, onStateChange?, onEnd?, positions? })` | bearer | `ServerFrame` frames | The channel |"
            ),
            "{md}"
        );
        // Declared tags first, then undeclared ones.
        let posts = md.find("## posts").expect("posts section");
        let ops = md.find("## ops").expect("ops section");
        assert!(posts < ops);
        assert!(md.contains("- `Post` — A post.\n"), "{md}");
    }
}
