// End-to-end: the identity operations (register, login, me, refresh_session, logout) through the
// typed client against a real server, including the session middleware's refresh on an expired
// access token (a server with a 1-second access TTL and no leeway).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  AgoraError,
  DEFAULT_REFRESH_PATH,
  KNOWN_ERROR_CODES,
  createAgoraClient,
  memoryTokenStore,
  orThrow,
  type AgoraClient,
  type KnownErrorCode,
  type Schema,
  type TokenStore,
} from "../../src/index.js";
import { REPO_ROOT, startServer, type RunningServer } from "./server.js";

/** A signing key of our own (`kid:secret`, secret ≥ 32 bytes), rather than the development key. */
const AUTH_KEYS = JSON.stringify(["ts-e2e:ts-client-e2e-signing-secret-0123456789"]);

let handles = 0;
/** A handle no other test used (3 to 30 letters, digits or underscores). */
function newHandle(prefix: string): string {
  handles += 1;
  return `${prefix}_${process.pid}_${handles}`;
}

function passwordOf(handle: string): string {
  return `password-of-${handle}`;
}

/** A client whose every request (refreshes included) is recorded as `METHOD /path`. */
function recordingClient(baseUrl: string, tokens: TokenStore = memoryTokenStore()) {
  const seen: string[] = [];
  const client = createAgoraClient({
    baseUrl,
    tokens,
    fetch: (request) => {
      seen.push(`${request.method} ${new URL(request.url).pathname}`);
      return globalThis.fetch(request);
    },
  });
  return { client, tokens, seen, refreshes: () => seen.filter((s) => s === `POST ${DEFAULT_REFRESH_PATH}`).length };
}

/** Registers a new account through `client` and stores its token pair in the client. */
async function register(client: AgoraClient, prefix = "user"): Promise<Schema<"Session">> {
  const handle = newHandle(prefix);
  const { data, error, response } = await client.POST("/v1/accounts", {
    body: {
      handle,
      email: `${handle}@Example.com`,
      password: passwordOf(handle),
      display_name: `User ${handle}`,
    },
  });
  assert.equal(error, undefined, `register failed: ${error?.error_code} ${error?.message}`);
  assert.equal(response?.status, 201);
  assert.ok(data);
  await client.tokens.setTokens({ accessToken: data.tokens.access_token, refreshToken: data.tokens.refresh_token });
  return data;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("identity", () => {
  let server: RunningServer;

  before(async () => {
    server = await startServer({ AGORA_AUTH__KEYS: AUTH_KEYS });
  });
  after(async () => {
    await server?.stop();
  });

  test("register a user, then log in and read the session", async () => {
    const { client, seen } = recordingClient(server.baseUrl);
    const session = await register(client, "Ann");
    assert.match(session.user.handle, /^Ann_/, "the handle is shown as typed");
    assert.equal(session.user.email, session.user.email.toLowerCase(), "the email is stored lowercased");
    assert.equal(session.tokens.token_type, "Bearer");
    assert.equal(session.tokens.expires_in, 900);
    assert.notEqual(session.tokens.access_token, session.tokens.refresh_token);

    // The stored token is sent as a bearer token: /v1/me answers for this account.
    const me = await orThrow(client.GET("/v1/me"));
    assert.equal(me.id, session.user.id);
    assert.equal(me.email, session.user.email);

    // Log in again from a signed-out client, by handle in another case and by email.
    const other = createAgoraClient({ baseUrl: server.baseUrl });
    const byHandle = await orThrow(
      other.POST("/v1/sessions", { body: { login: session.user.handle.toUpperCase(), password: passwordOf(session.user.handle) } }),
    );
    assert.equal(byHandle.user.id, session.user.id);
    assert.notEqual(byHandle.tokens.refresh_token, session.tokens.refresh_token, "a new session");
    const byEmail = await orThrow(
      other.POST("/v1/sessions", { body: { login: session.user.email, password: passwordOf(session.user.handle) } }),
    );
    assert.equal(byEmail.user.id, session.user.id);
    await other.tokens.setTokens({ accessToken: byEmail.tokens.access_token, refreshToken: byEmail.tokens.refresh_token });
    assert.equal((await orThrow(other.GET("/v1/me"))).id, session.user.id);

    // A wrong password and an unknown account are the same typed 401.
    const anonymous = createAgoraClient({ baseUrl: server.baseUrl });
    const wrong = await anonymous.POST("/v1/sessions", { body: { login: session.user.handle, password: "not the password" } });
    const unknown = await anonymous.POST("/v1/sessions", { body: { login: "nobody_here", password: "not the password" } });
    for (const { error } of [wrong, unknown]) {
      assert.ok(error instanceof AgoraError);
      assert.equal(error.status, 401);
      assert.equal(error.error_code, "unauthenticated");
      assert.ok(error.request_id);
    }
    assert.equal(wrong.error?.message, unknown.error?.message);

    assert.ok(!seen.includes(`POST ${DEFAULT_REFRESH_PATH}`), "nothing was refreshed");
  });

  test("get and update me", async () => {
    const { client } = recordingClient(server.baseUrl);
    const session = await register(client);

    const updated = await orThrow(
      client.PATCH("/v1/me", { body: { display_name: "Ann Updated", bio: "Writes about gardens." } }),
    );
    assert.equal(updated.id, session.user.id);
    assert.equal(updated.display_name, "Ann Updated");
    assert.equal(updated.bio, "Writes about gardens.");
    assert.equal(updated.handle, session.user.handle, "absent fields keep their value");

    const me = await orThrow(client.GET("/v1/me"));
    assert.equal(me.display_name, "Ann Updated");
    assert.equal(me.bio, "Writes about gardens.");

    // An empty bio clears it.
    const cleared = await orThrow(client.PATCH("/v1/me", { body: { bio: "" } }));
    assert.equal(cleared.bio ?? null, null);
    assert.equal(cleared.display_name, "Ann Updated");

    // Without a token: a typed 401, and no refresh is attempted.
    const anonymous = recordingClient(server.baseUrl);
    const { error } = await anonymous.client.GET("/v1/me");
    assert.equal(error?.status, 401);
    assert.equal(error?.error_code, "unauthenticated");
    assert.equal(anonymous.refreshes(), 0);
  });

  test("a validation failure maps to invalid_request with details naming the field", async () => {
    const client = createAgoraClient({ baseUrl: server.baseUrl });
    const { data, error, response } = await client.POST("/v1/accounts", {
      body: { handle: "no-dashes", email: "valid@example.com", password: "a long enough password", display_name: "X" },
    });
    assert.equal(data, undefined);
    assert.ok(error instanceof AgoraError);
    assert.equal(error.status, 400);
    assert.equal(error.error_code, "invalid_request");
    assert.equal(error.request_id, response?.headers.get("x-request-id"));
    assert.deepEqual(
      error.details.map(({ location, pointer, rule }) => ({ location, pointer, rule })),
      [{ location: "body", pointer: "/handle", rule: "pattern" }],
    );
    assert.ok(error.details[0]?.message, "each detail says what is wrong");

    // Several bad fields: one detail each.
    const many = await client.POST("/v1/accounts", {
      body: { handle: "ab", email: "not an email", password: "short", display_name: "X" },
    });
    assert.equal(many.error?.error_code, "invalid_request");
    assert.deepEqual(many.error?.details.map((d) => d.pointer).sort(), ["/email", "/handle", "/password"]);
  });

  test("a taken handle is the domain code handle_taken, one of KNOWN_ERROR_CODES", async () => {
    const client = createAgoraClient({ baseUrl: server.baseUrl });
    const first = await register(client, "Taken");
    const { error, response } = await client.POST("/v1/accounts", {
      body: {
        handle: first.user.handle.toUpperCase(),
        email: `other-${first.user.handle}@example.com`,
        password: "a long enough password",
        display_name: "Other",
      },
    });
    assert.equal(response?.status, 409);
    assert.ok(error instanceof AgoraError);
    const code: KnownErrorCode | string = error.error_code;
    assert.equal(code, "handle_taken");
    assert.ok((KNOWN_ERROR_CODES as readonly string[]).includes(code));
  });

  test("logout revokes the session: the old access token is a typed unauthenticated error", async () => {
    const { client, tokens } = recordingClient(server.baseUrl);
    const session = await register(client);

    const { data, error, response } = await client.DELETE("/v1/sessions/current");
    assert.equal(error, undefined);
    assert.equal(response?.status, 204);
    assert.equal(data, undefined);
    await tokens.clear();

    // The old access token, sent as is: the server's own 401.
    const withOldToken = createAgoraClient({
      baseUrl: server.baseUrl,
      headers: { Authorization: `Bearer ${session.tokens.access_token}` },
    });
    const me = await withOldToken.GET("/v1/me");
    assert.ok(me.error instanceof AgoraError);
    assert.equal(me.error.status, 401);
    assert.equal(me.error.error_code, "unauthenticated");
    assert.equal(me.error.message, "the access token is invalid or expired");
    assert.equal(me.error.request_id, me.response?.headers.get("x-request-id"));

    // A client that still holds the old pair (another tab): the 401 triggers one refresh, which the
    // server refuses (the refresh token was revoked too), so that client's session is cleared.
    const stale = recordingClient(
      server.baseUrl,
      memoryTokenStore({ accessToken: session.tokens.access_token, refreshToken: session.tokens.refresh_token }),
    );
    const again = await stale.client.GET("/v1/me");
    assert.ok(again.error instanceof AgoraError);
    assert.equal(again.error.status, 401);
    assert.equal(again.error.error_code, "unauthenticated");
    assert.equal(stale.refreshes(), 1);
    assert.deepEqual(stale.seen, ["GET /v1/me", `POST ${DEFAULT_REFRESH_PATH}`]);
    assert.equal(await stale.tokens.getAccessToken(), null);
    assert.equal(await stale.tokens.getRefreshToken(), null);
  });

  test("signing in while a revoked session is still stored: the login's own answer, no refresh", async () => {
    // The client sends no token to register/login/refresh_session (security: [] in the contract).
    const contract = await readFile(join(REPO_ROOT, "openapi.yaml"), "utf8");
    for (const path of ["/v1/accounts", "/v1/sessions", DEFAULT_REFRESH_PATH]) {
      const block = new RegExp(`^  ${path.replace(/[/]/g, "\\/")}:\\n((?:    .*\\n|\\n)*)`, "m").exec(contract)?.[1];
      assert.match(block ?? "", /^      security: \[\]$/m, `${path} is public in the contract`);
    }

    const { client, tokens } = recordingClient(server.baseUrl);
    const session = await register(client);
    await orThrow(client.DELETE("/v1/sessions/current")); // the tokens stay stored (an app forgot to clear them)
    const handle = session.user.handle;
    const stale = recordingClient(server.baseUrl, tokens);

    const wrong = await stale.client.POST("/v1/sessions", { body: { login: handle, password: "not the password" } });
    assert.equal(wrong.error?.status, 401);
    assert.equal(wrong.error?.message, "invalid handle, email or password");
    assert.equal(stale.refreshes(), 0);
    assert.equal(await tokens.getRefreshToken(), session.tokens.refresh_token, "left for the app to replace");

    const fresh = await orThrow(stale.client.POST("/v1/sessions", { body: { login: handle, password: passwordOf(handle) } }));
    await tokens.setTokens({ accessToken: fresh.tokens.access_token, refreshToken: fresh.tokens.refresh_token });
    assert.equal((await orThrow(stale.client.GET("/v1/me"))).id, session.user.id);
    assert.equal(stale.refreshes(), 0);
  });

  test("a reused refresh token ends the session with unauthenticated", async () => {
    const { client, tokens, refreshes } = recordingClient(server.baseUrl);
    const session = await register(client);
    const first = session.tokens.refresh_token;

    // Rotate once (a signed-out client: refresh_session needs no access token).
    const anonymous = createAgoraClient({ baseUrl: server.baseUrl });
    const rotated = await orThrow(anonymous.POST("/v1/sessions/refresh", { body: { refresh_token: first } }));
    assert.equal(rotated.token_type, "Bearer");
    assert.notEqual(rotated.refresh_token, first);
    await tokens.setTokens({ accessToken: rotated.access_token, refreshToken: rotated.refresh_token });
    assert.equal((await orThrow(client.GET("/v1/me"))).id, session.user.id);

    // Presenting the used-up token again looks like theft: 401, and the whole session is revoked.
    const reuse = await anonymous.POST("/v1/sessions/refresh", { body: { refresh_token: first } });
    assert.equal(reuse.error?.status, 401);
    assert.equal(reuse.error?.error_code, "unauthenticated");

    // The client's newest access token now fails; its one refresh is refused; it signs out.
    const { error } = await client.GET("/v1/me");
    assert.ok(error instanceof AgoraError);
    assert.equal(error.error_code, "unauthenticated");
    assert.equal(refreshes(), 1);
    assert.equal(await tokens.getAccessToken(), null);
    assert.equal(await tokens.getRefreshToken(), null);
  });

});

describe("identity with a strict sign-in limit", () => {
  let server: RunningServer;

  before(async () => {
    server = await startServer({
      AGORA_AUTH__KEYS: AUTH_KEYS,
      AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__REQUESTS: "1",
      AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__WINDOW_SECS: "60",
    });
  });
  after(async () => {
    await server?.stop();
  });

  test("a rate-limited login maps to rate_limited with retryAfter", async () => {
    const { client, refreshes } = recordingClient(server.baseUrl);
    const login = newHandle("limited");
    const first = await client.POST("/v1/sessions", { body: { login, password: "wrong-password" } });
    assert.equal(first.error?.error_code, "unauthenticated");
    const second = await client.POST("/v1/sessions", { body: { login, password: "wrong-password" } });
    assert.ok(second.error instanceof AgoraError);
    assert.equal(second.error.status, 429);
    assert.equal(second.error.error_code, "rate_limited");
    assert.ok((second.error.retryAfter ?? 0) >= 1, `retryAfter ${second.error.retryAfter}`);
    assert.equal(second.response?.headers.get("ratelimit-policy"), '"auth-account";q=1;w=60');
    assert.equal(refreshes(), 0, "a 429 is not an expired token");
  });
});

describe("identity with a 1-second access token", () => {
  let server: RunningServer;
  /** Long enough for a 1-second token to be past `exp` (whole seconds) with no leeway. */
  const EXPIRE_MS = 2_200;

  before(async () => {
    server = await startServer({
      AGORA_AUTH__KEYS: AUTH_KEYS,
      AGORA_AUTH__ACCESS_TTL_SECS: "1",
      AGORA_AUTH__LEEWAY_SECS: "0",
    });
  });
  after(async () => {
    await server?.stop();
  });

  test("an expired access token is refreshed once and the request replayed", async () => {
    const { client, tokens, seen, refreshes } = recordingClient(server.baseUrl);
    const session = await register(client);
    assert.equal(session.tokens.expires_in, 1);
    await sleep(EXPIRE_MS);

    // The server refuses the expired token (checked with the token sent as is)…
    const raw = createAgoraClient({
      baseUrl: server.baseUrl,
      headers: { Authorization: `Bearer ${session.tokens.access_token}` },
    });
    assert.equal((await raw.GET("/v1/me")).error?.error_code, "unauthenticated");

    // …and the client refreshes, then re-sends the PATCH with its body.
    seen.length = 0;
    const updated = await orThrow(client.PATCH("/v1/me", { body: { display_name: "After refresh" } }));
    assert.equal(updated.id, session.user.id);
    assert.equal(updated.display_name, "After refresh");
    assert.deepEqual(seen, ["PATCH /v1/me", `POST ${DEFAULT_REFRESH_PATH}`, "PATCH /v1/me"]);
    assert.equal(refreshes(), 1);
    assert.notEqual(await tokens.getAccessToken(), session.tokens.access_token, "the new pair is stored");
    assert.notEqual(await tokens.getRefreshToken(), session.tokens.refresh_token, "refresh tokens rotate");
  });

  test("concurrent calls with an expired token trigger one refresh", async () => {
    const { client, tokens, seen, refreshes } = recordingClient(server.baseUrl);
    const session = await register(client);
    await sleep(EXPIRE_MS);

    seen.length = 0;
    const results = await Promise.all([
      client.GET("/v1/me"),
      client.PATCH("/v1/me", { body: { bio: "concurrent" } }),
      client.GET("/v1/me"),
      client.GET("/v1/users/{user_id}", { params: { path: { user_id: session.user.id } } }),
    ]);
    for (const { error } of results) assert.equal(error, undefined, `${error?.error_code}: ${error?.message}`);
    assert.equal(results[0].data?.id, session.user.id);
    assert.equal(results[1].data?.bio, "concurrent");
    assert.equal(results[3].data?.handle, session.user.handle);
    assert.equal(refreshes(), 1, `one refresh for all four calls: ${seen.join(", ")}`);
    // Each call went out once with the expired token and was re-sent once: nothing else.
    assert.equal(seen.length, 4 + 1 + 4, seen.join(", "));

    // The stored (rotated) refresh token still works: the server saw no reuse.
    const refreshToken = await tokens.getRefreshToken();
    assert.ok(refreshToken);
    const anonymous = createAgoraClient({ baseUrl: server.baseUrl });
    const pair = await anonymous.POST("/v1/sessions/refresh", { body: { refresh_token: refreshToken } });
    assert.equal(pair.error, undefined);
  });
});
