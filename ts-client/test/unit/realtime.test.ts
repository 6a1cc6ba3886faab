// connectRealtime against a scripted fake WebSocket: the `auth` frame first, `resume` after
// `ready`, no message delivered twice, which close codes reconnect, renew or end, and the
// exponential backoff ceiling (the jitter pinned to its ceiling).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connectRealtime,
  memoryTokenStore,
  type AgoraClient,
  type ClientFrame,
  type RealtimeEnd,
  type ServerFrame,
  type WebSocketConstructor,
  type WebSocketLike,
} from "../../src/index.js";

class FakeSocket implements WebSocketLike {
  readyState = 0;
  sent: ClientFrame[] = [];
  closedWith: number | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }

  close(code = 1005): void {
    this.closedWith = code;
    this.serverCloses(code);
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(frame: ServerFrame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  serverCloses(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function fakeWebSocket(made: FakeSocket[]): WebSocketConstructor {
  return class {
    constructor(url: string) {
      const socket = new FakeSocket(url);
      made.push(socket);
      return socket;
    }
  } as unknown as WebSocketConstructor;
}

/** Just what connectRealtime uses of a client. */
function fakeClient(): { client: AgoraClient; refreshes: () => number } {
  let refreshes = 0;
  const tokens = memoryTokenStore({ accessToken: "access-1", refreshToken: "refresh-1" });
  const client = {
    baseUrl: "https://agora.test",
    tokens,
    refreshAccessToken: async () => {
      refreshes += 1;
      const token = `access-${refreshes + 1}`;
      await tokens.setTokens({ accessToken: token, refreshToken: `refresh-${refreshes + 1}` });
      return token;
    },
  } as unknown as AgoraClient;
  return { client, refreshes: () => refreshes };
}

/** The `i`th socket made (asserted to exist). */
function nth(made: FakeSocket[], i: number): FakeSocket {
  const socket = made[i];
  assert.ok(socket, `socket ${i} was made`);
  return socket;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

const ready = (): ServerFrame => ({
  type: "ready",
  user_id: "00000000-0000-7000-8000-000000000001",
  connection_id: "00000000-0000-7000-8000-000000000002",
  heartbeat_interval_secs: 25,
});

function message(conversation: string, sequence: number): ServerFrame {
  return {
    type: "message",
    message: {
      id: `00000000-0000-7000-8000-${String(sequence).padStart(12, "0")}`,
      conversation_id: conversation,
      sender: { id: "00000000-0000-7000-8000-000000000003", handle: "ann", display_name: "Ann" },
      sequence,
      text: `m${sequence}`,
      client_message_id: `c${sequence}`,
      created_at: "2026-12-04T00:00:00Z",
    },
  };
}

const CONVERSATION = "00000000-0000-7000-8000-00000000000c";

describe("connectRealtime", () => {
  test("authenticates with the first frame, on the wss URL of the base URL", async () => {
    const made: FakeSocket[] = [];
    const { client } = fakeClient();
    const conn = connectRealtime(client, { WebSocket: fakeWebSocket(made) });
    await settle();
    assert.equal(made.length, 1);
    assert.equal(nth(made, 0).url, "wss://agora.test/v1/realtime");
    nth(made, 0).open();
    assert.deepEqual(nth(made, 0).sent, [{ type: "auth", token: "access-1" }]);
    assert.equal(conn.state, "connecting");
    nth(made, 0).deliver(ready());
    assert.equal(conn.state, "open");
    conn.close();
    assert.equal(conn.state, "closed");
  });

  test("drops messages already held, and resumes from them after a reconnect", async () => {
    const made: FakeSocket[] = [];
    const frames: ServerFrame[] = [];
    const { client } = fakeClient();
    const conn = connectRealtime(client, {
      WebSocket: fakeWebSocket(made),
      initialDelayMs: 1,
      onFrame: (f) => frames.push(f),
    });
    await settle();
    nth(made, 0).open();
    nth(made, 0).deliver(ready());
    assert.equal(nth(made, 0).sent.length, 1, "nothing to resume on a first connect");
    nth(made, 0).deliver(message(CONVERSATION, 1));
    nth(made, 0).deliver(message(CONVERSATION, 2));
    nth(made, 0).deliver(message(CONVERSATION, 2));
    assert.deepEqual(conn.positions(), { [CONVERSATION]: 2 });

    nth(made, 0).serverCloses(1006);
    assert.equal(conn.state, "reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(made.length, 2, "a dropped socket reconnects");
    nth(made, 1).open();
    nth(made, 1).deliver(ready());
    assert.deepEqual(nth(made, 1).sent, [
      { type: "auth", token: "access-1" },
      { type: "resume", positions: [{ conversation_id: CONVERSATION, sequence: 2 }] },
    ]);
    // The replay after the resume repeats nothing already delivered.
    nth(made, 1).deliver(message(CONVERSATION, 2));
    nth(made, 1).deliver(message(CONVERSATION, 3));
    const sequences = frames.flatMap((f) => (f.type === "message" ? [f.message.sequence] : []));
    assert.deepEqual(sequences, [1, 2, 3]);
    conn.close();
  });

  test("positions given at connect are resumed from the first ready", async () => {
    const made: FakeSocket[] = [];
    const { client } = fakeClient();
    const conn = connectRealtime(client, { WebSocket: fakeWebSocket(made), positions: { [CONVERSATION]: 7 } });
    await settle();
    nth(made, 0).open();
    nth(made, 0).deliver(ready());
    assert.deepEqual(nth(made, 0).sent[1], {
      type: "resume",
      positions: [{ conversation_id: CONVERSATION, sequence: 7 }],
    });
    conn.close();
  });

  test("4003 (token expired) renews the token before reconnecting", async () => {
    const made: FakeSocket[] = [];
    const { client, refreshes } = fakeClient();
    const conn = connectRealtime(client, { WebSocket: fakeWebSocket(made), initialDelayMs: 1 });
    await settle();
    nth(made, 0).open();
    nth(made, 0).deliver(ready());
    nth(made, 0).serverCloses(4003, "token expired");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(refreshes(), 1);
    nth(made, 1).open();
    assert.deepEqual(nth(made, 1).sent[0], { type: "auth", token: "access-2" });
    conn.close();
  });

  for (const code of [1007, 1009]) {
    test(`${code} ends the channel without a reconnect`, async () => {
      const made: FakeSocket[] = [];
      const ends: RealtimeEnd[] = [];
      const { client } = fakeClient();
      const conn = connectRealtime(client, {
        WebSocket: fakeWebSocket(made),
        initialDelayMs: 1,
        onEnd: (e) => ends.push(e),
      });
      await settle();
      nth(made, 0).open();
      nth(made, 0).serverCloses(code, "refused");
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(made.length, 1);
      assert.equal(conn.state, "closed");
      assert.deepEqual(ends, [{ code, reason: "refused" }]);
    });
  }

  test("1008 twice before a ready ends the session instead of looping", async () => {
    const made: FakeSocket[] = [];
    const ends: RealtimeEnd[] = [];
    const { client, refreshes } = fakeClient();
    connectRealtime(client, { WebSocket: fakeWebSocket(made), initialDelayMs: 1, onEnd: (e) => ends.push(e) });
    await settle();
    nth(made, 0).open();
    nth(made, 0).serverCloses(1008, "revoked");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(refreshes(), 1, "the first refusal renews the token");
    nth(made, 1).open();
    nth(made, 1).serverCloses(1008, "revoked");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(made.length, 2);
    assert.deepEqual(ends, [{ code: 1008, reason: "revoked" }]);
  });

  test("reconnect delays double up to the ceiling, and reset after a ready", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const made: FakeSocket[] = [];
    const { client } = fakeClient();
    const conn = connectRealtime(client, {
      WebSocket: fakeWebSocket(made),
      initialDelayMs: 100,
      maxDelayMs: 350,
      // The jitter at its ceiling, so each delay is exactly the ceiling.
      random: () => 1,
    });
    await settle();
    const waitsBeforeReconnect = async (ceiling: number) => {
      const before = made.length;
      nth(made, before - 1).serverCloses(1006);
      t.mock.timers.tick(ceiling - 1);
      await settle();
      assert.equal(made.length, before, `not before ${ceiling} ms`);
      t.mock.timers.tick(1);
      await settle();
      assert.equal(made.length, before + 1, `at ${ceiling} ms`);
    };
    await waitsBeforeReconnect(100);
    await waitsBeforeReconnect(200);
    await waitsBeforeReconnect(350);
    await waitsBeforeReconnect(350);
    nth(made, made.length - 1).open();
    nth(made, made.length - 1).deliver(ready());
    await waitsBeforeReconnect(100);
    conn.close();
  });
});
