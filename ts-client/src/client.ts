// The typed client: openapi-fetch over the generated `paths`, plus the session middleware (bearer
// token, one refresh on 401, replay) and one error type for every failure.
import createClient from "openapi-fetch";
import type { Client, FetchOptions, Middleware, ParseAsResponse } from "openapi-fetch";
import type {
  HttpMethod,
  MediaType,
  PathsWithMethod,
  Readable,
  RequiredKeysOf,
  ResponseObjectMap,
  SuccessResponse,
} from "openapi-typescript-helpers";
import { AgoraError, errorFromResponse, networkError } from "./errors.js";
import { DEFAULT_REFRESH_PATH, SingleFlightRefresher, httpRefresh, type RefreshFn } from "./refresh.js";
import type { paths } from "./schema.js";
import { memoryTokenStore, type TokenStore } from "./tokens.js";

export type FetchFn = (request: Request) => Promise<Response>;

export interface AgoraClientOptions {
  /** The server, e.g. `https://api.example.com` (no trailing path). */
  baseUrl: string;
  /** Session storage; defaults to memory (fine for public endpoints and tests). */
  tokens?: TokenStore;
  /** How to renew the session; defaults to POST /v1/sessions/refresh (see refresh.ts). */
  refresh?: RefreshFn;
  /** A fetch implementation; defaults to the global one. */
  fetch?: FetchFn;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
}

/** The data of a successful call of operation `Op` (as openapi-fetch types it). */
export type SuccessData<Op, Init> =
  ResponseObjectMap<Op> extends infer Responses extends Record<string | number, unknown>
    ? ParseAsResponse<Readable<SuccessResponse<Responses, MediaType>>, Init>
    : never;

/** A call's outcome: `data` on 2xx, otherwise `error` (always an AgoraError); test `error` first. */
export type AgoraResult<Op, Init> =
  | { data: SuccessData<Op, Init>; error?: never; response: Response }
  | { data?: never; error: AgoraError; response: Response | undefined };

// Same rule as openapi-fetch: the options argument is required only when the operation has
// required parameters or a required body.
type InitParam<Init> =
  RequiredKeysOf<Init> extends never ? [(Init & { [key: string]: unknown })?] : [Init & { [key: string]: unknown }];

/** The operation object for method `M` of a path item. */
type OperationOf<PathItem, M extends HttpMethod> = M extends keyof PathItem ? PathItem[M] : never;

/** The options of a call; optional when the operation has nothing required (as in openapi-fetch). */
type CallInit<PathItem, M extends HttpMethod> =
  RequiredKeysOf<FetchOptions<OperationOf<PathItem, M>>> extends never
    ? FetchOptions<OperationOf<PathItem, M>> | undefined
    : FetchOptions<OperationOf<PathItem, M>>;

/** One HTTP method of the client: the path must exist for that method in the contract. */
export type AgoraMethod<Paths extends {}, M extends HttpMethod> = <
  P extends PathsWithMethod<Paths, M>,
  Init extends CallInit<Paths[P], M>,
>(
  url: P,
  ...init: InitParam<Init>
) => Promise<AgoraResult<OperationOf<Paths[P], M>, Init>>;

export interface AgoraClient {
  GET: AgoraMethod<paths, "get">;
  POST: AgoraMethod<paths, "post">;
  PUT: AgoraMethod<paths, "put">;
  PATCH: AgoraMethod<paths, "patch">;
  DELETE: AgoraMethod<paths, "delete">;
  /** The token storage this client uses (e.g. to store the pair a login returned). */
  readonly tokens: TokenStore;
  /** The server this client talks to. */
  readonly baseUrl: string;
  /**
   * Renews the access token with the stored refresh token (the same single-flight refresh the
   * requests use), stores the new pair and resolves to the new access token; rejects with an
   * AgoraError (`unauthenticated` when the session is over). The real-time channel uses it.
   */
  refreshAccessToken(): Promise<string>;
  /** The underlying openapi-fetch client (its own error values, no AgoraError mapping). */
  readonly raw: Client<paths>;
}

/** The shape every openapi-fetch call resolves to, before it is narrowed to an AgoraResult. */
interface RawOutcome {
  data?: unknown;
  error?: unknown;
  response: Response;
}
type RawCall = (method: string, url: string, init?: object) => Promise<RawOutcome>;

function isAbort(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { name?: unknown }).name === "AbortError";
}

/** Turns an openapi-fetch outcome (or its rejection) into data or an AgoraError. */
async function settle(
  pending: Promise<RawOutcome>,
): Promise<{ data?: unknown; error?: AgoraError; response: Response | undefined }> {
  let outcome: RawOutcome;
  try {
    outcome = await pending;
  } catch (error) {
    // A deliberate abort stays an abort: callers cancelling a request expect AbortError.
    if (isAbort(error)) throw error;
    // The session middleware fails with an AgoraError (e.g. a refused refresh); anything else
    // thrown by fetch means no answer arrived.
    const agoraError = error instanceof AgoraError ? error : networkError(error);
    return { error: agoraError, response: agoraError.response };
  }
  if (outcome.response.ok) return { data: outcome.data, response: outcome.response };
  return { error: errorFromResponse(outcome.response, outcome.error), response: outcome.response };
}

/**
 * The POST operations that exchange credentials for a session (register, login, refresh_session; all
 * `security: []` in the contract). They take no access token, and their 401 means "wrong password"
 * or "refresh token refused", not "access token expired": sending the stored token to them, then
 * refreshing on their 401, would rotate the session for nothing, or, with a revoked session still
 * stored, turn a login form's "invalid password" into "the session expired".
 */
const CREDENTIAL_PATHS: ReadonlySet<string> = new Set(
  ["/v1/accounts", "/v1/sessions", DEFAULT_REFRESH_PATH] satisfies PathsWithMethod<paths, "post">[],
);

/**
 * The session middleware. Each authenticated request is cloned before it is sent (fetch consumes
 * the body, and a POST must be replayable); a 401 to a request that carried a token triggers one
 * shared refresh, then the clone is re-sent once with the new token. A second 401 is returned as is,
 * so there is no loop.
 */
function sessionMiddleware(store: TokenStore, refresher: SingleFlightRefresher, fetch: FetchFn): Middleware {
  const sent = new WeakMap<Request, { token: string; replay: Request }>();
  return {
    async onRequest({ request, schemaPath }) {
      if (request.method === "POST" && CREDENTIAL_PATHS.has(schemaPath)) return undefined;
      // A caller-supplied Authorization header (e.g. a one-off token) is left alone, and not refreshed.
      if (request.headers.has("Authorization")) return undefined;
      const token = await store.getAccessToken();
      if (token === null) return undefined;
      request.headers.set("Authorization", `Bearer ${token}`);
      sent.set(request, { token, replay: request.clone() });
      return request;
    },
    async onResponse({ request, response }) {
      const entry = sent.get(request);
      sent.delete(request);
      if (entry === undefined || response.status !== 401) return undefined;
      // Another caller may have refreshed while this request was in flight: use its token
      // instead of refreshing again (which would present an already-rotated refresh token).
      const current = await store.getAccessToken();
      const token = current !== null && current !== entry.token ? current : await refresher.refresh();
      await response.body?.cancel();
      entry.replay.headers.set("Authorization", `Bearer ${token}`);
      return fetch(entry.replay);
    },
  };
}

/** Creates a typed Agora client. */
export function createAgoraClient(options: AgoraClientOptions): AgoraClient {
  const store = options.tokens ?? memoryTokenStore();
  // Wrapped rather than passed as is: browsers reject `fetch` called with another `this`.
  const fetch: FetchFn = options.fetch ?? ((request) => globalThis.fetch(request));
  const refresher = new SingleFlightRefresher(store, options.refresh ?? httpRefresh(), {
    baseUrl: options.baseUrl,
    fetch,
  });
  const raw = createClient<paths>({
    baseUrl: options.baseUrl,
    fetch,
    ...(options.headers === undefined ? {} : { headers: options.headers }),
  });
  raw.use(sessionMiddleware(store, refresher, fetch));

  // openapi-fetch's generic signatures are enforced by AgoraMethod at the boundary; inside, one
  // untyped call path is enough.
  const request = raw.request as unknown as RawCall;
  const method = (name: string) => (url: string, init?: object) => settle(request(name, url, init));
  return {
    GET: method("get") as AgoraClient["GET"],
    POST: method("post") as AgoraClient["POST"],
    PUT: method("put") as AgoraClient["PUT"],
    PATCH: method("patch") as AgoraClient["PATCH"],
    DELETE: method("delete") as AgoraClient["DELETE"],
    tokens: store,
    baseUrl: options.baseUrl,
    refreshAccessToken: () => refresher.refresh(),
    raw,
  };
}

/** Unwraps a call: its data, or throws its AgoraError (for code that prefers exceptions). */
export async function orThrow<R extends { data?: unknown; error?: AgoraError }>(
  pending: Promise<R>,
): Promise<Exclude<R, { error: AgoraError }>["data"]> {
  const outcome = await pending;
  if (outcome.error !== undefined) throw outcome.error;
  return outcome.data;
}
