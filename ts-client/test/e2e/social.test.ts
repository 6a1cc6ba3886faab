// End-to-end: a friend request and the home feed through the typed client against a real
// server — what a frontend does first with the social API.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { orThrow, type AgoraClient } from "../../src/index.js";
import { signedIn } from "./accounts.js";
import { startServer, type RunningServer } from "./server.js";

const AUTH_KEYS = JSON.stringify(["ts-e2e:ts-client-e2e-signing-secret-0123456789"]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The feed's post ids once it holds `n` posts (fan-out runs in the background). */
async function feedOf(client: AgoraClient, n: number): Promise<string[]> {
  for (let attempt = 0; attempt < 250; attempt += 1) {
    const page = await orThrow(client.GET("/v1/feed", { params: { query: { limit: 50 } } }));
    if (page.items.length >= n) return page.items.map((p) => p.id);
    await sleep(20);
  }
  assert.fail(`the feed never held ${n} posts`);
}

describe("social", () => {
  let server: RunningServer;

  before(async () => {
    server = await startServer({ AGORA_AUTH__KEYS: AUTH_KEYS });
  });
  after(async () => {
    await server?.stop();
  });

  test("a friend request is sent, seen, accepted; friends-only posts then reach the feed", async () => {
    const ann = await signedIn(server.baseUrl, "ann");
    const bob = await signedIn(server.baseUrl, "bob");
    // Bob opens his feed once: an active reader, whom fan-out writes to.
    assert.deepEqual(await feedOf(bob.client, 0), []);

    const sent = await orThrow(ann.client.POST("/v1/friend-requests", { body: { user_id: bob.user.id } }));
    assert.equal(sent.status, "request_sent");
    const incoming = await orThrow(bob.client.GET("/v1/friend-requests", { params: { query: { direction: "incoming" } } }));
    assert.equal(incoming.items.length, 1);
    assert.equal(incoming.items[0]?.from.id, ann.user.id);
    const requestId = incoming.items[0]?.id ?? assert.fail("a request id");
    const accepted = await orThrow(
      bob.client.POST("/v1/friend-requests/{request_id}/accept", { params: { path: { request_id: requestId } } }),
    );
    assert.equal(accepted.status, "friends");

    const post = await orThrow(
      ann.client.POST("/v1/posts", {
        params: { header: { "Idempotency-Key": `ts-${process.pid}-first` } },
        body: { body: "for friends", visibility: "friends" },
      }),
    );
    assert.equal(post.author.id, ann.user.id);
    assert.deepEqual(await feedOf(bob.client, 1), [post.id]);

    // A typed error: liking a post that does not exist.
    const missing = await bob.client.PUT("/v1/posts/{post_id}/like", {
      params: { path: { post_id: "01900000-0000-7000-8000-000000000000" } },
    });
    assert.equal(missing.response?.status, 404);
    assert.equal(missing.error?.error_code, "not_found");

    // Ending the friendship hides the friends-only post at once.
    const removed = await ann.client.DELETE("/v1/friends/{user_id}", { params: { path: { user_id: bob.user.id } } });
    assert.equal(removed.response?.status, 204);
    assert.deepEqual(await feedOf(bob.client, 0), []);
  });
});
