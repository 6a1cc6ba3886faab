// The public surface of @agora/client. Everything a frontend needs is exported from here.
export { createAgoraClient, orThrow } from "./client.js";
export type { AgoraClient, AgoraClientOptions, AgoraMethod, AgoraResult, FetchFn, SuccessData } from "./client.js";
export { AgoraError, codeForStatus, isTransient, parseRetryAfter } from "./errors.js";
export type { ApiError, ApiErrorDetail, ErrorCode, KnownErrorCode } from "./errors.js";
export { KNOWN_ERROR_CODES } from "./error-codes.js";
export { DEFAULT_REFRESH_PATH, httpRefresh } from "./refresh.js";
export type { RefreshContext, RefreshFn, RefreshSessionRequest, RefreshSessionResponse } from "./refresh.js";
export { memoryTokenStore } from "./tokens.js";
export type { MaybePromise, SessionTokens, TokenStore } from "./tokens.js";

// The generated contract types (src/schema.d.ts, written by `cargo run -p client-gen -- ts`).
export type { components, operations, paths } from "./schema.js";
import type { components } from "./schema.js";

/** A schema of the contract by name, e.g. `Schema<"Meta">`. */
export type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];
export type Meta = Schema<"Meta">;
export type DeploymentShape = Schema<"DeploymentShape">;
export type Health = Schema<"Health">;
export type Readiness = Schema<"Readiness">;


// The real-time channel (connect_realtime) and its frames, from the same contract.
export { connectRealtime } from "./realtime.js";
export type {
  ClientFrame,
  FrameOf,
  RealtimeConnection,
  RealtimeEnd,
  RealtimeOptions,
  RealtimeState,
  ServerFrame,
  WebSocketConstructor,
  WebSocketLike,
} from "./realtime.js";
