// raw.mjs - a WebSocket client on a bare TCP socket, for input no library
// client would send: several frames in one write (so the hub reads them
// all before it answers any), made exactly as a hostile client would.

import { connect as tcpConnect } from 'node:net';
import { randomBytes } from 'node:crypto';

/** One masked client text frame (RFC 6455 §5.2) carrying text. */
export function maskedText(text) {
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
export class RawClient {
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

  /** Sends every frame of objs in one write. */
  sendAll(objs) {
    this.sock.write(Buffer.concat(objs.map((o) => maskedText(JSON.stringify(o)))));
  }

  destroy() {
    this.sock.destroy();
  }
}
