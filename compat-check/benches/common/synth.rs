//! Synthetic OpenAPI documents for the benchmark: thousands of operations and schemas with heavy
//! `$ref` sharing, `allOf` chains, `oneOf` and reference cycles, written straight as YAML text.

use std::fmt::Write;

/// Size knobs.
pub struct Shape {
    /// Number of component schemas.
    pub schemas: usize,
    /// Number of paths (each has get, put and delete: three operations).
    pub paths: usize,
}

/// The default size: ~3,000 operations and ~6,000 schemas.
pub const LARGE: Shape = Shape {
    schemas: 6_000,
    paths: 1_000,
};

/// Renders a document; `changed` applies a scattering of breaking and harmless edits.
pub fn document(shape: &Shape, changed: bool) -> String {
    let n = shape.schemas;
    let mut s = String::with_capacity(8 << 20);
    let version = if changed { "1.1.0" } else { "1.0.0" };
    let _ = writeln!(
        s,
        "openapi: 3.0.3\ninfo:\n  title: Synthetic\n  version: {version}\npaths:"
    );
    for p in 0..shape.paths {
        // A few operations disappear in the changed document.
        let skip_delete = changed && p % 97 == 0;
        let req = (p * 31) % n;
        let resp = (p * 17 + 3) % n;
        let _ = writeln!(s, "  /v1/things{p}/{{id}}:");
        let _ = writeln!(
            s,
            "    parameters:\n      - name: id\n        in: path\n        required: true\n        schema:\n          type: string\n          format: uuid"
        );
        let _ = writeln!(
            s,
            "    get:\n      operationId: get_thing{p}\n      summary: Fetch thing {p} with its children, labels and the next thing in the chain\n      tags:\n        - things\n      parameters:\n        - name: limit\n          in: query\n          schema:\n            type: integer\n            minimum: 1\n            maximum: {}\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/S{resp}'\n        default:\n          description: error\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/S0'",
            if changed && p % 50 == 0 { 50 } else { 100 }
        );
        let _ = writeln!(
            s,
            "    put:\n      operationId: put_thing{p}\n      summary: Replace thing {p}; the body is validated against the full schema\n      tags:\n        - things\n      requestBody:\n        required: true\n        content:\n          application/json:\n            schema:\n              $ref: '#/components/schemas/S{req}'\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/S{resp}'"
        );
        if !skip_delete {
            let _ = writeln!(
                s,
                "    delete:\n      operationId: delete_thing{p}\n      responses:\n        '204':\n          description: gone"
            );
        }
    }
    let _ = writeln!(s, "components:\n  schemas:");
    for i in 0..n {
        let edited = changed && i % 150 == 7;
        let _ = writeln!(s, "    S{i}:");
        if i % 5 == 4 {
            // allOf chain onto the previous schema, plus own properties.
            let _ = writeln!(
                s,
                "      allOf:\n        - $ref: '#/components/schemas/S{}'\n        - type: object\n          properties:\n            extra{i}:\n              type: string",
                i - 1
            );
            continue;
        }
        if i % 11 == 10 {
            let _ = writeln!(
                s,
                "      oneOf:\n        - $ref: '#/components/schemas/S{}'\n        - $ref: '#/components/schemas/S{}'",
                (i + 1) % n,
                (i + 2) % n
            );
            continue;
        }
        let _ = writeln!(
            s,
            "      type: object\n      description: Schema number {i}, with a description long enough to look real; documents of this size carry prose on most schemas.\n      required:\n        - id\n        - name{}",
            if edited { "\n        - count" } else { "" }
        );
        let _ = writeln!(
            s,
            "      properties:\n        id:\n          type: string\n          format: uuid\n        name:\n          description: The display name, shown in lists and on the detail page.\n          type: string\n          minLength: 1\n          maxLength: {}\n        count:\n          type: integer\n          format: int32\n          minimum: 0\n        state:\n          type: string\n          enum:\n            - open\n            - closed{}",
            if edited { 40 } else { 80 },
            if edited {
                "\n            - archived"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "        created_at:\n          type: string\n          format: date-time\n        next:\n          $ref: '#/components/schemas/S{}'\n        children:\n          type: array\n          maxItems: 100\n          items:\n            $ref: '#/components/schemas/S{}'\n        labels:\n          type: object\n          additionalProperties:\n            type: string",
            (i * 7 + 1) % n,
            (i * 13 + 5) % n
        );
    }
    s
}
