// End-to-end: connectRealtime against a real server — the browser authentication (first `auth`
// frame), live messages, a dropped socket that reconnects and resumes with no gap and no
// duplicate, and `reauth` keeping a socket open past its first token's expiry.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  connectRealtime,
  orThrow,
  type AgoraClient,
  type RealtimeState,
  type Schema,
  type ServerFrame,
  type WebSocketConstructor,
  type WebSocketLike,
} from "../../src/index.js";
import { signedIn } from "./accounts.js";
import { startServer, type RunningServer } from "./server.js";

/** A DM from `from` to `to` (who accepts messages from everyone). */
async function dm(from: AgoraClient, to: { client: AgoraClient; user: Schema<"Me"> }): Promise<string> {
  await orThrow(to.client.PUT("/v1/me/chat-settings", { body: { direct_messages_from: "everyone" } }));
  const conversation = await orThrow(
    from.POST("/v1/conversations", { body: { kind: "direct", member_ids: [to.user.id] } }),
  );
  return conversation.id;
}

async function send(client: AgoraClient, conversation: string, text: string): Promise<void> {
  await orThrow(
    client.POST("/v1/conversations/{conversation_id}/messages", {
      params: { path: { conversation_id: conversation } },
      body: { text, client_message_id: text },
    }),
  );
}

/** The global WebSocket, recording every socket made so a test can drop one. */
function recordingWebSocket(made: WebSocketLike[]): WebSocketConstructor {
  const Native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  assert.ok(Native, "a global WebSocket (Node 20 runs these tests with --experimental-websocket)");
  const Socket: WebSocketConstructor = Native;
  return class {
    constructor(url: string) {
      const socket = new Socket(url);
      made.push(socket);
      return socket;
    }
  } as unknown as WebSocketConstructor;
}

/** Collects frames and states; `until` waits for a condition on them. */
function recorder() {
  const frames: ServerFrame[] = [];
  const states: RealtimeState[] = [];
  const until = async (what: string, check: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) assert.fail(`never: ${what}; frames ${JSON.stringify(frames.map((f) => f.type))}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const messages = () =>
    frames.flatMap((f) => (f.type === "message" ? [`${f.message.sequence}:${f.message.text ?? ""}`] : []));
  return { frames, states, until, messages };
}

describe("realtime", () => {
  let server: RunningServer;

  before(async () => {
    server = await startServer({ AGORA_AUTH__ACCESS_TTL_SECS: "4", AGORA_AUTH__LEEWAY_SECS: "0" });
  });
  after(async () => {
    await server?.stop();
  });

  test("a dropped socket reconnects and resumes: every message once, in order", async () => {
    const ann = await signedIn(server.baseUrl, "ann");
    const bob = await signedIn(server.baseUrl, "bob");
    const conversation = await dm(bob.client, ann);
    const made: WebSocketLike[] = [];
    const r = recorder();
    const channel = connectRealtime(ann.client, {
      WebSocket: recordingWebSocket(made),
      onFrame: (f) => r.frames.push(f),
      onStateChange: (s) => r.states.push(s),
      initialDelayMs: 1_500,
      random: () => 1,
      reauthBeforeMs: 2_000,
    });
    try {
      await r.until("open", () => channel.state === "open");
      await send(bob.client, conversation, "one");
      await r.until("the live message", () => r.messages().length === 1);

      // The network drops (an application close code, as a server's 4001 would be).
      made[0]?.close(4001, "dropped by the test");
      await r.until("reconnecting", () => channel.state === "reconnecting");
      await send(bob.client, conversation, "two");
      await send(bob.client, conversation, "three");
      await r.until("resumed", () => r.frames.some((f) => f.type === "resumed"));
      await send(bob.client, conversation, "four");
      await r.until("four messages", () => r.messages().length === 4);
      assert.deepEqual(r.messages(), ["1:one", "2:two", "3:three", "4:four"]);
      assert.deepEqual(channel.positions(), { [conversation]: 4 });
      assert.equal(made.length, 2, "one reconnect");
    } finally {
      channel.close();
    }
  });

  test("reauth keeps the socket open past its first token's expiry", async () => {
    const ann = await signedIn(server.baseUrl, "ann");
    const first = await ann.client.tokens.getAccessToken();
    const made: WebSocketLike[] = [];
    const r = recorder();
    const channel = connectRealtime(ann.client, {
      WebSocket: recordingWebSocket(made),
      onFrame: (f) => r.frames.push(f),
      reauthBeforeMs: 2_000,
    });
    try {
      await r.until("reauthed", () => r.frames.some((f) => f.type === "reauthed"));
      assert.notEqual(await ann.client.tokens.getAccessToken(), first, "the client's tokens were refreshed");
      // Well past the first token's 4 s: still the one socket, still open.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      assert.equal(channel.state, "open");
      assert.equal(made.length, 1);
      assert.equal(r.frames.filter((f) => f.type === "ready").length, 1);
    } finally {
      channel.close();
    }
  });

  test("close() ends the channel for good", async () => {
    const ann = await signedIn(server.baseUrl, "ann");
    const ends: number[] = [];
    const r = recorder();
    const channel = connectRealtime(ann.client, { onFrame: (f) => r.frames.push(f), onEnd: (e) => ends.push(e.code) });
    await r.until("open", () => channel.state === "open");
    channel.close();
    await r.until("closed", () => channel.state === "closed");
    assert.deepEqual(ends, [1000]);
  });
});
