// fakes.js - a clock and a WebSocket the unit tests drive by hand.
//
// FakeClock runs timers only when a test advances it, in due order, so a
// test can check the backoff schedule to the millisecond. FakeWebSocket
// records every socket the client opens; the test plays the hub: open(),
// deliver(frame), serverClose(code), fail(message). Frames the client sends are decoded
// (JSON) into sent[].

export class FakeClock {
  constructor(start = 1_764_262_800_000) {
    this.t = start;
    this.timers = new Map(); // id → {at, fn}
    this.nextId = 1;
  }

  now = () => this.t;

  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms ?? 0), fn, seq: id });
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  /** The delays (from now) of the pending timers, sorted. */
  pending() {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b);
  }

  /** Moves time forward by ms, running every timer that falls due (and flushing promises after each). */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, x] of this.timers) if (x.at <= end && (!next || x.at < next[1].at || (x.at === next[1].at && x.seq < next[1].seq))) next = [id, x];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** Lets pending promise callbacks (getToken, codec loading) run. */
export async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  /** Every socket created, oldest first. */
  static all = [];

  static reset() {
    FakeWebSocket.all = [];
  }

  static get last() {
    return FakeWebSocket.all[FakeWebSocket.all.length - 1];
  }

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedBy = null; // {code, reason} when the client closed it
    this.terminated = false;
    this.autoPong = true; // answer pings like a live hub; false plays a dead one
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    FakeWebSocket.all.push(this);
  }

  // --- what the client calls
  send(data) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    const frame = typeof data === 'string' ? JSON.parse(data) : data;
    this.sent.push(frame);
    if (this.autoPong && frame?.type === 'ping') queueMicrotask(() => this.readyState === 1 && this.deliver({ type: 'pong' }));
  }

  close(code = 1000, reason = '') {
    if (this.readyState >= 2) return;
    this.closedBy = { code, reason };
    this.readyState = 2;
    // The hub answers the closing handshake later.
    setImmediate(() => this.#closed(code, reason));
  }

  terminate() {
    this.terminated = true;
    this.#closed(1006, '');
  }

  // --- what the test (the hub) does
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  welcome(extra = {}) {
    this.deliver({ type: 'welcome', session: 's1', user: 'u1', tenant: 't', role: 'guard', rooms: ['all'], last_seq: 0, ...extra });
  }

  serverClose(code, reason = '') {
    this.#closed(code, reason);
  }

  /** The transport fails (refused, reset): 'error' with message, then close 1006, as browsers and ws do. */
  fail(message) {
    this.onerror?.({ type: 'error', message });
    this.#closed(1006, '');
  }

  /** Frames the client sent of one type. */
  sentOf(type) {
    return this.sent.filter((f) => f.type === type);
  }

  #closed(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
}

/** An unsigned JWT whose payload is claims (the client never verifies). */
export function fakeJwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.c2ln`;
}
