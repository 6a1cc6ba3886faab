// End-to-end: the typed client against a real server, for every operation the contract has today
// and the error mapping of answers that come from Dropshot itself.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AgoraError, createAgoraClient, orThrow, type AgoraClient } from "../../src/index.js";
import { REPO_ROOT, startServer, type RunningServer } from "./server.js";

/** Reaches routes the contract does not have: the typed client rightly refuses them at compile time. */
type UntypedCall = (
  url: string,
  init?: object,
) => Promise<{ data?: unknown; error?: AgoraError; response: Response | undefined }>;

describe("against a running server", () => {
  let server: RunningServer;
  let client: AgoraClient;

  before(async () => {
    server = await startServer();
    client = createAgoraClient({ baseUrl: server.baseUrl });
  });
  after(async () => {
    await server?.stop();
  });

  test("GET /v1/meta describes the deployment", async () => {
    const contract = await readFile(join(REPO_ROOT, "openapi.yaml"), "utf8");
    const contractVersion = /^info:\n(?:\s+.*\n)*?\s+version:\s*(\S+)/m.exec(contract)?.[1];
    const meta = await orThrow(client.GET("/v1/meta"));
    assert.equal(meta.service, "agora");
    assert.equal(meta.contract_version, contractVersion);
    assert.ok(["embedded", "cluster"].includes(meta.deployment_shape));
    assert.equal(typeof meta.build_commit, "string");
  });

  test("GET /healthz and /readyz", async () => {
    const health = await client.GET("/healthz");
    assert.equal(health.error, undefined);
    assert.deepEqual(health.data, { status: "ok" });
    const ready = await client.GET("/readyz");
    assert.deepEqual(ready.data, { status: "ready" });
    assert.equal(ready.response?.status, 200);
  });

  test("GET /metrics as text", async () => {
    const { data, error } = await client.GET("/metrics", { parseAs: "text" });
    assert.equal(error, undefined);
    assert.match(data ?? "", /http_requests_total/);
  });

  test("an unknown route maps Dropshot's 404 (no error_code) to not_found", async () => {
    const { data, error, response } = await (client.GET as unknown as UntypedCall)("/v1/no-such-route");
    assert.equal(data, undefined);
    assert.ok(error instanceof AgoraError);
    assert.equal(error.status, 404);
    assert.equal(error.error_code, "not_found");
    assert.equal(error.message, "Not Found");
    assert.ok(error.request_id, "the request id is kept");
    assert.equal(error.request_id, response?.headers.get("x-request-id"));
    assert.deepEqual(error.details, []);
    assert.equal(error.retryAfter, undefined);
  });

  test("a wrong method maps to method_not_allowed", async () => {
    const { error } = await (client.POST as unknown as UntypedCall)("/v1/meta", { body: {} });
    assert.equal(error?.status, 405);
    assert.equal(error?.error_code, "method_not_allowed");
  });

  test("a closed port maps to unavailable with status 0", async () => {
    const closed = createAgoraClient({ baseUrl: "http://127.0.0.1:9" });
    const { error } = await closed.GET("/healthz");
    assert.equal(error?.status, 0);
    assert.equal(error?.error_code, "unavailable");
  });
});
