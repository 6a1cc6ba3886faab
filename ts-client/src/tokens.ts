// Where the client keeps the session. The app decides (memory, localStorage, a secure store on
// mobile), so this is a small interface; any method may be sync or async.

/** A value, or a promise of it: storage backends may be synchronous or not. */
export type MaybePromise<T> = T | Promise<T>;

/** The session's token pair, as the client stores it. */
export interface SessionTokens {
  accessToken: string;
  refreshToken: string;
}

/** Token storage the client reads before each request and writes after a refresh or logout. */
export interface TokenStore {
  /** The current access token, or null when signed out. */
  getAccessToken(): MaybePromise<string | null>;
  /** The current refresh token, or null when there is none. */
  getRefreshToken(): MaybePromise<string | null>;
  /** Stores a new pair (after login or a refresh); refresh tokens rotate, so both are replaced. */
  setTokens(tokens: SessionTokens): MaybePromise<void>;
  /** Forgets both tokens (logout, or a refresh the server refused). */
  clear(): MaybePromise<void>;
}

/** A TokenStore in memory: the default, and what tests use. Lost on reload. */
export function memoryTokenStore(initial?: SessionTokens): TokenStore {
  let tokens: SessionTokens | null = initial ? { ...initial } : null;
  return {
    getAccessToken: () => tokens?.accessToken ?? null,
    getRefreshToken: () => tokens?.refreshToken ?? null,
    setTokens: (next) => {
      tokens = { ...next };
    },
    clear: () => {
      tokens = null;
    },
  };
}
