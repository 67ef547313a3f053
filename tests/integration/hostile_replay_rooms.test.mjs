// hostile_replay_rooms.test.mjs - a resume by a connection that has left
// every room (issue 16, item 1).
//
// The replay query names the connection's rooms as a text[] literal. A
// client that authenticates with since and, in the same write, leaves all,
// user:<sub> and role:<role> has no room when the first replay page is
// asked for; the literal for no rooms was one byte too small (a heap
// overflow: ASan aborts the sanitizer build, a release build corrupts its
// heap silently). Now such a connection is caught up at once, without a
// query, and continues live in the rooms it joins later.
//
// The four frames go out in one write on a raw socket, as an attacker
// would send them, so they are all read before the replay's first page
// (the tenant is known to the hub already, so the auth frame is taken at
// once, without a database round trip).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { useLifecycle, startHub, db, mintToken, login, assertUsable, httpGet } from './lib/harness.mjs';

useLifecycle();

let database;
let hub;

before(async () => {
  database = await db();
  hub = await startHub();
});

/** One masked client text frame (RFC 6455 §5.2) carrying text. */
function maskedText(text) {
  const payload = Buffer.from(text, 'utf8');
  const n = payload.length;
  let head;
  if (n < 126) head = Buffer.from([0x81, 0x80 | n]);
  else {
    head = Buffer.alloc(4);
    head[0] = 0x81;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(n, 2);
  }
  const mask = randomBytes(4);
  for (let i = 0; i < n; i++) payload[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, payload]);
}

/**
 * A WebSocket client on a raw TCP socket: upgrade by hand, write bytes as
 * they are given, and collect the server's (unmasked, unfragmented) text
 * frames as parsed JSON.
 */
class RawClient {
  constructor(sock) {
    this.sock = sock;
    this.pending = Buffer.alloc(0);
    this.frames = [];
    this.closed = false;
    this.waiters = new Set();
    sock.on('data', (d) => this.#data(d));
    sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  static open(port) {
    return new Promise((resolve, reject) => {
      const sock = tcpConnect({ host: '127.0.0.1', port });
      let got = Buffer.alloc(0);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no upgrade answer within 10 s; got ${JSON.stringify(got.toString('latin1').slice(0, 300))}`));
      }, 10_000);
      sock.on('error', () => {});
      sock.once('connect', () => {
        sock.write([
          'GET /ws HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Protocol: armonia.v1.json',
        ].join('\r\n') + '\r\n\r\n');
      });
      const onData = (chunk) => {
        got = Buffer.concat([got, chunk]);
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        sock.removeListener('data', onData);
        if (!got.toString('latin1').startsWith('HTTP/1.1 101')) {
          sock.destroy();
          reject(new Error(`upgrade refused: ${got.toString('latin1').split('\r\n')[0]}`));
          return;
        }
        const c = new RawClient(sock);
        if (got.length > end + 4) c.#data(got.subarray(end + 4));
        resolve(c);
      };
      sock.on('data', onData);
    });
  }

  #data(d) {
    this.pending = Buffer.concat([this.pending, d]);
    for (;;) {
      const b = this.pending;
      if (b.length < 2) break;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) break;
      const opcode = b[0] & 0x0f;
      const payload = b.subarray(off, off + len);
      this.pending = b.subarray(off + len);
      if (opcode === 1) this.frames.push(JSON.parse(payload.toString('utf8')));
      else if (opcode === 8) this.frames.push({ type: '(close)', code: len >= 2 ? payload.readUInt16BE(0) : null });
    }
    this.#wake();
  }

  #wake() {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves with the first frame (in arrival order, kept) that pred accepts. */
  until(pred, what, timeout = 15_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.frames.find(pred);
        if (f) done(() => resolve(f));
        else if (this.closed) done(() => reject(new Error(`connection closed before ${what}; frames: ${JSON.stringify(this.frames)}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within ${timeout} ms; frames: ${JSON.stringify(this.frames)}`))), timeout);
      const done = (fn) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        fn();
      };
      this.waiters.add(check);
      check();
    });
  }

  send(obj) {
    this.sock.write(maskedText(JSON.stringify(obj)));
  }

  destroy() {
    this.sock.destroy();
  }
}

test('auth with since:0 and leaving every automatic room in the same write: the hub survives, the replay is empty, and the connection goes live in rooms it joins later', async () => {
  const tenant = await database.newTenant('noroom');
  const sub = `guard-${randomBytes(3).toString('hex')}`;
  const token = mintToken(hub.secret, { sub, tenant, role: 'guard' });
  // Another connection of the tenant first: the hub then knows the tenant
  // and authenticates the raw client's auth frame at once, so the frames
  // after it are read while the replay's first query is on its way.
  const warm = await login(hub, { sub: 'guard-warm', tenant, role: 'guard' });
  // Something to replay, had the connection kept its rooms (routed live
  // already: the replay is all the raw client could get it from).
  const before = await database.emit(tenant, 'note', ['all'], { n: 1 });
  await warm.next({ type: 'event', where: (e) => e.id === before, timeout: 15_000 });
  const raw = await RawClient.open(hub.port);
  try {
    raw.sock.write(Buffer.concat([
      maskedText(JSON.stringify({ type: 'auth', token, since: 0, ref: 'a' })),
      maskedText(JSON.stringify({ type: 'unsubscribe', room: 'all' })),
      maskedText(JSON.stringify({ type: 'unsubscribe', room: `user:${sub}` })),
      maskedText(JSON.stringify({ type: 'unsubscribe', room: 'role:guard' })),
    ]));
    const welcome = await raw.until((f) => f.type === 'welcome' || f.type === 'error', 'a welcome');
    assert.equal(welcome.type, 'welcome', `expected a welcome, got ${JSON.stringify(welcome)}`);
    await raw.until((f) => f.type === 'unsubscribed' && f.room === 'role:guard', 'the last unsubscribed');
    // A second resume, asked for now, is answered after the raw client's:
    // once it has its replayed event, the raw client's first page was asked
    // for (in no room) too.
    const second = await login(hub, { sub: 'guard-2', tenant, role: 'guard' }, { since: 0 });
    await second.next({ type: 'event', where: (e) => e.id === before, timeout: 15_000 });
    raw.send({ type: 'ping', ref: 'p1' });
    await raw.until((f) => f.type === 'pong' && f.ref === 'p1', 'a pong after the replay');
    assert.equal(hub.exit, null, `the hub exited: ${JSON.stringify(hub.exit)}`);

    // It got nothing from the outbox: it was in no room.
    assert.ok(!raw.frames.some((f) => f.type === 'event'), `events replayed to a connection in no room: ${JSON.stringify(raw.frames)}`);
    assert.ok(!raw.frames.some((f) => f.type === 'error' && f.code !== 'resume_gap'), `errors: ${JSON.stringify(raw.frames)}`);

    // It is live: an event to a room it joins now arrives, the older one does not.
    raw.send({ type: 'subscribe', room: 'all' });
    await raw.until((f) => f.type === 'subscribed' && f.room === 'all', 'subscribed all');
    const after = await database.emit(tenant, 'note', ['all'], { n: 2 });
    const ev = await raw.until((f) => f.type === 'event', 'the live event');
    assert.equal(ev.id, after, `expected the live event ${after} (not the earlier ${before}), got ${JSON.stringify(ev)}`);
  } finally {
    raw.destroy();
  }

  // The hub still serves everyone else.
  const r = await httpGet(hub.port, '/healthz');
  assert.equal(r.status, 200, `/healthz: ${r.status} ${r.body}`);
  const c = await login(hub, { sub: 'guard-3', tenant, role: 'guard' }, { since: 0 });
  await c.next({ type: 'event', where: (e) => e.id === before, timeout: 15_000 });
  await assertUsable(c);
  await assertUsable(warm);
});
