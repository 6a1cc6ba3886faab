//! The generator's output, reviewed through insta snapshots, and its refusals: every unsupported
//! construct fails with a message naming the JSON pointer in the document.

use agora_codegen::{Options, generate};

fn kitchen_options() -> Options {
    Options {
        service_trait: "KitchenService".into(),
        api_trait: "KitchenApi".into(),
    }
}

#[test]
fn kitchen_sink_snapshot() {
    let source = include_str!("fixtures/kitchen_sink.yaml");
    let code =
        generate("kitchen_sink.yaml", source, &kitchen_options()).expect("the fixture generates");
    insta::assert_snapshot!("kitchen_sink", code);
}

#[test]
fn contract_snapshot() {
    let source = include_str!("../../openapi.yaml");
    let code =
        generate("openapi.yaml", source, &Options::default()).expect("the contract generates");
    insta::assert_snapshot!("contract", code);
}

#[test]
fn generation_is_deterministic() {
    let source = include_str!("fixtures/kitchen_sink.yaml");
    let a = generate("k", source, &kitchen_options()).expect("generates");
    let b = generate("k", source, &kitchen_options()).expect("generates");
    assert_eq!(a, b);
}

/// A minimal valid document with `{op}` spliced in as the operation and `{schemas}` as extra schemas.
fn doc(paths: &str, schemas: &str) -> String {
    format!(
        r##"openapi: 3.0.3
info: {{title: T, version: 1.0.0}}
paths:
{paths}
components:
  responses:
    E:
      description: e
      content:
        application/json:
          schema: {{$ref: "#/components/schemas/ApiError"}}
  schemas:
    ApiError:
      type: object
      required: [error_code, message, request_id]
      properties:
        error_code: {{type: string}}
        message: {{type: string}}
        request_id: {{type: string}}
{schemas}"##
    )
}

fn get(extra: &str, response_schema: &str) -> String {
    format!(
        r##"  /x:
    get:
      operationId: get_x
{extra}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {response_schema}
        "4XX": {{$ref: "#/components/responses/E"}}"##
    )
}

/// A public WebSocket channel whose frames are [`FRAMES`].
fn channel() -> String {
    r##"  /ws:
    get:
      operationId: ws
      security: []
      x-dropshot-websocket: {}
      x-agora-frames:
        client: {$ref: "#/components/schemas/In"}
        server: {$ref: "#/components/schemas/Ping"}
      responses:
        "101": {description: upgrade}
        "4XX": {$ref: "#/components/responses/E"}"##
        .to_owned()
}

/// Client frames with a policy: `say` spends `chat` and is gated by `chat`, `ping` has none.
const FRAMES: &str = r##"    In:
      oneOf:
        - $ref: "#/components/schemas/Ping"
        - $ref: "#/components/schemas/Say"
      discriminator:
        propertyName: type
        mapping:
          ping: "#/components/schemas/Ping"
          say: "#/components/schemas/Say"
    Ping:
      type: object
      required: [type]
      properties:
        type: {type: string, enum: [ping]}
    Say:
      x-agora-rate-limit: chat
      x-agora-feature: chat
      type: object
      required: [type, text]
      properties:
        type: {type: string, enum: [say]}
        text: {type: string}"##;

#[test]
fn client_frame_policies_come_from_the_frame_schemas() {
    let code = generate("case.yaml", &doc(&channel(), FRAMES), &Options::default())
        .expect("the channel generates");
    let code: String = code.split_whitespace().collect();
    for expected in [
        r#"Self::Say(_)=>{&::agora_api::rt::FramePolicy{name:"say",rate_limit:Some("chat"),feature:Some("chat"),}}"#,
        r#"Self::Ping(_)=>{&::agora_api::rt::FramePolicy{name:"ping",rate_limit:None,feature:None,}}"#,
        r#"pubconstRATE_LIMIT_CLASSES:&[&str]=&["chat"]"#,
        r#"pubconstFEATURES:&[&str]=&["chat"]"#,
    ] {
        assert!(code.contains(expected), "missing {expected} in\n{code}");
    }
}

#[test]
fn unsupported_constructs_name_their_pointer() {
    let ok_schema = r#"{type: string}"#;
    let cases: Vec<(&str, String)> = vec![
        ("openapi 3.1", doc(&get("", ok_schema), "").replace("3.0.3", "3.1.0")),
        ("not yaml", "openapi: [".to_owned()),
        ("unknown keyword", doc(&get("", r#"{not: {type: string}}"#), "")),
        ("dangling ref", doc(&get("", r##"{$ref: "#/components/schemas/Nope"}"##), "")),
        ("remote ref", doc(&get("", r#"{$ref: "other.yaml#/X"}"#), "")),
        ("ref siblings", doc(&get("", r##"{$ref: "#/components/schemas/ApiError", maxLength: 3}"##), "")),
        ("unsupported format", doc(&get("", r#"{type: string, format: ipv4}"#), "")),
        ("invalid pattern", doc(&get("", r#"{type: string, pattern: "(["}"#), "")),
        ("json schema exclusive bound", doc(&get("", r#"{type: integer, exclusiveMinimum: 3}"#), "")),
        (
            "array query parameter",
            doc(&get("      parameters:\n        - {name: q, in: query, schema: {type: array, items: {type: string}}}", ok_schema), ""),
        ),
        ("cookie parameter", doc(&get("      parameters:\n        - {name: q, in: cookie, schema: {type: string}}", ok_schema), "")),
        ("parameter style", doc(&get("      parameters:\n        - {name: q, in: query, style: pipeDelimited, schema: {type: string}}", ok_schema), "")),
        ("camelCase operationId", doc(&get("", ok_schema).replace("get_x", "getX"), "")),
        ("missing operationId", doc(&get("", ok_schema).replace("      operationId: get_x\n", ""), "")),
        ("path variable without parameter", doc(&get("", ok_schema).replace("/x:", "/x/{id}:"), "")),
        ("optional auth", doc(&get("      security: [{}]", ok_schema), "")),
        ("body limit not a number", doc(&get("      x-agora-body-max-bytes: lots", ok_schema), "")),
        (
            "error response not ApiError",
            doc(&get("", ok_schema).replace(r##""4XX": {$ref: "#/components/responses/E"}"##, r#""404": {description: x, content: {application/json: {schema: {type: string}}}}"#), ""),
        ),
        ("default response", doc(&get("", ok_schema).replace("\"4XX\"", "default"), "")),
        ("missing ApiError", doc(&get("", ok_schema), "").replace("    ApiError:", "    Other:")),
        (
            "optional request body",
            doc(
                "  /x:\n    post:\n      operationId: post_x\n      requestBody: {content: {application/json: {schema: {type: object}}}}\n      responses:\n        \"204\": {description: ok}",
                "",
            ),
        ),
        (
            "form request body",
            doc(
                "  /x:\n    post:\n      operationId: post_x\n      requestBody: {required: true, content: {application/x-www-form-urlencoded: {schema: {type: object}}}}\n      responses:\n        \"204\": {description: ok}",
                "",
            ),
        ),
        ("role on a public operation", doc(&get("      x-agora-role: admin", ok_schema), "")),
        ("misspelt policy extension", doc(&get("      x-agora-rol: admin", ok_schema), "")),
        ("rate-limit class not snake_case", doc(&get("      x-agora-rate-limit: Write", ok_schema), "")),
        ("feature flag not a string", doc(&get("      x-agora-feature: [a]", ok_schema), "")),
        (
            "frames on an HTTP operation",
            doc(
                &get("      x-agora-frames: {client: {$ref: '#/components/schemas/Ok'}, server: {$ref: '#/components/schemas/Ok'}}", ok_schema),
                "",
            ),
        ),
        (
            "close codes on an HTTP operation",
            doc(
                &get("      x-agora-close-codes: [{code: 4000, name: full, description: x}]", ok_schema),
                "",
            ),
        ),
        (
            "role outside the Role enum",
            doc(
                &get("      security: [{b: []}]\n      x-agora-role: owner", ok_schema),
                "    Role: {type: string, enum: [user, admin]}",
            ),
        ),
        (
            "authenticated write without a rate-limit class",
            doc(
                "  /x:\n    delete:\n      operationId: delete_x\n      security: [{b: []}]\n      responses:\n        \"204\": {description: ok}",
                "",
            ),
        ),
        (
            "unknown client frame extension",
            doc(&channel(), FRAMES).replace("      x-agora-feature: chat\n", "      x-agora-gate: chat\n"),
        ),
        (
            "client frame rate-limit class not snake_case",
            doc(&channel(), FRAMES).replace("x-agora-rate-limit: chat", "x-agora-rate-limit: Chat"),
        ),
        (
            "client frame branch not a ref",
            doc(&channel(), FRAMES)
                .replace("        - $ref: \"#/components/schemas/Ping\"", "        - {type: object}")
                .replace(&FRAMES[FRAMES.find("      discriminator").unwrap_or(0)..FRAMES.find("    Ping:").unwrap_or(0)], ""),
        ),
        (
            "api key scheme",
            doc(&get("", ok_schema), "").replace("components:\n", "components:\n  securitySchemes:\n    k: {type: apiKey, in: header, name: X-Key}\n"),
        ),
    ];
    let mut report = String::new();
    for (name, source) in cases {
        let result = generate("case.yaml", &source, &Options::default());
        let message = match result {
            Ok(_) => panic!("case {name:?} generated code; it must be refused"),
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("{name}:\n  {message}\n"));
    }
    insta::assert_snapshot!("refusals", report);
}
