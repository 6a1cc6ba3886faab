// The real-time channel (`connect_realtime`, GET /v1/realtime) for browsers and Node: typed
// frames from the contract, authentication with the first `auth` frame (browsers cannot set
// headers on a WebSocket), `reauth` before the access token expires, automatic reconnects with
// exponential backoff and full jitter, and `resume` from the last sequence held per conversation,
// so a reconnect (to any instance) loses and repeats no message.
import type { AgoraClient } from "./client.js";
import type { components } from "./schema.js";

/** A frame the client sends (`ClientFrame`, generated). */
export type ClientFrame = components["schemas"]["ClientFrame"];
/** A frame the server sends (`ServerFrame`, generated). Servers may add frame types in a minor
 * version: switch on `type` with a default branch. */
export type ServerFrame = components["schemas"]["ServerFrame"];
/** A frame of one `type`, e.g. `FrameOf<"message">`. */
export type FrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;

/** Where the connection is. */
export type RealtimeState = "connecting" | "open" | "reconnecting" | "closed";

/** Why the connection closed for good (no more reconnects). */
export interface RealtimeEnd {
  /** The close code (`x-agora-close-codes`), or 1000 after `close()`. */
  code: number;
  reason: string;
}

/** A minimal WebSocket: the browser's, Node's (22+, or 20 with --experimental-websocket). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface RealtimeOptions {
  /** Every frame the server sends (messages already held are not repeated after a resume). */
  onFrame?: (frame: ServerFrame) => void;
  /** Each change of state. */
  onStateChange?: (state: RealtimeState) => void;
  /** The connection ended and will not reconnect (closed, signed out, refused for good). */
  onEnd?: (end: RealtimeEnd) => void;
  /** The first reconnect delay's ceiling, ms (default 500); it doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  /** The largest reconnect delay, ms (default 30 000). */
  maxDelayMs?: number;
  /** Send `reauth` this long before the token expires, ms (default 60 000, at most half its life). */
  reauthBeforeMs?: number;
  /** Positions to resume from (e.g. persisted from an earlier session): conversation → sequence. */
  positions?: Record<string, number>;
  /** The WebSocket implementation; defaults to `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** The random source of the jitter (tests pin it). */
  random?: () => number;
}

/** An open (or reconnecting) real-time channel. */
export interface RealtimeConnection {
  /** Sends a frame now; false when the socket is not open (the caller retries or uses REST). */
  send(frame: ClientFrame): boolean;
  /** Closes for good (1000). */
  close(): void;
  /** The last sequence received per conversation (what a reconnect resumes from). */
  positions(): Record<string, number>;
  readonly state: RealtimeState;
}

/** Close codes that end the channel for good: the same request would be refused again. */
const FINAL = new Set([1000, 1007, 1009]);
/** Codes after which the token is renewed before reconnecting. */
const RENEW = new Set([1008, 4003]);
const OPEN = 1;

function channelUrl(baseUrl: string): string {
  const url = new URL("/v1/realtime", baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/**
 * Opens the real-time channel of `client`'s server as its signed-in user, and keeps it open:
 * reconnects after every close that is not final, renewing the access token (through the
 * client's single-flight refresh) when the server said it expired or was refused, and resumes
 * from the last sequence of each conversation.
 */
export function connectRealtime(client: AgoraClient, options: RealtimeOptions = {}): RealtimeConnection {
  const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (Socket === undefined) {
    throw new Error("no WebSocket implementation: pass options.WebSocket (Node 20 needs --experimental-websocket)");
  }
  const initialDelay = options.initialDelayMs ?? 500;
  const maxDelay = options.maxDelayMs ?? 30_000;
  const reauthBefore = options.reauthBeforeMs ?? 60_000;
  const random = options.random ?? Math.random;
  const positions: Record<string, number> = { ...(options.positions ?? {}) };
  let state: RealtimeState = "connecting";
  let socket: WebSocketLike | null = null;
  let attempt = 0;
  let closedByUs = false;
  let renewNext = false;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let reauthTimer: ReturnType<typeof setTimeout> | undefined;

  const setState = (next: RealtimeState) => {
    if (state === next) return;
    state = next;
    options.onStateChange?.(next);
  };
  const end = (code: number, reason: string) => {
    clearTimeout(reconnectTimer);
    clearTimeout(reauthTimer);
    setState("closed");
    options.onEnd?.({ code, reason });
  };
  const sendRaw = (frame: ClientFrame): boolean => {
    if (socket === null || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  };

  const scheduleReauth = (expiresAt: string | undefined) => {
    clearTimeout(reauthTimer);
    if (expiresAt === undefined) return;
    const left = Date.parse(expiresAt) - Date.now();
    if (!Number.isFinite(left)) return;
    const wait = Math.max(0, left - Math.min(reauthBefore, left / 2));
    reauthTimer = setTimeout(() => {
      client
        .refreshAccessToken()
        .then((token) => sendRaw({ type: "reauth", token }))
        .catch(() => {
          // The session is over: the server closes with 4003 at expiry, which ends the channel.
        });
    }, wait);
  };

  const onFrame = (frame: ServerFrame) => {
    switch (frame.type) {
      case "ready": {
        attempt = 0;
        setState("open");
        scheduleReauth(frame.token_expires_at);
        const held = Object.entries(positions).map(([conversation_id, sequence]) => ({ conversation_id, sequence }));
        if (held.length > 0) sendRaw({ type: "resume", positions: held });
        break;
      }
      case "reauthed":
        scheduleReauth(frame.token_expires_at);
        break;
      case "message": {
        const { conversation_id, sequence } = frame.message;
        // A message already held (from before a reconnect) is not delivered twice.
        if (sequence <= (positions[conversation_id] ?? 0)) return;
        positions[conversation_id] = sequence;
        break;
      }
      default:
        break;
    }
    options.onFrame?.(frame);
  };

  const reconnectLater = () => {
    setState("reconnecting");
    const ceiling = Math.min(maxDelay, initialDelay * 2 ** attempt);
    attempt += 1;
    // Full jitter: a fleet of clients dropped by one instance spreads its reconnects.
    reconnectTimer = setTimeout(() => void open(), random() * ceiling);
  };

  const open = async () => {
    let token: string | null;
    try {
      token = renewNext ? await client.refreshAccessToken() : await client.tokens.getAccessToken();
    } catch (error) {
      // A refused refresh is the end of the session; a transient failure is retried.
      const status = (error as { status?: number }).status;
      if (status === 401) return end(1008, "the session is over; sign in again");
      return reconnectLater();
    }
    renewNext = false;
    if (token === null) return end(1008, "not signed in");
    if (closedByUs) return;
    const ws = new Socket(channelUrl(client.baseUrl));
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token } satisfies ClientFrame));
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(event.data) as ServerFrame;
      } catch {
        return;
      }
      onFrame(frame);
    };
    ws.onerror = () => {
      // Always followed by onclose, which decides.
    };
    ws.onclose = ({ code, reason }) => {
      if (socket !== ws) return;
      socket = null;
      clearTimeout(reauthTimer);
      if (closedByUs) return end(1000, "closed by the client");
      if (FINAL.has(code)) return end(code, reason);
      if (RENEW.has(code)) {
        // Refused twice in a row with a fresh token: the session itself is gone.
        if (code === 1008 && attempt > 0 && state !== "open") return end(code, reason);
        renewNext = true;
      }
      reconnectLater();
    };
  };

  void open();
  return {
    send: sendRaw,
    close() {
      closedByUs = true;
      clearTimeout(reconnectTimer);
      clearTimeout(reauthTimer);
      if (socket !== null) socket.close(1000, "closed by the client");
      else end(1000, "closed by the client");
    },
    positions: () => ({ ...positions }),
    get state() {
      return state;
    },
  };
}
