// Error mapping: every kind of non-2xx body becomes a complete AgoraError.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AgoraError, codeForStatus, createAgoraClient, parseRetryAfter } from "../../src/index.js";

function respond(status: number, body: string, headers: Record<string, string> = {}) {
  return createAgoraClient({
    baseUrl: "http://agora.test",
    fetch: async () => new Response(body, { status, headers }),
  });
}

describe("error mapping", () => {
  test("an ApiError body keeps its fields, details and Retry-After", async () => {
    const body = {
      error_code: "invalid_request",
      message: "2 fields are invalid",
      request_id: "req-1",
      details: [
        { location: "body", pointer: "/title", rule: "maxLength", message: "too long" },
        { location: "query", pointer: "/limit", rule: "maximum", message: "too big" },
      ],
    };
    const client = respond(400, JSON.stringify(body), { "content-type": "application/json" });
    const { data, error } = await client.GET("/v1/meta");
    assert.equal(data, undefined);
    assert.ok(error instanceof AgoraError);
    assert.equal(error.status, 400);
    assert.equal(error.error_code, "invalid_request");
    assert.equal(error.message, "2 fields are invalid");
    assert.equal(error.request_id, "req-1");
    assert.deepEqual(error.details, body.details);
    assert.equal(error.retryAfter, undefined);
  });

  test("429 carries retryAfter in seconds", async () => {
    const body = { error_code: "rate_limited", message: "slow down", request_id: "req-2" };
    const client = respond(429, JSON.stringify(body), { "retry-after": "7" });
    const { error } = await client.GET("/v1/meta");
    assert.equal(error?.error_code, "rate_limited");
    assert.equal(error?.retryAfter, 7);
  });

  test("Dropshot's own 404 (no error_code) maps to not_found by status", async () => {
    const client = respond(404, JSON.stringify({ request_id: "req-3", message: "Not Found" }));
    const { error } = await client.GET("/v1/meta");
    assert.equal(error?.status, 404);
    assert.equal(error?.error_code, "not_found");
    assert.equal(error?.request_id, "req-3");
    assert.equal(error?.message, "Not Found");
  });

  test("a proxy's HTML 502 becomes unavailable, request id from the header", async () => {
    const client = respond(502, "<html><body>Bad Gateway</body></html>", {
      "content-type": "text/html",
      "x-request-id": "edge-9",
    });
    const { error } = await client.GET("/v1/meta");
    assert.equal(error?.status, 502);
    assert.equal(error?.error_code, "unavailable");
    assert.equal(error?.request_id, "edge-9");
    assert.deepEqual(error?.details, []);
  });

  test("a plain-text 500 becomes internal", async () => {
    const { error } = await respond(500, "boom").GET("/v1/meta");
    assert.equal(error?.error_code, "internal");
    assert.equal(error?.status, 500);
  });

  test("an empty error body still yields a code and message", async () => {
    const { error } = await respond(503, "", { "content-length": "0", "retry-after": "1" }).GET("/readyz");
    assert.equal(error?.error_code, "unavailable");
    assert.equal(error?.retryAfter, 1);
    assert.match(error?.message ?? "", /503/);
  });

  test("no response at all becomes unavailable with status 0", async () => {
    const client = createAgoraClient({
      baseUrl: "http://agora.test",
      fetch: async () => {
        throw new TypeError("fetch failed");
      },
    });
    const { error, response } = await client.GET("/v1/meta");
    assert.equal(response, undefined);
    assert.equal(error?.status, 0);
    assert.equal(error?.error_code, "unavailable");
    assert.ok(error?.cause instanceof TypeError);
  });

  test("an abort is rethrown, not turned into an error value", async () => {
    const client = createAgoraClient({
      baseUrl: "http://agora.test",
      fetch: async () => {
        throw new DOMException("aborted", "AbortError");
      },
    });
    await assert.rejects(client.GET("/v1/meta"), { name: "AbortError" });
  });

  test("codeForStatus and parseRetryAfter", () => {
    assert.equal(codeForStatus(405), "method_not_allowed");
    assert.equal(codeForStatus(413), "payload_too_large");
    assert.equal(codeForStatus(418), "invalid_request");
    assert.equal(codeForStatus(504), "unavailable");
    assert.equal(codeForStatus(501), "internal");
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter(" 30 "), 30);
    assert.equal(parseRetryAfter("soon"), undefined);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:10 GMT", now), 10);
    assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
  });
});
