// Type tests: compiled by `tsc --noEmit`, never run. Each `@ts-expect-error` proves the contract
// rejects a mistake at compile time; if the mistake ever compiles, the unused directive fails tsc.
import {
  AgoraError,
  createAgoraClient,
  orThrow,
  type ApiError,
  type ApiErrorDetail,
  type DeploymentShape,
  type KnownErrorCode,
  type Meta,
  type RefreshSessionRequest,
  type RefreshSessionResponse,
  type TokenStore,
} from "../../src/index.js";

const client = createAgoraClient({ baseUrl: "http://127.0.0.1:8080" });

export async function wrongPath(): Promise<void> {
  // @ts-expect-error: no such path in the contract
  await client.GET("/v1/metadata");
  // @ts-expect-error: the path exists, but not for POST
  await client.POST("/v1/meta");
}

export async function responseFields(): Promise<void> {
  const result = await client.GET("/v1/meta");
  if (result.error) {
    // Every failure is an AgoraError with the contract's fields.
    const error: AgoraError = result.error;
    const code: string = error.error_code;
    const retry: number | undefined = error.retryAfter;
    void code;
    void retry;
    // @ts-expect-error: no data on the error branch
    result.data.service;
    return;
  }
  const shape: DeploymentShape = result.data.deployment_shape;
  const version: string = result.data.contract_version;
  void shape;
  void version;
  // @ts-expect-error: the field is `deployment_shape`, not `deploymentShape`
  void result.data.deploymentShape;
  // @ts-expect-error: `service` is a string, not a number
  const service: number = result.data.service;
  void service;
}

export async function unwrapped(): Promise<void> {
  const meta: Meta = await orThrow(client.GET("/v1/meta"));
  const health = await orThrow(client.GET("/healthz"));
  // @ts-expect-error: Health.status is the enum `ok`, never `down`
  if (health.status === "down") return;
  void meta;
}

export function enumValues(): void {
  const embedded: DeploymentShape = "embedded";
  // @ts-expect-error: DeploymentShape is `embedded | cluster`
  const standalone: DeploymentShape = "standalone";
  const detail: ApiErrorDetail = { location: "body", pointer: "/title", rule: "maxLength", message: "too long" };
  // @ts-expect-error: ApiErrorDetail.location is `body | path | query | header`
  const cookie: ApiErrorDetail = { location: "cookie", pointer: "/sid", rule: "type", message: "bad" };
  void embedded;
  void standalone;
  void detail;
  void cookie;
}

export function requiredFields(): void {
  // @ts-expect-error: ApiErrorDetail requires `message`
  const detail: ApiErrorDetail = { location: "query", pointer: "/limit", rule: "maximum" };
  // @ts-expect-error: ApiError requires `request_id`
  const error: ApiError = { error_code: "not_found", message: "no such user" };
  // @ts-expect-error: the refresh body requires `refresh_token`
  const refresh: RefreshSessionRequest = {};
  const pair: RefreshSessionResponse = { access_token: "a", refresh_token: "r", token_type: "Bearer", expires_in: 900 };
  void detail;
  void error;
  void refresh;
  void pair;
}

export function tokenStores(): void {
  // Async storage (e.g. a secure store on mobile) fits the same interface.
  const asyncStore: TokenStore = {
    getAccessToken: async () => "a",
    getRefreshToken: async () => null,
    setTokens: async () => {},
    clear: async () => {},
  };
  createAgoraClient({ baseUrl: "/", tokens: asyncStore });
  // @ts-expect-error: a store must be able to clear the session
  const incomplete: TokenStore = { getAccessToken: () => null, getRefreshToken: () => null, setTokens: () => {} };
  void incomplete;
}

export function errorCodes(): void {
  // The contract's extensible list: a domain code is known...
  const taken: KnownErrorCode = "handle_taken";
  void taken;
  // @ts-expect-error: not a code the contract declares
  const unknown: KnownErrorCode = "handle_tacken";
  void unknown;
}
