// Renewing an expired access token with the refresh token, once for all callers.
//
// The default goes through the contract's `refresh_session` operation (POST /v1/sessions/refresh,
// `RefreshSessionRequest` -> `TokenPair`). Its path and shapes are the generated ones: if the
// contract changes them, `httpRefresh` stops compiling right here, which is the point.
import { AgoraError, errorFromResponse, networkError } from "./errors.js";
import type { operations, paths } from "./schema.js";
import type { SessionTokens, TokenStore } from "./tokens.js";

type RefreshOperation = operations["refresh_session"];

/** The body of `refresh_session` (`RefreshSessionRequest`, generated). */
export type RefreshSessionRequest = RefreshOperation["requestBody"]["content"]["application/json"];

/** The 200 body of `refresh_session` (`TokenPair`, generated). */
export type RefreshSessionResponse = RefreshOperation["responses"][200]["content"]["application/json"];

/** What a refresh function gets: the client's base URL and fetch (so tests can fake both). */
export interface RefreshContext {
  baseUrl: string;
  fetch: (request: Request) => Promise<Response>;
}

/**
 * Exchanges a refresh token for a new pair. Throw an AgoraError to fail: one with status 0, 429 or
 * 5xx means "try later" and keeps the session; anything else means the session is over.
 */
export type RefreshFn = (refreshToken: string, context: RefreshContext) => Promise<SessionTokens>;

/** The path of `refresh_session` in the contract. */
export const DEFAULT_REFRESH_PATH = "/v1/sessions/refresh" satisfies keyof paths;

// Compile-time check: the POST of that path is `refresh_session`.
type IsRefreshSession<Op extends RefreshOperation> = Op;
type _DefaultPathPostsRefreshSession = IsRefreshSession<paths[typeof DEFAULT_REFRESH_PATH]["post"]>;

/** The default RefreshFn: POST `path` with `{ refresh_token }`, expecting a token pair back. */
export function httpRefresh(path: string = DEFAULT_REFRESH_PATH): RefreshFn {
  return async (refreshToken, { baseUrl, fetch }) => {
    const body: RefreshSessionRequest = { refresh_token: refreshToken };
    const request = new Request(`${baseUrl.replace(/\/+$/, "")}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    let response: Response;
    try {
      response = await fetch(request);
    } catch (cause) {
      throw networkError(cause);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (!response.ok) throw errorFromResponse(response, parsed);
    if (!isTokenPair(parsed)) {
      throw new AgoraError({
        status: response.status,
        error_code: "internal",
        message: "the refresh response is not a token pair",
        request_id: response.headers.get("x-request-id") ?? undefined,
        response,
      });
    }
    return { accessToken: parsed.access_token, refreshToken: parsed.refresh_token };
  };
}

function isTokenPair(value: unknown): value is RefreshSessionResponse {
  if (typeof value !== "object" || value === null) return false;
  const pair = value as Record<string, unknown>;
  return typeof pair.access_token === "string" && typeof pair.refresh_token === "string";
}

/** Status 0 (no answer), 429 and 5xx say nothing about the session: keep it and let the caller retry. */
function keepsSession(error: unknown): error is AgoraError {
  return error instanceof AgoraError && (error.status === 0 || error.status === 429 || error.status >= 500);
}

/**
 * Runs at most one refresh at a time. Every caller that hits an expired token while a refresh is
 * in flight awaits that same refresh, because refresh tokens rotate: a second concurrent refresh
 * would present an already-used token, which the server treats as reuse and revokes the session.
 */
export class SingleFlightRefresher {
  #inflight: Promise<string> | null = null;
  readonly #store: TokenStore;
  readonly #refresh: RefreshFn;
  readonly #context: RefreshContext;

  constructor(store: TokenStore, refresh: RefreshFn, context: RefreshContext) {
    this.#store = store;
    this.#refresh = refresh;
    this.#context = context;
  }

  /** Resolves to the new access token, or rejects with an AgoraError (`unauthenticated` when the session is over). */
  refresh(): Promise<string> {
    if (this.#inflight === null) {
      this.#inflight = this.#run().finally(() => {
        this.#inflight = null;
      });
    }
    return this.#inflight;
  }

  async #run(): Promise<string> {
    const refreshToken = await this.#store.getRefreshToken();
    if (refreshToken === null) {
      await this.#store.clear();
      throw new AgoraError({
        status: 401,
        error_code: "unauthenticated",
        message: "the access token expired and there is no refresh token; sign in again",
      });
    }
    let tokens: SessionTokens;
    try {
      tokens = await this.#refresh(refreshToken, this.#context);
    } catch (error) {
      if (keepsSession(error)) throw error;
      // The server refused the refresh token (expired, revoked, reused): the session is over.
      await this.#store.clear();
      throw new AgoraError({
        status: 401,
        error_code: "unauthenticated",
        message: "the session expired and could not be refreshed; sign in again",
        request_id: error instanceof AgoraError ? error.request_id : undefined,
        cause: error,
      });
    }
    await this.#store.setTokens(tokens);
    return tokens.accessToken;
  }
}
