// The session middleware against a fake fetch: bearer token, single-flight refresh on 401,
// replay of the original request (body included), and what a failed refresh does to the session.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AgoraError,
  DEFAULT_REFRESH_PATH,
  createAgoraClient,
  memoryTokenStore,
  type AgoraClient,
  type SessionTokens,
} from "../../src/index.js";

const BASE = "http://agora.test";
const META = {
  service: "agora",
  version: "0.1.0",
  contract_version: "1.0.0",
  build_commit: "unknown",
  deployment_shape: "embedded",
};

interface Seen {
  method: string;
  path: string;
  authorization: string | null;
  body: string;
}

/**
 * A fake Agora: accepts only the current access token, rotates the pair on refresh, and can hold
 * refreshes open (`gate`) so that several 401s overlap with one refresh.
 */
class FakeAgora {
  access = "access-1";
  refresh = "refresh-1";
  generation = 1;
  refreshCalls = 0;
  refreshStatus = 200;
  seen: Seen[] = [];
  #gate: Promise<void> = Promise.resolve();
  #open: () => void = () => {};

  holdRefreshes(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  releaseRefreshes(): void {
    this.#open();
  }

  /** Expires the current access token (the server stops accepting it). */
  expire(): void {
    this.access = `expired-${this.generation}`;
  }

  fetch = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const seen = {
      method: request.method,
      path,
      authorization: request.headers.get("Authorization"),
      body: await request.text(),
    };
    this.seen.push(seen);
    if (path === DEFAULT_REFRESH_PATH) return this.#refresh(seen.body);
    if (seen.authorization !== `Bearer ${this.access}`) {
      return json(401, { error_code: "unauthenticated", message: "token expired", request_id: "r-401" }, {
        "www-authenticate": "Bearer",
      });
    }
    return json(200, path === "/v1/meta" ? META : { echo: seen.body });
  };

  async #refresh(body: string): Promise<Response> {
    this.refreshCalls += 1;
    await this.#gate;
    if (this.refreshStatus !== 200) {
      return json(
        this.refreshStatus,
        { error_code: this.refreshStatus === 503 ? "unavailable" : "unauthenticated", message: "no", request_id: "r-refresh" },
        this.refreshStatus === 503 ? { "retry-after": "3" } : {},
      );
    }
    const { refresh_token: presented } = JSON.parse(body) as { refresh_token: string };
    if (presented !== this.refresh) {
      return json(401, { error_code: "unauthenticated", message: "refresh token reused", request_id: "r-reuse" });
    }
    this.generation += 1;
    this.access = `access-${this.generation}`;
    this.refresh = `refresh-${this.generation}`;
    return json(200, { access_token: this.access, refresh_token: this.refresh });
  }

  calls(path: string): Seen[] {
    return this.seen.filter((s) => s.path === path);
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function setup(initial: SessionTokens | null = { accessToken: "access-1", refreshToken: "refresh-1" }) {
  const server = new FakeAgora();
  const tokens = memoryTokenStore(initial ?? undefined);
  const client = createAgoraClient({ baseUrl: BASE, tokens, fetch: server.fetch });
  return { server, tokens, client };
}

/** The contract has no POST yet; this reaches the same code path with a body to replay. */
function postEcho(client: AgoraClient, body: object) {
  const post = client.POST as unknown as (
    url: string,
    init: { body: object },
  ) => Promise<{ data?: unknown; error?: AgoraError; response: Response | undefined }>;
  return post("/v1/echo", { body });
}

describe("session", () => {
  test("sends the access token as a bearer token", async () => {
    const { server, client } = setup();
    const { data } = await client.GET("/v1/meta");
    assert.equal(data?.service, "agora");
    assert.equal(server.seen[0]?.authorization, "Bearer access-1");
  });

  test("sends no Authorization header when signed out", async () => {
    const { server, client } = setup(null);
    await client.GET("/healthz");
    assert.equal(server.seen[0]?.authorization, null);
  });

  test("concurrent 401s share one refresh, then every request is replayed with the new token", async () => {
    const { server, tokens, client } = setup();
    server.expire();
    server.holdRefreshes();
    const pending = [
      client.GET("/v1/meta"),
      postEcho(client, { title: "first" }),
      client.GET("/v1/meta"),
      postEcho(client, { title: "second" }),
      client.GET("/v1/meta"),
    ] as const;
    // Let every request reach the server and get its 401 while the refresh is held open.
    while (server.refreshCalls === 0 || server.seen.length < 6) await new Promise((r) => setTimeout(r, 1));
    server.releaseRefreshes();
    const results = await Promise.all(pending);

    assert.equal(server.refreshCalls, 1, "exactly one refresh");
    for (const result of results) assert.equal(result.error, undefined);
    assert.equal(results[0]?.data?.deployment_shape, "embedded");
    assert.deepEqual(results[1]?.data, { echo: JSON.stringify({ title: "first" }) });
    assert.deepEqual(results[3]?.data, { echo: JSON.stringify({ title: "second" }) });
    const replays = server.seen.filter((s) => s.authorization === "Bearer access-2");
    assert.equal(replays.length, 5, "each request re-sent once with the new token");
    assert.deepEqual(
      server.calls("/v1/echo").map((s) => s.body),
      [
        JSON.stringify({ title: "first" }),
        JSON.stringify({ title: "second" }),
        JSON.stringify({ title: "first" }),
        JSON.stringify({ title: "second" }),
      ],
      "the POST bodies are re-sent intact",
    );
    assert.deepEqual(server.calls(DEFAULT_REFRESH_PATH)[0]?.body, JSON.stringify({ refresh_token: "refresh-1" }));
    assert.equal(await tokens.getAccessToken(), "access-2");
    assert.equal(await tokens.getRefreshToken(), "refresh-2");
  });

  test("a 401 that arrives after another caller refreshed reuses the new token", async () => {
    const { server, client } = setup();
    server.expire();
    await client.GET("/v1/meta"); // refreshes to access-2
    // A request that went out with the old token before the refresh finished:
    const stale = createAgoraClient({
      baseUrl: BASE,
      fetch: server.fetch,
      tokens: {
        // Reads access-1 for the request, then sees the store's new token on the 401.
        getAccessToken: (() => {
          let reads = 0;
          return () => (reads++ === 0 ? "access-1" : "access-2");
        })(),
        getRefreshToken: () => "refresh-2",
        setTokens: () => assert.fail("must not refresh again"),
        clear: () => assert.fail("must not clear"),
      },
    });
    const { data, error } = await stale.GET("/v1/meta");
    assert.equal(error, undefined);
    assert.equal(data?.service, "agora");
    assert.equal(server.refreshCalls, 1);
  });

  test("a refused refresh clears the session and every caller gets unauthenticated", async () => {
    const { server, tokens, client } = setup();
    server.expire();
    server.refreshStatus = 401;
    const results = await Promise.all([client.GET("/v1/meta"), client.GET("/v1/meta"), postEcho(client, { a: 1 })]);
    assert.equal(server.refreshCalls, 1);
    for (const { data, error } of results) {
      assert.equal(data, undefined);
      assert.ok(error instanceof AgoraError);
      assert.equal(error.error_code, "unauthenticated");
      assert.equal(error.status, 401);
    }
    assert.equal(await tokens.getAccessToken(), null);
    assert.equal(await tokens.getRefreshToken(), null);
  });

  test("an unreachable refresh endpoint keeps the session and surfaces unavailable", async () => {
    const { server, tokens, client } = setup();
    server.expire();
    server.refreshStatus = 503;
    const { error } = await client.GET("/v1/meta");
    assert.equal(error?.error_code, "unavailable");
    assert.equal(error?.retryAfter, 3);
    assert.equal(await tokens.getRefreshToken(), "refresh-1", "the session survives a transient failure");
  });

  test("no refresh token: unauthenticated, no refresh call, session cleared", async () => {
    const server = new FakeAgora();
    server.expire();
    const tokens = memoryTokenStore();
    await tokens.setTokens({ accessToken: "access-1", refreshToken: "" });
    const client = createAgoraClient({
      baseUrl: BASE,
      fetch: server.fetch,
      tokens: { ...tokens, getRefreshToken: () => null },
    });
    const { error } = await client.GET("/v1/meta");
    assert.equal(error?.error_code, "unauthenticated");
    assert.equal(server.refreshCalls, 0);
    assert.equal(await tokens.getAccessToken(), null);
  });

  test("a replay that is still 401 is returned, not refreshed again", async () => {
    const server = new FakeAgora();
    // The server rejects even fresh tokens (e.g. the account was just disabled).
    const rejectAll = async (request: Request) => {
      if (new URL(request.url).pathname !== DEFAULT_REFRESH_PATH) server.expire();
      return server.fetch(request);
    };
    const tokens = memoryTokenStore({ accessToken: "access-1", refreshToken: "refresh-1" });
    const client = createAgoraClient({ baseUrl: BASE, fetch: rejectAll, tokens });
    const { error } = await client.GET("/v1/meta");
    assert.equal(error?.error_code, "unauthenticated");
    assert.equal(error?.request_id, "r-401");
    assert.equal(server.refreshCalls, 1);
    assert.equal(server.calls("/v1/meta").length, 2, "sent once, replayed once");
  });

  test("a 401 to a request without a token does not refresh", async () => {
    const { server, client } = setup(null);
    const { error } = await client.GET("/v1/meta");
    assert.equal(error?.error_code, "unauthenticated");
    assert.equal(server.refreshCalls, 0);
  });

  test("an injected refresh function replaces the HTTP one", async () => {
    const server = new FakeAgora();
    server.expire();
    const calls: string[] = [];
    const client = createAgoraClient({
      baseUrl: BASE,
      fetch: server.fetch,
      tokens: memoryTokenStore({ accessToken: "access-1", refreshToken: "custom-refresh" }),
      refresh: async (refreshToken, context) => {
        calls.push(`${refreshToken}@${context.baseUrl}`);
        server.access = "custom-access";
        return { accessToken: "custom-access", refreshToken: "custom-refresh-2" };
      },
    });
    const { error } = await client.GET("/v1/meta");
    assert.equal(error, undefined);
    assert.deepEqual(calls, [`custom-refresh@${BASE}`]);
    assert.equal(server.refreshCalls, 0);
  });

  test("login, register and refresh_session get no bearer token, and their 401 does not refresh", async () => {
    const { server, tokens, client } = setup();
    server.expire(); // a stale session is still stored
    const login = await client.POST("/v1/sessions", { body: { login: "ann", password: "wrong password" } });
    const register = await client.POST("/v1/accounts", {
      body: { handle: "ann", email: "ann@example.com", password: "a long password", display_name: "Ann" },
    });
    for (const { error } of [login, register]) {
      assert.equal(error?.error_code, "unauthenticated");
      assert.equal(error?.message, "token expired", "the operation's own answer, not a refresh failure");
    }
    assert.deepEqual(
      server.seen.map((s) => [s.path, s.authorization]),
      [
        ["/v1/sessions", null],
        ["/v1/accounts", null],
      ],
    );
    assert.equal(server.refreshCalls, 0);
    assert.equal(await tokens.getRefreshToken(), "refresh-1", "the stored session is left alone");
  });

  test("a caller's own Authorization header is sent as is", async () => {
    const { server, client } = setup();
    await client.GET("/v1/meta", { headers: { Authorization: "Bearer one-off" } });
    assert.equal(server.seen[0]?.authorization, "Bearer one-off");
    assert.equal(server.refreshCalls, 0);
  });
});
