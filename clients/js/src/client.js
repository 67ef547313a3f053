// client.js - one logical connection to Armonía Hub that survives drops.
//
// A HubClient owns at most one WebSocket at a time and walks it through
// connecting → open → (dropped) → reconnecting → connecting … until the app
// calls close(). On every (re)connection it authenticates with the first
// frame (never the URL), resumes from the last seq it delivered to the app,
// names in that frame the extra rooms the app subscribed to (the hub joins
// them before it replays, so the resume covers them too), and sends the acks
// that could not be sent while the connection was down. Events are delivered at
// most once per id (a bounded memory of recent ids), in the order the hub
// sent them. Timers and randomness come from options so tests can drive the
// whole state machine with a fake clock.

import { BACKOFF_DEFAULTS, backoffCeiling } from './backoff.js';
import { loadCodec } from './codec.js';
import { RecentIds } from './dedupe.js';
import { jwtExpiryMs } from './jwt.js';

/** Every tunable of the client, with its default (milliseconds unless named otherwise). */
export const CLIENT_DEFAULTS = Object.freeze({
  ...BACKOFF_DEFAULTS,
  pingIntervalMs: 20_000, // a ping this often while open
  deadAfterMs: 45_000, // no frame for this long: the connection is dead
  connectTimeoutMs: 15_000, // from new WebSocket() to welcome
  drainSpreadMs: 5_000, // after 1001/1013/4029 wait at least up to this (jittered)
  refreshBeforeMs: 60_000, // refresh the token this long before exp (at most half its remaining life)
  refreshRetryMs: 5_000, // getToken() gave no newer token: ask again after this
  dedupeLimit: 1_000, // event ids remembered for deduplication
  maxQueuedAcks: 256, // acks kept while disconnected; the oldest are dropped beyond
  closeTimeoutMs: 3_000, // close(): give up waiting for the closing handshake after this
});

/** Close codes the hub uses (docs/protocol.md), and the ones this client makes up. */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001, // server shutting down: reconnect elsewhere, jittered
  ABNORMAL: 1006, // the transport dropped without a close frame
  TOO_LARGE: 1009,
  TRY_AGAIN_LATER: 1013,
  DEAD: 4000, // made up by this client: no frame for deadAfterMs / no welcome in time
  UNAUTHORIZED: 4001,
  SLOW_CONSUMER: 4008,
  RATE_LIMITED: 4029,
});

/** Close codes after which the client waits at least a jittered drainSpreadMs. */
const SPREAD_CODES = new Set([CLOSE.GOING_AWAY, CLOSE.TRY_AGAIN_LATER, CLOSE.RATE_LIMITED]);

const ROOM_RE = /^[A-Za-z0-9_.:-]{1,100}$/;
const SOCKET_OPEN = 1;

/**
 * An Error with the hub's error `code` (forbidden, bad_request, resume_gap,
 * …) or one of the client's own (transport, decode, token, closed,
 * cancelled, listener). `frame` is the hub's error frame when there was one.
 */
export class HubError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'HubError';
    this.code = code;
    Object.assign(this, extra);
  }
}

const systemClock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (t) => globalThis.clearTimeout(t),
});

function describeClose(code) {
  switch (code) {
    case CLOSE.NORMAL: return 'closed';
    case CLOSE.GOING_AWAY: return 'server shutting down';
    case CLOSE.ABNORMAL: return 'connection lost';
    case CLOSE.TOO_LARGE: return 'frame too large';
    case CLOSE.TRY_AGAIN_LATER: return 'server busy, try again later';
    case CLOSE.DEAD: return 'no answer from the server';
    case CLOSE.UNAUTHORIZED: return 'unauthorized or token expired';
    case CLOSE.SLOW_CONSUMER: return 'too slow to read (slow consumer)';
    case CLOSE.RATE_LIMITED: return 'rate limited';
    default: return `closed with code ${code}`;
  }
}

export class HubClient {
  #url;
  #opts;
  #clock;
  #random;
  #getToken;
  #WebSocket;
  #listeners = new Map(); // event name → Set of listeners
  #state = 'idle';
  #codec = null;
  #socket = null; // the current WebSocket, or null
  #gen = 0; // bumped whenever the current attempt is abandoned
  #token = null;
  #tokenStale = true; // ask getToken() before the next connection
  #attempt = 0; // consecutive failed connections (0 after a stable one)
  #openedAt = null; // clock.now() at the welcome of the current connection
  #lastFrameAt = 0;
  #timers = { connect: null, ping: null, dead: null, refresh: null, retry: null };
  #lastSeq;
  #seen;
  #rooms = new Set(); // extra rooms the app wants on every connection
  #subWaiters = new Map(); // room → [{resolve, reject}] of subscribe() calls not yet answered
  #requests = new Map(); // ref → {type, room, resolve?, reject?} sent on the current socket
  #authRef = null; // ref of the auth frame on the current socket (its room refusals echo it)
  #transportError = null; // HubError of the current socket's 'error' event, reported with its close
  #queuedAcks = new Set(); // event ids to ack once open
  #refSeq = 0;
  #welcome = null;
  #closing = null; // promise returned by close()

  constructor(url, options = {}) {
    const u = new URL(url);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`url must be ws:// or wss://, not ${u.protocol}`);
    if (u.searchParams.has('token') || u.searchParams.has('access_token'))
      throw new TypeError('the url must not carry a token: the client authenticates with its first frame');
    this.#url = u.toString();
    const o = { ...CLIENT_DEFAULTS, ...(options.backoff ?? {}), ...options };
    this.#opts = o;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.random ?? Math.random;
    if (typeof o.getToken === 'function') this.#getToken = o.getToken;
    else if (typeof o.getToken === 'string' || typeof o.token === 'string') {
      const fixed = o.getToken ?? o.token;
      this.#getToken = () => fixed;
    } else throw new TypeError('options.getToken (a function returning the JWT, or a promise of it) is required');
    this.#WebSocket = o.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function')
      throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package) on Node < 22');
    if (o.format !== undefined && o.format !== 'json' && o.format !== 'msgpack')
      throw new TypeError(`options.format must be 'json' or 'msgpack', not ${JSON.stringify(o.format)}`);
    if (o.since !== undefined && o.since !== null && !(Number.isSafeInteger(o.since) && o.since >= 0))
      throw new TypeError(`options.since must be a non-negative integer, not ${JSON.stringify(o.since)}`);
    this.#lastSeq = o.since ?? undefined;
    this.#seen = new RecentIds(o.dedupeLimit);
    for (const r of o.rooms ?? []) {
      if (!ROOM_RE.test(r)) throw new TypeError(`bad room name ${JSON.stringify(r)}: 1-100 characters of A-Z a-z 0-9 _ . : -`);
      this.#rooms.add(r);
    }
    // Start on the next microtask so listeners added right after creation see 'connecting'.
    queueMicrotask(() => {
      if (this.#state === 'idle') this.#connect();
    });
  }

  /** connecting, open, reconnecting or closed ('idle' before the first attempt). */
  get state() {
    return this.#state;
  }

  /**
   * The resume point: the seq of the last event delivered to the app, or,
   * before any event, the `since` option, or the tenant's newest seq at the
   * first welcome (the app has everything up to it). Undefined until known.
   * Save it; pass it as `since` to resume after a page reload.
   */
  get lastSeq() {
    return this.#lastSeq;
  }

  /** The latest welcome frame (session, user, tenant, role, rooms), or null. */
  get session() {
    return this.#welcome;
  }

  /** The extra rooms joined on every connection. */
  get rooms() {
    return [...this.#rooms];
  }

  /**
   * Adds a listener; returns a function that removes it.
   * 'event' fn(event) · 'state' fn({state, attempt, delayMs, code, reason,
   * error}) · 'error' fn(HubError) (what the app must act on; failed
   * connection attempts are 'reconnecting' states) · 'welcome' fn(welcome,
   * {refresh})
   */
  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    if (!this.#listeners.has(name)) this.#listeners.set(name, new Set());
    this.#listeners.get(name).add(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    this.#listeners.get(name)?.delete(fn);
  }

  /**
   * Joins `room` now and on every later connection. Resolves with the room
   * once the hub answers `subscribed`; rejects with a HubError whose code is
   * the hub's (forbidden, bad_request) - the room is then forgotten - or
   * 'closed' / 'cancelled' when the app closed the client or unsubscribed
   * before the hub answered. While disconnected it waits for the next
   * connection.
   */
  subscribe(room) {
    if (typeof room !== 'string' || !ROOM_RE.test(room))
      return Promise.reject(new HubError('bad_request', `bad room name ${JSON.stringify(room)}: 1-100 characters of A-Z a-z 0-9 _ . : -`));
    if (this.#state === 'closed') return Promise.reject(new HubError('closed', 'the client is closed'));
    this.#rooms.add(room);
    const p = new Promise((resolve, reject) => {
      if (!this.#subWaiters.has(room)) this.#subWaiters.set(room, []);
      this.#subWaiters.get(room).push({ resolve, reject });
    });
    if (this.#isOpen()) this.#sendSubscribe(room);
    return p;
  }

  /**
   * Leaves `room` and stops joining it on reconnection. Resolves once the
   * hub answers `unsubscribed`, or at once while disconnected (the room is
   * simply not joined again).
   */
  unsubscribe(room) {
    if (typeof room !== 'string' || !ROOM_RE.test(room))
      return Promise.reject(new HubError('bad_request', `bad room name ${JSON.stringify(room)}`));
    this.#rooms.delete(room);
    if (!this.#isOpen()) {
      this.#settleRoom(room, new HubError('cancelled', `unsubscribed from ${room} before the hub confirmed the subscription`));
      return Promise.resolve(room);
    }
    return new Promise((resolve, reject) => {
      const ref = this.#newRef('unsub');
      this.#requests.set(ref, { type: 'unsubscribe', room, resolve, reject });
      this.#send({ type: 'unsubscribe', room, ref });
    });
  }

  /**
   * Acknowledges event `id` (the hub records it; for a panic the first ack
   * claims it). Sent at once when open, otherwise on the next connection.
   * The hub answers only errors; they arrive as 'error' with `ackId`.
   */
  ack(id) {
    if (!Number.isSafeInteger(id) || id <= 0) throw new TypeError(`ack: id must be a positive integer, not ${JSON.stringify(id)}`);
    if (this.#state === 'closed') return;
    if (this.#isOpen()) {
      this.#send({ type: 'ack', id, ref: `ack:${id}` });
      return;
    }
    this.#queuedAcks.add(id);
    if (this.#queuedAcks.size > this.#opts.maxQueuedAcks) {
      const oldest = this.#queuedAcks.values().next().value;
      this.#queuedAcks.delete(oldest);
      this.#emit('error', new HubError('ack_dropped', `too many acks queued while disconnected; dropped the ack of event ${oldest}`, { ackId: oldest }));
    }
  }

  /**
   * Closes for good: no reconnection. Pending subscribe() promises reject
   * with code 'closed'. Resolves once the socket is closed.
   */
  close() {
    if (this.#closing) return this.#closing;
    this.#gen++;
    this.#clearTimers();
    const sock = this.#socket;
    this.#socket = null;
    for (const room of [...this.#subWaiters.keys()]) this.#settleRoom(room, new HubError('closed', 'the client was closed'));
    for (const req of this.#requests.values()) req.resolve?.(req.room);
    this.#requests.clear();
    this.#setState('closed', { code: CLOSE.NORMAL, reason: 'closed by the app' });
    this.#closing = new Promise((resolve) => {
      if (!sock || sock.readyState > SOCKET_OPEN) return resolve();
      let timer = null;
      const done = () => {
        this.#clock.clearTimeout(timer);
        resolve();
      };
      sock.onopen = null;
      sock.onmessage = null;
      sock.onerror = null;
      sock.onclose = done;
      timer = this.#clock.setTimeout(() => {
        sock.onclose = null;
        if (typeof sock.terminate === 'function') sock.terminate();
        resolve();
      }, this.#opts.closeTimeoutMs);
      try {
        sock.close(CLOSE.NORMAL, 'client closed');
      } catch {
        done();
      }
    });
    return this.#closing;
  }

  // ----- connection lifecycle -------------------------------------------

  #isOpen() {
    return this.#state === 'open' && this.#socket !== null && this.#socket.readyState === SOCKET_OPEN;
  }

  /** Starts one connection attempt: codec, token, socket. */
  async #connect() {
    const gen = ++this.#gen;
    this.#setState('connecting', { attempt: this.#attempt });
    try {
      this.#codec ??= await loadCodec(this.#opts.format ?? 'json', this.#opts.msgpack);
    } catch (err) {
      // A missing library will not appear by retrying: stop.
      this.#emit('error', new HubError('config', err.message, { cause: err }));
      this.#clearTimers();
      this.#setState('closed', { reason: err.message });
      return;
    }
    if (gen !== this.#gen) return;
    const exp = jwtExpiryMs(this.#token);
    // A token that expires within the hub's first seconds is not worth sending.
    if (this.#tokenStale || this.#token === null || (exp !== null && exp <= this.#clock.now() + 5_000)) {
      let token;
      try {
        token = await this.#getToken({ reason: this.#token === null ? 'connect' : 'unauthorized' });
      } catch (err) {
        if (gen !== this.#gen) return;
        // Retried like a failed connection: reported in the state, not as an 'error'.
        const failure = new HubError('token', `getToken() failed: ${err?.message ?? err}`, { cause: err });
        this.#scheduleReconnect(CLOSE.UNAUTHORIZED, failure.message, failure);
        return;
      }
      if (gen !== this.#gen) return;
      if (typeof token !== 'string' || token === '') {
        // The app has no token to give (signed out): stop rather than loop.
        this.#clearTimers();
        this.#setState('closed', { code: CLOSE.UNAUTHORIZED, reason: 'no token' });
        return;
      }
      this.#token = token;
      this.#tokenStale = false;
    }
    let sock;
    try {
      sock = new this.#WebSocket(this.#url, [this.#codec.subprotocol]);
    } catch (err) {
      // The constructor throws for what retrying will not mend (a URL or
      // subprotocol it refuses, a page's security policy): the app is told.
      const failure = new HubError('transport', `cannot open ${this.#url}: ${err?.message ?? err}`, { cause: err });
      this.#emit('error', failure);
      this.#scheduleReconnect(CLOSE.ABNORMAL, 'cannot open the socket', failure);
      return;
    }
    this.#socket = sock;
    this.#transportError = null;
    sock.binaryType = 'arraybuffer';
    this.#timers.connect = this.#clock.setTimeout(() => {
      if (gen === this.#gen) this.#drop(sock, CLOSE.DEAD, 'no welcome in time');
    }, this.#opts.connectTimeoutMs);
    sock.onopen = () => {
      if (gen !== this.#gen) return;
      this.#lastFrameAt = this.#clock.now();
      const auth = { type: 'auth', token: this.#token, ref: this.#newRef('auth') };
      if (this.#lastSeq !== undefined) auth.since = this.#lastSeq;
      // Joined before the replay starts: what these rooms missed is resumed too.
      if (this.#rooms.size > 0) auth.rooms = [...this.#rooms];
      this.#authRef = auth.ref;
      this.#send(auth);
    };
    sock.onmessage = (ev) => {
      if (gen !== this.#gen) return;
      this.#lastFrameAt = this.#clock.now();
      let frame;
      try {
        frame = this.#codec.decode(ev.data);
      } catch (err) {
        this.#emit('error', new HubError('decode', `cannot decode a frame from the hub: ${err.message}`, { cause: err }));
        return;
      }
      if (frame && typeof frame === 'object') this.#onFrame(frame);
    };
    sock.onerror = (ev) => {
      if (gen !== this.#gen) return;
      // A close always follows; the state change it causes carries this
      // error, so a hub that is down is one 'reconnecting' per attempt, not
      // an 'error' event each time.
      const detail = ev?.message ?? ev?.error?.message;
      this.#transportError = new HubError('transport', `WebSocket error on ${this.#url}${detail ? `: ${detail}` : ''}`);
    };
    sock.onclose = (ev) => {
      if (gen !== this.#gen) return;
      this.#onClosed(ev?.code ?? CLOSE.ABNORMAL, ev?.reason ?? '');
    };
  }

  /** Abandons sock at once (no waiting for a closing handshake) and handles it as closed with code. */
  #drop(sock, code, reason) {
    sock.onopen = sock.onmessage = sock.onerror = sock.onclose = null;
    try {
      if (typeof sock.terminate === 'function') sock.terminate();
      else sock.close(CLOSE.DEAD, reason);
    } catch {
      // Already closed: nothing to do.
    }
    this.#onClosed(code, reason);
  }

  /** The current socket closed (or was dropped): decide when to try again. */
  #onClosed(code, reason) {
    const failure = this.#transportError;
    this.#transportError = null;
    this.#gen++;
    this.#socket = null;
    this.#authRef = null;
    // Unsubscribes in flight are done: the room is not joined again.
    for (const req of this.#requests.values()) if (req.type === 'unsubscribe') req.resolve(req.room);
    this.#requests.clear();
    if (code === CLOSE.UNAUTHORIZED) this.#tokenStale = true;
    if (this.#openedAt !== null && this.#clock.now() - this.#openedAt >= this.#opts.stableMs) this.#attempt = 0;
    this.#openedAt = null;
    this.#scheduleReconnect(code, reason || failure?.message, failure);
  }

  /**
   * Waits the backoff, then connects again. The 'reconnecting' state change
   * says when (delayMs), after which attempt, and why: the close code and
   * reason, and the failure (a HubError) when the transport or getToken()
   * failed.
   */
  #scheduleReconnect(code, reason, failure = null) {
    this.#clearTimers();
    this.#attempt++;
    let ceiling = backoffCeiling(this.#attempt, this.#opts);
    if (SPREAD_CODES.has(code)) ceiling = Math.max(ceiling, this.#opts.drainSpreadMs);
    const delay = Math.floor(this.#random() * ceiling);
    const change = { attempt: this.#attempt, delayMs: delay, delay, code, reason: reason || describeClose(code) };
    if (failure) change.error = failure;
    this.#setState('reconnecting', change);
    const gen = this.#gen;
    this.#timers.retry = this.#clock.setTimeout(() => {
      if (gen === this.#gen && this.#state === 'reconnecting') this.#connect();
    }, delay);
  }

  #clearTimers() {
    for (const k of Object.keys(this.#timers)) {
      if (this.#timers[k] !== null) this.#clock.clearTimeout(this.#timers[k]);
      this.#timers[k] = null;
    }
  }

  // ----- frames ---------------------------------------------------------

  #onFrame(f) {
    switch (f.type) {
      case 'welcome':
        return this.#onWelcome(f);
      case 'event':
        return this.#onEvent(f);
      case 'subscribed':
      case 'unsubscribed':
        return this.#onRoomReply(f);
      case 'error':
        return this.#onError(f);
      default:
        return undefined; // pong and anything newer: the frame time was noted
    }
  }

  #onWelcome(w) {
    const refresh = this.#state === 'open';
    this.#welcome = w;
    if (refresh) {
      this.#scheduleRefresh();
      this.#emit('welcome', w, { refresh: true });
      return;
    }
    this.#clock.clearTimeout(this.#timers.connect);
    this.#timers.connect = null;
    this.#openedAt = this.#clock.now();
    const resumedFrom = this.#lastSeq;
    if (this.#lastSeq === undefined && Number.isSafeInteger(w.last_seq)) this.#lastSeq = w.last_seq;
    this.#setState('open', { attempt: this.#attempt, session: w.session, since: resumedFrom });
    if (this.#state !== 'open') return; // a listener closed the client
    this.#emit('welcome', w, { refresh: false });
    if (!this.#isOpen()) return;
    // Rooms named in the auth frame and joined are listed in the welcome;
    // refused ones were reported (and forgotten) before it. Any other room
    // (asked for after the auth frame went, or a hub that ignores rooms in
    // auth) is subscribed now.
    const joined = new Set(Array.isArray(w.rooms) ? w.rooms : []);
    for (const room of this.#rooms) {
      if (joined.has(room)) this.#settleRoom(room, null);
      else this.#sendSubscribe(room);
    }
    for (const id of this.#queuedAcks) this.#send({ type: 'ack', id, ref: `ack:${id}` });
    this.#queuedAcks.clear();
    this.#schedulePing();
    this.#scheduleDeadCheck();
    this.#scheduleRefresh();
  }

  #onEvent(e) {
    if (this.#seen.has(e.id)) {
      // Delivered before: the app has it. Ack again in case the first ack was lost with the connection.
      if (this.#opts.autoAck && e.ack === true) this.ack(e.id);
      return;
    }
    this.#seen.add(e.id);
    if (Number.isSafeInteger(e.seq) && (this.#lastSeq === undefined || e.seq > this.#lastSeq)) this.#lastSeq = e.seq;
    this.#emit('event', e);
    if (this.#opts.autoAck && e.ack === true && Number.isSafeInteger(e.id) && e.id > 0) this.ack(e.id);
  }

  #onRoomReply(f) {
    const req = this.#requests.get(f.ref);
    if (!req) return;
    this.#requests.delete(f.ref);
    if (req.type === 'subscribe') this.#settleRoom(req.room, null);
    else req.resolve(req.room);
  }

  #onError(f) {
    const err = new HubError(String(f.code ?? 'unknown'), String(f.message ?? 'error from the hub'), { frame: f });
    if (f.ref !== undefined) err.ref = f.ref;
    if (f.code === 'resume_gap' && f.oldest_seq !== undefined) err.oldestSeq = f.oldest_seq;
    if (f.code === 'resume_gap' && f.newest_seq !== undefined) {
      // The seq we resumed from is beyond everything the hub has (a restored
      // backup, another database): the hub continues after the welcome's
      // last_seq, so the next resume must start there too, or every later
      // reconnect would ask from the same impossible point and miss what
      // happened while disconnected.
      err.newestSeq = f.newest_seq;
      const from = this.#welcome?.last_seq;
      this.#lastSeq = Number.isSafeInteger(from) ? from : Number.isSafeInteger(f.newest_seq) ? f.newest_seq : undefined;
    }
    if (typeof f.room === 'string') err.room = f.room;
    if (f.ref !== undefined && f.ref === this.#authRef && typeof f.room === 'string') {
      // A room named in the auth frame was refused: forget it, like a refused subscribe.
      this.#rooms.delete(f.room);
      if (this.#settleRoom(f.room, err)) return;
      this.#emit('error', err);
      return;
    }
    const req = f.ref !== undefined ? this.#requests.get(f.ref) : undefined;
    if (req) {
      this.#requests.delete(f.ref);
      if (req.type === 'subscribe') {
        // The hub will not let us in: forget the room so reconnects do not ask again.
        this.#rooms.delete(req.room);
        err.room = req.room;
        if (this.#settleRoom(req.room, err)) return;
      } else {
        req.reject(err);
        return;
      }
    }
    if (typeof f.ref === 'string' && f.ref.startsWith('ack:')) err.ackId = Number(f.ref.slice(4));
    this.#emit('error', err);
  }

  /** Settles the subscribe() promises of room (rejects when err); returns whether there were any. */
  #settleRoom(room, err) {
    const waiters = this.#subWaiters.get(room);
    this.#subWaiters.delete(room);
    if (!waiters?.length) return false;
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve(room);
    }
    return true;
  }

  #sendSubscribe(room) {
    const ref = this.#newRef('sub');
    this.#requests.set(ref, { type: 'subscribe', room });
    this.#send({ type: 'subscribe', room, ref });
  }

  #send(obj) {
    const sock = this.#socket;
    if (!sock || sock.readyState !== SOCKET_OPEN) return false;
    try {
      sock.send(this.#codec.encode(obj));
      return true;
    } catch (err) {
      this.#emit('error', new HubError('transport', `cannot send a ${obj.type} frame: ${err?.message ?? err}`, { cause: err }));
      return false;
    }
  }

  #newRef(prefix) {
    this.#refSeq = (this.#refSeq + 1) % Number.MAX_SAFE_INTEGER;
    return `${prefix}:${this.#refSeq}`;
  }

  // ----- keep-alive, dead connections, token refresh -------------------

  #schedulePing() {
    const gen = this.#gen;
    this.#timers.ping = this.#clock.setTimeout(() => {
      if (gen !== this.#gen) return;
      this.#send({ type: 'ping' });
      this.#schedulePing();
    }, this.#opts.pingIntervalMs);
  }

  /** Fires when the newest frame may be deadAfterMs old; drops the socket if it is. */
  #scheduleDeadCheck() {
    const gen = this.#gen;
    const due = this.#lastFrameAt + this.#opts.deadAfterMs - this.#clock.now();
    this.#timers.dead = this.#clock.setTimeout(() => {
      if (gen !== this.#gen || !this.#socket) return;
      if (this.#clock.now() - this.#lastFrameAt >= this.#opts.deadAfterMs) {
        this.#drop(this.#socket, CLOSE.DEAD, `no frame from the hub for ${this.#opts.deadAfterMs} ms`);
      } else this.#scheduleDeadCheck();
    }, Math.max(0, due));
  }

  /** Plans the in-band refresh of the current token shortly before its exp. */
  #scheduleRefresh() {
    if (this.#timers.refresh !== null) this.#clock.clearTimeout(this.#timers.refresh);
    this.#timers.refresh = null;
    const exp = jwtExpiryMs(this.#token);
    if (exp === null) return;
    const left = exp - this.#clock.now();
    const delay = Math.max(0, left - Math.min(this.#opts.refreshBeforeMs, Math.max(0, left) / 2));
    this.#planRefresh(delay);
  }

  #planRefresh(delay) {
    const gen = this.#gen;
    this.#timers.refresh = this.#clock.setTimeout(() => {
      this.#timers.refresh = null;
      if (gen === this.#gen) this.#refresh(gen);
    }, delay);
  }

  async #refresh(gen) {
    const oldExp = jwtExpiryMs(this.#token) ?? 0;
    let token;
    try {
      token = await this.#getToken({ reason: 'refresh' });
    } catch (err) {
      if (gen !== this.#gen) return;
      this.#emit('error', new HubError('token', `getToken() failed while refreshing: ${err?.message ?? err}`, { cause: err }));
      token = null;
    }
    if (gen !== this.#gen || !this.#isOpen()) return;
    const newExp = jwtExpiryMs(token);
    if (typeof token !== 'string' || token === '' || newExp === null || newExp <= oldExp) {
      // Nothing newer yet: ask again while the current token still has life
      // (the hub closes with 4001 after exp plus its leeway; we reconnect then).
      if (this.#clock.now() < oldExp) this.#planRefresh(this.#opts.refreshRetryMs);
      return;
    }
    this.#token = token;
    this.#send({ type: 'auth', token, ref: this.#newRef('refresh') });
    // The hub answers with a welcome, which plans the next refresh.
  }

  // ----- listeners --------------------------------------------------------

  #setState(state, details = {}) {
    this.#state = state;
    this.#emit('state', { state, ...details });
  }

  #emit(name, ...args) {
    const set = this.#listeners.get(name);
    if (!set?.size) {
      if (name === 'error' && this.#opts.logErrors) console.warn('[hub-client]', args[0]?.message);
      return;
    }
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        if (name === 'error') {
          // Never loop through the error listeners: let the platform report it.
          queueMicrotask(() => {
            throw err;
          });
        } else {
          this.#emit('error', new HubError('listener', `a '${name}' listener threw: ${err?.message ?? err}`, { cause: err }));
        }
      }
    }
  }
}

/**
 * Creates a client and starts connecting on the next microtask.
 * See README.md for the options; index.d.ts for their types.
 */
export function createHubClient(url, options) {
  return new HubClient(url, options);
}
