// Every non-2xx answer (and every request that never got one) becomes one typed AgoraError, so
// callers handle errors in one way whether the body came from Agora, from Dropshot itself (its own
// 404/405 bodies have no `error_code`) or from a proxy (an HTML 502).
import type { KnownErrorCode } from "./error-codes.js";
import type { components } from "./schema.js";

/** The contract's error body (`ApiError`), verbatim from the generated types. */
export type ApiError = components["schemas"]["ApiError"];
/** One field that failed validation (`ApiErrorDetail`). */
export type ApiErrorDetail = components["schemas"]["ApiErrorDetail"];

export type { KnownErrorCode } from "./error-codes.js";

/**
 * An `error_code`. The contract says new codes may be added, so any string is accepted; the
 * `string & {}` keeps editor completion for the known ones.
 */
export type ErrorCode = KnownErrorCode | (string & {});

export interface AgoraErrorInit {
  status: number;
  error_code: ErrorCode;
  message: string;
  request_id?: string | undefined;
  details?: ApiErrorDetail[] | undefined;
  retryAfter?: number | undefined;
  response?: Response | undefined;
  cause?: unknown;
}

/** A failed call: an error answer from the server, or no answer at all (`status` 0). */
export class AgoraError extends Error {
  override readonly name = "AgoraError";
  /** The HTTP status; 0 when no response arrived (network failure). */
  readonly status: number;
  /** The contract's `error_code`, or one derived from the status when the body had none. */
  readonly error_code: ErrorCode;
  /** The request id (body `request_id`, else the `x-request-id` header); quote it in bug reports. */
  readonly request_id: string | undefined;
  /** For validation failures, one entry per offending field; empty otherwise. */
  readonly details: readonly ApiErrorDetail[];
  /** Seconds to wait before retrying, from `Retry-After` (sent with 429 and 503). */
  readonly retryAfter: number | undefined;
  /** The response, when there was one (its body has already been read). */
  readonly response: Response | undefined;

  constructor(init: AgoraErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.error_code = init.error_code;
    this.request_id = init.request_id;
    this.details = init.details ?? [];
    this.retryAfter = init.retryAfter;
    this.response = init.response;
  }
}

/** The code for a status when the body does not say (Dropshot's own errors, proxies, no answer). */
export function codeForStatus(status: number): KnownErrorCode {
  switch (status) {
    case 400:
    case 415:
    case 422:
      return "invalid_request";
    case 401:
      return "unauthenticated";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 429:
      return "rate_limited";
    // No answer, or a gateway that could not reach the server: trying again later may work.
    case 0:
    case 502:
    case 503:
    case 504:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "invalid_request";
  }
}

/**
 * Seconds from a `Retry-After` value: delta-seconds, or an HTTP date (counted from `now`).
 * Returns undefined when absent or unparsable rather than guessing.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number.parseInt(trimmed, 10);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isDetail(value: unknown): value is ApiErrorDetail {
  return (
    isRecord(value) &&
    typeof value.location === "string" &&
    typeof value.pointer === "string" &&
    typeof value.rule === "string" &&
    typeof value.message === "string"
  );
}

/**
 * Builds the AgoraError for an error response whose body was already read: `body` is the parsed
 * JSON, the raw text when it was not JSON, or undefined when empty. Fields the body lacks are
 * filled from the status and headers, so the result is always complete.
 */
export function errorFromResponse(response: Response, body: unknown): AgoraError {
  const json = isRecord(body) ? body : undefined;
  const code = typeof json?.error_code === "string" ? json.error_code : codeForStatus(response.status);
  const message =
    typeof json?.message === "string"
      ? json.message
      : `${response.status} ${response.statusText || code}`.trim();
  const requestId =
    typeof json?.request_id === "string" ? json.request_id : (response.headers.get("x-request-id") ?? undefined);
  const details = Array.isArray(json?.details) ? json.details.filter(isDetail) : [];
  return new AgoraError({
    status: response.status,
    error_code: code,
    message,
    request_id: requestId,
    details,
    retryAfter: parseRetryAfter(response.headers.get("retry-after")),
    response,
  });
}

/** The AgoraError for a request that got no response (DNS, refused connection, reset, CORS). */
export function networkError(cause: unknown): AgoraError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new AgoraError({ status: 0, error_code: "unavailable", message: `no response: ${reason}`, cause });
}

/** True for failures worth retrying later as-is: no answer, 429, 502/503/504. */
export function isTransient(error: AgoraError): boolean {
  return error.status === 0 || error.status === 429 || error.status === 502 || error.status === 503 || error.status === 504;
}
