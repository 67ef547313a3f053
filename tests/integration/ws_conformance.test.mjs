// ws_conformance.test.mjs - the WebSocket and HTTP/1.1 rules a server must
// keep (RFC 6455, RFC 7230), checked on raw sockets: the cases of the
// Autobahn test suite that matter for a server (framing, fragmentation,
// UTF-8, close handshake), plus the handshake version, masking, control
// frames against the rate limit, and pipelined HTTP requests.
//
// The client here builds every frame by hand, so it can send what a real
// client library never would. Nothing needs a token: before authentication
// the hub still answers every complete text message (an `unauthorized`
// error echoing the message's `ref`), which is how a test sees that a
// message was reassembled and read, and what it held.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { useLifecycle, startHub } from './lib/harness.mjs';

useLifecycle();

// Generous for a busy machine: every wait ends as soon as its condition holds.
const WAIT_MS = 10_000;

const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

let hub;

before(async () => {
  hub = await startHub({ env: { HUB_AUTH_TIMEOUT_MS: 60_000 } });
});

/**
 * One client frame: fin, rsv (the three RSV bits, 0..7), opcode, payload,
 * masked with a random key unless mask is false. len overrides the 7-bit
 * length field (126 forces the 16-bit form for a short payload).
 */
function frame({ fin = true, rsv = 0, opcode, payload = Buffer.alloc(0), mask = true, extended = false }) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const head = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf)];
  const m = mask ? 0x80 : 0;
  if (body.length < 126 && !extended) head.push(m | body.length);
  else if (body.length < 65536) head.push(m | 126, body.length >> 8, body.length & 0xff);
  else throw new Error('payload too long for this test client');
  if (!mask) return Buffer.concat([Buffer.from(head), body]);
  const key = randomBytes(4);
  const out = Buffer.from(body);
  for (let i = 0; i < out.length; i++) out[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), key, out]);
}

const text = (s, o = {}) => frame({ opcode: OP.TEXT, payload: s, ...o });
const closeFrame = (code, reason = Buffer.alloc(0), o = {}) => {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(code);
  return frame({ opcode: OP.CLOSE, payload: Buffer.concat([p, Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]), ...o });
};
const ping = (ref) => JSON.stringify({ type: 'ping', ref });

/**
 * A raw connection: sends bytes as given and parses what comes back (HTTP
 * head, then unmasked server frames). Everything received is kept, so a
 * test waits for a condition on it rather than for a time.
 */
class Raw {
  constructor(sock) {
    this.sock = sock;
    this.data = Buffer.alloc(0);
    this.head = null; // the HTTP response head, once complete
    this.frames = [];
    this.ended = false;
    this.waiters = new Set();
    sock.on('data', (d) => {
      this.data = Buffer.concat([this.data, d]);
      this.parse();
      this.wake();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  static open(port) {
    return new Promise((resolve, reject) => {
      const sock = tcpConnect({ host: '127.0.0.1', port });
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.removeListener('error', reject);
        resolve(new Raw(sock));
      });
    });
  }

  /** Connects and upgrades; resolves once the response head arrived (see this.status). */
  static async upgrade(port, { version = '13', protocol = 'armonia.v1.json' } = {}) {
    const r = await Raw.open(port);
    r.wantFrames = true;
    const lines = [
      'GET /ws HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      ...(version === null ? [] : [`Sec-WebSocket-Version: ${version}`]),
      ...(protocol ? [`Sec-WebSocket-Protocol: ${protocol}`] : []),
    ];
    r.write(`${lines.join('\r\n')}\r\n\r\n`);
    await r.until(() => r.head !== null || r.ended, 'the upgrade response');
    return r;
  }

  get status() {
    const m = /^HTTP\/1\.1 (\d{3})/.exec(this.head ?? '');
    return m ? Number(m[1]) : null;
  }

  write(b) {
    if (!this.sock.destroyed) this.sock.write(b);
  }

  parse() {
    if (this.head === null) {
      const i = this.data.indexOf('\r\n\r\n');
      if (i < 0 || !this.wantFrames) return;
      this.head = this.data.subarray(0, i).toString('latin1');
      this.data = this.data.subarray(i + 4);
      if (this.status !== 101) return;
    }
    for (;;) {
      if (this.data.length < 2) return;
      const b0 = this.data[0], b1 = this.data[1];
      let len = b1 & 0x7f, at = 2;
      if (len === 126) {
        if (this.data.length < 4) return;
        len = this.data.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.data.length < 10) return;
        len = Number(this.data.readBigUInt64BE(2));
        at = 10;
      }
      if (b1 & 0x80) throw new Error('the server sent a masked frame');
      if (this.data.length < at + len) return;
      this.frames.push({ fin: !!(b0 & 0x80), rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, payload: this.data.subarray(at, at + len) });
      this.data = this.data.subarray(at + len);
    }
  }

  wake() {
    for (const w of this.waiters) w();
  }

  /** Resolves once cond() holds; fails after WAIT_MS naming what was awaited and what arrived. */
  until(cond, what, timeout = WAIT_MS) {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${what} within ${timeout} ms; head ${JSON.stringify(this.head)}, frames ${this.describe()}, ended ${this.ended}`));
      }, timeout);
      this.waiters.add(check);
    });
  }

  describe() {
    return JSON.stringify(this.frames.map((f) => ({ op: f.opcode, fin: f.fin, payload: f.opcode === OP.CLOSE ? closeInfo(f) : f.payload.toString('utf8').slice(0, 120) })));
  }

  /** The text messages received, parsed. */
  messages() {
    return this.frames.filter((f) => f.opcode === OP.TEXT).map((f) => JSON.parse(f.payload.toString('utf8')));
  }

  /** Resolves with the reply (any text message) echoing ref. */
  async reply(ref) {
    await this.until(() => this.messages().some((m) => m.ref === ref), `reply with ref ${JSON.stringify(ref)}`);
    return this.messages().find((m) => m.ref === ref);
  }

  /**
   * Resolves with {code, reason} of the server's close frame once it
   * arrived, or {code: null} when the connection ended without one.
   */
  async closed() {
    await this.until(() => this.ended || this.frames.some((x) => x.opcode === OP.CLOSE), 'close frame or end of the connection');
    const f = this.frames.find((x) => x.opcode === OP.CLOSE);
    return f ? closeInfo(f) : { code: null, reason: null };
  }

  end() {
    this.sock.destroy();
  }
}

function closeInfo(f) {
  if (f.payload.length < 2) return { code: 1005, reason: '' };
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString('utf8') };
}

/** Sends bytes on a fresh upgraded connection and expects the hub to close it with code. */
async function expectClose(bytes, code, what) {
  const r = await Raw.upgrade(hub.port);
  assert.equal(r.status, 101, `upgrade refused: ${r.head}`);
  r.write(bytes);
  const c = await r.closed();
  assert.equal(c.code, code, `${what}: expected close ${code}, got ${JSON.stringify(c)}; frames ${r.describe()}`);
  return r;
}

// --- handshake -------------------------------------------------------------

test('handshake: Sec-WebSocket-Version 13 is upgraded; 8 (and a missing version) is refused with 426 naming version 13', async () => {
  const ok = await Raw.upgrade(hub.port);
  assert.equal(ok.status, 101, ok.head);
  ok.end();
  for (const version of ['8', '12', '14', 'x', null]) {
    const r = await Raw.upgrade(hub.port, { version });
    assert.equal(r.status, 426, `Sec-WebSocket-Version ${version}: expected 426, got ${JSON.stringify(r.head)}`);
    assert.match(r.head, /^Sec-WebSocket-Version: 13$/im, `426 must name the supported version: ${r.head}`);
    r.end();
  }
});

test('handshake: frames sent with the upgrade request, before the 101, are not read: close 1002', async () => {
  const r = await Raw.open(hub.port);
  r.wantFrames = true;
  const req = ['GET /ws HTTP/1.1', `Host: 127.0.0.1:${hub.port}`, 'Upgrade: websocket', 'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: armonia.v1.json'];
  r.write(Buffer.concat([Buffer.from(`${req.join('\r\n')}\r\n\r\n`), text(ping('early'))]));
  const c = await r.closed();
  assert.equal(c.code, 1002, `early frame: ${JSON.stringify(c)}; frames ${r.describe()}`);
  assert.ok(!r.messages().some((m) => m.ref === 'early'), `the early frame was answered: ${r.describe()}`);
});

// --- framing ---------------------------------------------------------------

test('framing: a masked text message is read and answered', async () => {
  const r = await Raw.upgrade(hub.port);
  r.write(text(ping(1)));
  const m = await r.reply(1);
  assert.equal(m.type, 'error');
  assert.equal(m.code, 'unauthorized');
  r.end();
});

test('framing: an unmasked client frame is not read: close 1002', async () => {
  const r = await expectClose(text(ping(2), { mask: false }), 1002, 'unmasked text frame');
  assert.ok(!r.messages().some((m) => m.ref === 2), `the unmasked frame was answered: ${r.describe()}`);
  await expectClose(frame({ opcode: OP.PING, payload: 'p', mask: false }), 1002, 'unmasked ping');
});

test('framing: reserved bits without an extension: close 1002', async () => {
  for (const rsv of [1, 2, 4, 7]) await expectClose(text(ping(3), { rsv }), 1002, `rsv ${rsv}`);
});

test('framing: reserved opcodes: close 1002', async () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) await expectClose(frame({ opcode, payload: 'x' }), 1002, `opcode ${opcode}`);
});

test('framing: a control frame with more than 125 bytes of payload: close 1002', async () => {
  await expectClose(frame({ opcode: OP.PING, payload: Buffer.alloc(126, 0x61) }), 1002, 'ping of 126 bytes');
  await expectClose(frame({ opcode: OP.PING, payload: 'short', extended: true }), 1002, 'ping with a 16-bit length');
});

test('framing: ping is answered with a pong carrying its payload; an unsolicited pong is ignored', async () => {
  const r = await Raw.upgrade(hub.port);
  r.write(frame({ opcode: OP.PONG, payload: 'unsolicited' }));
  r.write(frame({ opcode: OP.PING, payload: 'hello' }));
  await r.until(() => r.frames.some((f) => f.opcode === OP.PONG), 'pong');
  assert.equal(r.frames.find((f) => f.opcode === OP.PONG).payload.toString(), 'hello');
  // The largest control payload (125 bytes) comes back whole: lws reads a
  // connection's frames through a small per-connection buffer (WS_RX_CHUNK).
  const big = Buffer.alloc(125, 0x62);
  r.write(frame({ opcode: OP.PING, payload: big }));
  await r.until(() => r.frames.filter((f) => f.opcode === OP.PONG).length === 2, 'second pong');
  assert.deepEqual(r.frames.filter((f) => f.opcode === OP.PONG)[1].payload, big);
  r.write(text(ping(4)));
  await r.reply(4);
  r.end();
});

// --- fragmentation ---------------------------------------------------------

test('fragmentation: a text message in three fragments is reassembled', async () => {
  const r = await Raw.upgrade(hub.port);
  const s = ping('frag-3');
  r.write(Buffer.concat([
    frame({ opcode: OP.TEXT, fin: false, payload: s.slice(0, 5) }),
    frame({ opcode: OP.CONT, fin: false, payload: s.slice(5, 12) }),
    frame({ opcode: OP.CONT, fin: true, payload: s.slice(12) }),
  ]));
  await r.reply('frag-3');
  r.end();
});

test('fragmentation: a ping between fragments is answered at once and the message still arrives whole', async () => {
  const r = await Raw.upgrade(hub.port);
  const s = ping('frag-ping');
  r.write(frame({ opcode: OP.TEXT, fin: false, payload: s.slice(0, 8) }));
  r.write(frame({ opcode: OP.PING, payload: 'mid' }));
  await r.until(() => r.frames.some((f) => f.opcode === OP.PONG), 'pong between fragments');
  assert.equal(r.frames.find((f) => f.opcode === OP.PONG).payload.toString(), 'mid');
  r.write(frame({ opcode: OP.CONT, fin: true, payload: s.slice(8) }));
  await r.reply('frag-ping');
  r.end();
});

test('fragmentation: a continuation with no message started: close 1002', async () => {
  await expectClose(frame({ opcode: OP.CONT, payload: ping(5) }), 1002, 'lone continuation');
});

test('fragmentation: a new text frame while a fragmented message is open: close 1002', async () => {
  await expectClose(Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: '{"type"' }), text(ping(6))]), 1002, 'text inside a fragmented message');
});

test('fragmentation: a fragmented control frame: close 1002', async () => {
  await expectClose(frame({ opcode: OP.PING, fin: false, payload: 'a' }), 1002, 'ping without FIN');
});

// --- UTF-8 -----------------------------------------------------------------

test('utf-8: invalid UTF-8 in a text frame: close 1007', async () => {
  for (const bad of [Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xff]), Buffer.from([0xf4, 0x90, 0x80, 0x80])]) {
    const body = Buffer.concat([Buffer.from('{"type":"ping","ref":"'), bad, Buffer.from('"}')]);
    await expectClose(frame({ opcode: OP.TEXT, payload: body }), 1007, `bytes ${bad.toString('hex')}`);
  }
});

test('utf-8: a text message split inside a multi-byte character is valid', async () => {
  const r = await Raw.upgrade(hub.port);
  const body = Buffer.from(ping('añ€😀'), 'utf8');
  const cut1 = body.indexOf(Buffer.from('ñ')) + 1; // inside ñ
  const cut2 = body.indexOf(Buffer.from('😀')) + 2; // inside the 4-byte emoji
  r.write(frame({ opcode: OP.TEXT, fin: false, payload: body.subarray(0, cut1) }));
  r.write(frame({ opcode: OP.CONT, fin: false, payload: body.subarray(cut1, cut2) }));
  r.write(frame({ opcode: OP.CONT, fin: true, payload: body.subarray(cut2) }));
  await r.reply('añ€😀');
  r.end();
});

test('utf-8: a text message ending inside a character: close 1007', async () => {
  const body = Buffer.concat([Buffer.from('{"type":"ping","ref":"x"}'), Buffer.from([0xe2, 0x82])]);
  await expectClose(Buffer.concat([frame({ opcode: OP.TEXT, fin: false, payload: body.subarray(0, 10) }), frame({ opcode: OP.CONT, payload: body.subarray(10) })]), 1007, 'truncated character');
});

// --- close handshake -------------------------------------------------------

test('close: a valid close code is echoed and the connection ends', async () => {
  for (const code of [1000, 1001, 3000, 4999]) {
    const r = await Raw.upgrade(hub.port);
    r.write(closeFrame(code, 'bye'));
    const c = await r.closed();
    assert.equal(c.code, code, `close ${code}: ${JSON.stringify(c)}`);
  }
  const r = await Raw.upgrade(hub.port);
  r.write(frame({ opcode: OP.CLOSE }));
  const c = await r.closed();
  assert.ok(c.code === 1005 || c.code === 1000, `empty close: answered ${JSON.stringify(c)}`);
});

test('close: invalid close codes and a one-byte payload: close 1002', async () => {
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) await expectClose(closeFrame(code), 1002, `code ${code}`);
  await expectClose(frame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }), 1002, 'one-byte close payload');
});

test('close: a close reason that is not UTF-8: close 1007', async () => {
  await expectClose(closeFrame(1000, Buffer.from([0x62, 0xff, 0x65])), 1007, 'reason not UTF-8');
});

test('close: data after the close frame is not read', async () => {
  const r = await Raw.upgrade(hub.port);
  r.write(Buffer.concat([closeFrame(1000), text(ping(7))]));
  const c = await r.closed();
  assert.equal(c.code, 1000);
  assert.ok(!r.messages().some((m) => m.ref === 7), `a frame after the close was answered: ${r.describe()}`);
});

// --- control frames and the rate limit -------------------------------------

test('rate: pings count against HUB_RATE_LIMIT/HUB_RATE_BURST: a flood is closed with 4029', async () => {
  const limited = await startHub({ env: { HUB_RATE_LIMIT: 5, HUB_RATE_BURST: 20, HUB_AUTH_TIMEOUT_MS: 60_000 } });
  const r = await Raw.upgrade(limited.port);
  const pings = [];
  for (let i = 0; i < 2000; i++) pings.push(frame({ opcode: OP.PING, payload: String(i) }));
  r.write(Buffer.concat(pings));
  const c = await r.closed();
  assert.equal(c.code, 4029, `ping flood: ${JSON.stringify(c)}`);
  assert.ok(r.messages().some((m) => m.type === 'error' && m.code === 'rate_limited'), `no rate_limited error before the close: ${r.describe()}`);

  const q = await Raw.upgrade(limited.port);
  const pongs = [];
  for (let i = 0; i < 2000; i++) pongs.push(frame({ opcode: OP.PONG, payload: String(i) }));
  q.write(Buffer.concat(pongs));
  assert.equal((await q.closed()).code, 4029, 'pong flood');

  // Fragments count too: one message in 2000 fragments passes the burst.
  const f = await Raw.upgrade(limited.port);
  const parts = [frame({ opcode: OP.TEXT, fin: false, payload: '{' })];
  for (let i = 0; i < 2000; i++) parts.push(frame({ opcode: OP.CONT, fin: false, payload: ' ' }));
  f.write(Buffer.concat(parts));
  assert.equal((await f.closed()).code, 4029, 'message in 2000 fragments');

  // Within the burst nothing happens: a few pings and a message are answered.
  const ok = await Raw.upgrade(limited.port);
  ok.write(Buffer.concat([frame({ opcode: OP.PING, payload: 'a' }), frame({ opcode: OP.PING, payload: 'b' })]));
  ok.write(text(ping(8)));
  await ok.reply(8);
  ok.end();
});

// --- HTTP/1.1 --------------------------------------------------------------

test('http: two pipelined requests in one write get two responses, in order', async () => {
  const r = await Raw.open(hub.port);
  const get = (path) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  r.write(get('/healthz') + get('/nope') + get('/healthz'));
  const count = () => (r.data.toString('latin1').match(/HTTP\/1\.1 \d{3}/g) ?? []).length;
  await r.until(() => count() >= 3 && r.data.toString('latin1').trimEnd().endsWith('}'), 'three HTTP responses').catch((err) => {
    err.message += `; received ${JSON.stringify(r.data.toString('latin1'))}`;
    throw err;
  });
  const statuses = [...r.data.toString('latin1').matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 404, 200]);
  r.end();
});

test('http: a request with Connection: close (or HTTP/1.0) ends its connection after one response; pipelining goes on working on other connections', async () => {
  const get = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
  const statuses = (r) => [...r.data.toString('latin1').matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
  const last = [];
  for (const [what, req] of [
    ['Connection: close', get('/healthz', 'Connection: close\r\n') + get('/healthz')],
    ['HTTP/1.0', 'GET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n'],
  ]) {
    const r = await Raw.open(hub.port);
    r.write(req);
    await r.until(() => statuses(r).length >= 1, `a response to ${what}`);
    // The hub must end the connection; if it does not, the client does.
    const ended = await r.until(() => r.ended, 'end').then(() => true, () => false);
    last.push([what, r, ended]);
    r.end();
  }
  // Two pipelined requests on a new connection: two responses.
  const p = await Raw.open(hub.port);
  p.write(get('/healthz') + get('/healthz'));
  await p.until(() => statuses(p).length >= 2, 'two HTTP responses to two pipelined requests').catch((err) => {
    err.message += `; received ${JSON.stringify(p.data.toString('latin1'))}`;
    throw err;
  });
  p.end();
  for (const [what, r, ended] of last) {
    assert.ok(ended, `${what}: the hub did not end the connection after its response`);
    assert.deepEqual(statuses(r), [200], `${what}: one response, then the end`);
  }
});
