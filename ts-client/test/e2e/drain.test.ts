// End-to-end: a draining server (SIGTERM with AGORA_HTTP__SHUTDOWN_DRAIN_SECS) answers /readyz
// with a typed 503 + Retry-After while it keeps serving everything else.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AgoraError, createAgoraClient } from "../../src/index.js";
import { startServer, type RunningServer } from "./server.js";

let server: RunningServer;

before(async () => {
  server = await startServer({ AGORA_HTTP__SHUTDOWN_DRAIN_SECS: "30" });
});
after(async () => {
  await server?.stop();
});

test("while draining, /readyz is a typed 503 with retryAfter and other routes still answer", async () => {
  const client = createAgoraClient({ baseUrl: server.baseUrl });
  server.process.kill("SIGTERM");

  // The signal is handled asynchronously: poll until readiness flips.
  let result = await client.GET("/readyz");
  const deadline = Date.now() + 5_000;
  while (result.error === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    result = await client.GET("/readyz");
  }
  const { error, response } = result;
  assert.ok(error instanceof AgoraError, `expected an error, server log:\n${server.log()}`);
  assert.equal(error.status, 503);
  assert.equal(error.error_code, "unavailable");
  assert.equal(error.retryAfter, 1);
  assert.match(error.message, /shutting down/);
  assert.equal(error.request_id, response?.headers.get("x-request-id"));

  const meta = await client.GET("/v1/meta");
  assert.equal(meta.error, undefined, "the server keeps answering during the drain");
  assert.equal(meta.data?.service, "agora");
});
