// Type declarations of @armonia/hub-client (src/index.js).

/** Connection states, in the order a client usually walks them. */
export type HubState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateChange {
  state: HubState;
  /** connecting: consecutive failed attempts so far (0 on the first). reconnecting: the attempt about to be made (1-based). open: failures before this success. */
  attempt?: number;
  /** reconnecting: milliseconds until the next attempt. */
  delay?: number;
  /** reconnecting/closed: the close code (1006 lost, 1001 server draining, 4001 unauthorized, 4008 slow consumer, 4000 dead connection or no welcome in time). */
  code?: number;
  /** reconnecting/closed: why, in words. */
  reason?: string;
  /** open: the welcome's session id. */
  session?: string;
  /** open: the seq this connection resumed after (undefined: live only). */
  since?: number;
}

/** An event as the hub sends it (docs/protocol.md "Events"). */
export interface HubEvent<D = Record<string, unknown>> {
  type: 'event';
  id: number;
  seq: number;
  kind: string;
  priority: 'normal' | 'high' | 'critical';
  ack: boolean;
  ts: number;
  room: string;
  data: D;
}

export interface Welcome {
  type: 'welcome';
  session: string;
  user: string;
  tenant: string;
  role: 'resident' | 'guard' | 'admin';
  rooms: string[];
  last_seq: number;
  /** Present when the welcome answers an in-band token refresh. */
  exp?: number;
  ref?: unknown;
}

/** What getToken() is asked for. */
export interface TokenRequest {
  /** connect: first connection · unauthorized: the hub closed with 4001 · refresh: the current token expires soon. */
  reason: 'connect' | 'unauthorized' | 'refresh';
}

/**
 * Errors reported on 'error' or by rejected promises. `code` is the hub's
 * (unauthorized, forbidden, bad_request, too_large, rate_limited,
 * resume_gap, internal) or the client's own (transport, decode, token,
 * config, closed, cancelled, listener, ack_dropped).
 */
export declare class HubError extends Error {
  code: string;
  /** The hub's error frame, when there was one. */
  frame?: Record<string, unknown>;
  ref?: unknown;
  /** subscribe() rejections and rooms refused at authentication: the room. */
  room?: string;
  /** Errors answering an ack: the event id. */
  ackId?: number;
  /** resume_gap: the oldest seq the hub still had. */
  oldestSeq?: number;
  /** resume_gap when the resume point is beyond the hub's newest seq: that newest seq (the client then resumes from the welcome's last_seq). */
  newestSeq?: number;
  constructor(code: string, message: string, extra?: Record<string, unknown>);
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface HubClientOptions {
  /** Returns the JWT (or a promise of it). Returning null/'' stops the client (state 'closed', reason 'no token'). A fixed string is accepted too. */
  getToken: ((req: TokenRequest) => string | null | undefined | Promise<string | null | undefined>) | string;
  /** Wire format: 'json' (default, no dependency) or 'msgpack' (loads @msgpack/msgpack on first use). */
  format?: 'json' | 'msgpack';
  /** The MessagePack library to use instead of importing @msgpack/msgpack (e.g. in a browser without a bundler). */
  msgpack?: { encode(value: unknown): Uint8Array; decode(data: Uint8Array): unknown };
  /** A WebSocket constructor (the `ws` package on Node 20); default globalThis.WebSocket. */
  WebSocket?: new (url: string, protocols?: string | string[]) => unknown;
  /** Ack every event that has ack: true right after the 'event' listeners ran. Default false. */
  autoAck?: boolean;
  /** Resume after this seq on the first connection (a saved lastSeq). Later connections resume from lastSeq. */
  since?: number;
  /** Extra rooms to join on every connection (as subscribe() does); named in each auth frame, so a resume covers them. */
  rooms?: string[];
  /** Time source for tests. Default: Date.now and the global timers. */
  clock?: Clock;
  /** Random source in [0, 1) for the jitter. Default Math.random. */
  random?: () => number;
  /** First backoff ceiling, ms (500). */
  initialMs?: number;
  /** Backoff cap, ms (30000). */
  capMs?: number;
  /** A connection open this long resets the backoff, ms (10000). */
  stableMs?: number;
  /** Ping interval while open, ms (20000). */
  pingIntervalMs?: number;
  /** No frame for this long: the connection is dropped and replaced, ms (45000). */
  deadAfterMs?: number;
  /** From opening the socket to the welcome, ms (15000). */
  connectTimeoutMs?: number;
  /** After 1001, 1013 or 4029 the wait is jittered over at least this, ms (5000). */
  drainSpreadMs?: number;
  /** Refresh the token this long before exp (at most half its remaining life), ms (60000). */
  refreshBeforeMs?: number;
  /** getToken() had nothing newer: ask again after this, ms (5000). */
  refreshRetryMs?: number;
  /** Event ids remembered for deduplication (1000). */
  dedupeLimit?: number;
  /** Acks kept while disconnected (256). */
  maxQueuedAcks?: number;
  /** close(): stop waiting for the closing handshake after this, ms (3000). */
  closeTimeoutMs?: number;
  /** Print errors with console.warn when nobody listens to 'error'. */
  logErrors?: boolean;
}

export interface HubClientEvents {
  event: (event: HubEvent) => void;
  state: (change: StateChange) => void;
  error: (error: HubError) => void;
  welcome: (welcome: Welcome, info: { refresh: boolean }) => void;
}

export declare class HubClient {
  constructor(url: string, options: HubClientOptions);
  readonly state: HubState;
  /** The resume point: seq of the last event delivered to the app (or since, or the first welcome's last_seq). */
  readonly lastSeq: number | undefined;
  /** The latest welcome, or null before the first. */
  readonly session: Welcome | null;
  /** The extra rooms joined on every connection. */
  readonly rooms: string[];
  on<K extends keyof HubClientEvents>(name: K, fn: HubClientEvents[K]): () => void;
  off<K extends keyof HubClientEvents>(name: K, fn: HubClientEvents[K]): void;
  /** Resolves with the room once the hub answers subscribed; rejects with HubError code forbidden / bad_request / closed / cancelled. */
  subscribe(room: string): Promise<string>;
  /** Resolves with the room once the hub answers unsubscribed (at once while disconnected). */
  unsubscribe(room: string): Promise<string>;
  /**
   * Acknowledges an event (queued while disconnected). Only an event meant for
   * this connection may be acked (else an 'error' with code forbidden and
   * ackId); only a guard's or admin's ack claims a panic. Throws TypeError for
   * an id that is not a positive integer.
   */
  ack(id: number): void;
  /** Closes for good; resolves once the socket is closed. */
  close(): Promise<void>;
}

export declare function createHubClient(url: string, options: HubClientOptions): HubClient;

export declare const CLIENT_DEFAULTS: Readonly<Required<Pick<HubClientOptions,
  'initialMs' | 'capMs' | 'stableMs' | 'pingIntervalMs' | 'deadAfterMs' | 'connectTimeoutMs' | 'drainSpreadMs' |
  'refreshBeforeMs' | 'refreshRetryMs' | 'dedupeLimit' | 'maxQueuedAcks' | 'closeTimeoutMs'>>>;

export declare const CLOSE: Readonly<{
  NORMAL: 1000; GOING_AWAY: 1001; ABNORMAL: 1006; TOO_LARGE: 1009; TRY_AGAIN_LATER: 1013;
  DEAD: 4000; UNAUTHORIZED: 4001; SLOW_CONSUMER: 4008; RATE_LIMITED: 4029;
}>;

export declare const BACKOFF_DEFAULTS: Readonly<{ initialMs: number; capMs: number; stableMs: number }>;
/** min(capMs, initialMs * 2^(attempt-1)). */
export declare function backoffCeiling(attempt: number, opts?: { initialMs?: number; capMs?: number }): number;
/** floor(random() * backoffCeiling(attempt)): full jitter. */
export declare function backoffDelay(attempt: number, random?: () => number, opts?: { initialMs?: number; capMs?: number }): number;

/** The JWT payload, decoded without verification, or null. */
export declare function jwtPayload(token: string): Record<string, unknown> | null;
/** The JWT's exp in ms since the epoch, or null. */
export declare function jwtExpiryMs(token: string): number | null;

export declare const SUBPROTOCOLS: Readonly<{ json: 'armonia.v1.json'; msgpack: 'armonia.v1.msgpack' }>;

export declare class RecentIds {
  constructor(limit?: number);
  readonly limit: number;
  readonly size: number;
  has(id: unknown): boolean;
  add(id: unknown): boolean;
}
