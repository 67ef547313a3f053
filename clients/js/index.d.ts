// Type declarations of @armonia/hub-client (src/index.js).

/** Connection states, in the order a client usually walks them. */
export type HubState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateChange {
  state: HubState;
  /** connecting: consecutive failed attempts so far (0 on the first). reconnecting: the attempt about to be made (1-based). open: failures before this success. */
  attempt?: number;
  /** reconnecting: milliseconds until the next attempt. */
  delayMs?: number;
  /** reconnecting: the same as delayMs (the older name). */
  delay?: number;
  /** reconnecting/closed: the close code (1006 lost, 1001 server draining, 4001 unauthorized, 4008 slow consumer, 4000 dead connection or no welcome in time). */
  code?: number;
  /** reconnecting/closed: why, in words (for a failed attempt, what failed: the transport's message, getToken()'s). */
  reason?: string;
  /**
   * reconnecting: the failure of the attempt, when it was the transport
   * (code 'transport') or getToken() (code 'token'). These are reported here
   * and not as 'error' events: the client retries them on its own.
   */
  error?: HubError;
  /** open: the welcome's session id. */
  session?: string;
  /** open: the seq this connection resumed after (undefined: live only). */
  since?: number;
}

/**
 * An event as the hub sends it (docs/protocol.md "Events"): D is its data,
 * K its kind. The events a listener gets are the union HubEventUnion, one
 * member per kind of HubEventMap; this interface is the shape they share.
 */
export interface HubEvent<D = Record<string, unknown>, K extends string = string> {
  type: 'event';
  id: number;
  seq: number;
  kind: K;
  priority: 'normal' | 'high' | 'critical';
  ack: boolean;
  ts: number;
  room: string;
  data: D;
}

/**
 * Timestamps in data are PostgreSQL's JSON text of a timestamptz, e.g.
 * "2026-12-07T04:20:00.123+00:00" (parse with new Date()).
 */
export type HubTimestamp = string;

/** panic: a resident pressed the panic button (insert into "PanicAlert"); to role:guard and role:admin, critical, ack. */
export type PanicData = {
  alertId: string;
  userId: string | null;
  /** The "User".name of userId (at most 200 characters), null when unknown. */
  userName: string | null;
  unitId: string | null;
  /** At most 1000 characters; the full text stays in the tenant's row. */
  message: string | null;
  createdAt: HubTimestamp;
};

/** visitor: a visitor was announced (insert into "Visitor"); to unit:<unitId>, high, ack. */
export type VisitorData = {
  visitorId: string;
  unitId: string;
  /** At most 200 characters. */
  name: string;
  createdAt: HubTimestamp;
};

export type PaymentStatus = 'PENDING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'REFUNDED';

/** payment: a payment's status changed ("Payment".status); to user:<userId>, normal. */
export type PaymentData = {
  paymentId: string;
  userId: string;
  /**
   * A number; over MessagePack a value no float64 carries exactly arrives as
   * a string holding its decimal text (docs/protocol.md "Event data and numbers").
   */
  amount: number | string;
  /** ISO 4217, 'COP' unless the row says otherwise. */
  currency: string;
  status: PaymentStatus;
};

/** announcement: an emergency notice (insert into "Announcement" with type 'emergency'); to all, critical. */
export type AnnouncementData = {
  announcementId: string;
  /** At most 200 characters. */
  title: string;
  /** At most 4000 characters. */
  body: string;
  type: 'general' | 'emergency';
};

/** panic_claimed: a guard or admin acked (claimed) a panic; to role:guard and role:admin, high (docs/protocol.md "Claims of panic alerts"). */
export type PanicClaimedData = {
  /** The id of the panic event that was claimed. */
  eventId: number;
  alertId: string | null;
  unitId: string | null;
  /** The user id of the guard or admin who claimed it. */
  guardId: string;
  /** Their "User".name, null when unknown. */
  guardName: string | null;
  claimedAt: HubTimestamp;
};

/**
 * The data of each event kind, by kind. The hub's own kinds are listed here;
 * an app that emits kinds of its own (hub.emit()) declares them by adding to
 * this interface, and they join the union with the same narrowing:
 *
 *   declare module '@armonia/hub-client' {
 *     interface HubEventMap { parcel: { parcelId: string; unitId: string } }
 *   }
 */
export interface HubEventMap {
  panic: PanicData;
  visitor: VisitorData;
  payment: PaymentData;
  announcement: AnnouncementData;
  panic_claimed: PanicClaimedData;
}

/** The kinds HubEventMap names. */
export type HubEventKind = keyof HubEventMap & string;

/** The event of one kind: HubEventOf<'visitor'> has data VisitorData. */
export type HubEventOf<K extends HubEventKind> = HubEvent<HubEventMap[K], K>;

/**
 * What the 'event' listener gets: a union discriminated by `kind`, so after
 * `if (e.kind === 'visitor')` `e.data` is VisitorData. An event of a kind
 * nobody declared in HubEventMap still arrives at run time; it is reached
 * through the `default` of a switch on kind, as an UnknownHubEvent.
 */
export type HubEventUnion = { [K in HubEventKind]: HubEventOf<K> }[HubEventKind];

/** Any event, its kind and data unchecked: every HubEventUnion member is one. */
export type UnknownHubEvent = HubEvent<Record<string, unknown>, string>;

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
 * Errors reported on 'error' or by rejected promises, and attached to a
 * 'reconnecting' state change. `code` is the hub's (unauthorized,
 * forbidden, bad_request, too_large, rate_limited, resume_gap, internal)
 * or the client's own (transport, decode, token, config, closed, cancelled,
 * listener, ack_dropped). A failed connection attempt (transport, or
 * getToken() throwing while connecting) is not an 'error' event: it is the
 * 'reconnecting' state's `error`.
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
  /** Wire format: 'json' (default, no dependency) or 'msgpack' (imports the optional peer dependency @msgpack/msgpack on first use; without it the client reports an 'error' with code 'config' and stops). */
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
  event: (event: HubEventUnion) => void;
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
