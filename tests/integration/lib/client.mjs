// client.mjs - a WebSocket client of the hub, as a test sees it.
//
// A Client wraps a `ws` socket with an inbox: every frame the hub sends is
// decoded (JSON for text frames, MessagePack for binary ones) and queued.
// Tests take frames out with next({type}) and assert silence with
// noMore(type, ms). Frames of other types stay queued, so a later check can
// still see them. The wire kind is checked against the negotiated
// subprotocol on every frame: armonia.v1.json must send text frames,
// armonia.v1.msgpack binary ones.

import WebSocket from 'ws';
import { encode, decode } from '@msgpack/msgpack';

export const SUBPROTOCOL = {
  json: 'armonia.v1.json',
  msgpack: 'armonia.v1.msgpack',
};

const DEFAULT_TIMEOUT_MS = 5000;

function describe(frames, max = 8) {
  if (frames.length === 0) return 'nothing';
  const shown = frames.slice(-max).map((f) => JSON.stringify(f));
  const more = frames.length > max ? `(${frames.length - max} earlier not shown) ` : '';
  return more + shown.join(', ');
}

/** Everything clients opened in this process, so cleanup can close them. */
const openClients = new Set();

export class Client {
  constructor(ws, format, label) {
    this.ws = ws;
    this.format = format; // what we asked for: 'json', 'msgpack' or 'none'
    this.label = label;
    this.inbox = []; // decoded frames not yet taken
    this.seen = []; // every decoded frame, in arrival order (for messages)
    this.problems = []; // wire-level violations: wrong frame kind, undecodable
    this.socketErrors = []; // errors `ws` reported after the connection opened
    this.waiters = new Set();
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        openClients.delete(this);
        resolve(this.closeInfo);
        this.#wake();
      });
    });
    ws.on('message', (data, isBinary) => this.#receive(data, isBinary));
    openClients.add(this);
  }

  /** The subprotocol the server selected ('' when none). */
  get protocol() {
    return this.ws.protocol;
  }

  /** Frames are expected in MessagePack when the server selected it. */
  get wireIsMsgpack() {
    return this.ws.protocol === SUBPROTOCOL.msgpack;
  }

  #receive(data, isBinary) {
    const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    let frame;
    try {
      frame = isBinary ? decode(buf, { useBigInt64: false }) : JSON.parse(buf.toString('utf8'));
    } catch (err) {
      this.problems.push(`undecodable ${isBinary ? 'binary' : 'text'} frame (${err.message}): ${buf.toString('hex').slice(0, 200)}`);
      this.#wake();
      return;
    }
    if (isBinary !== this.wireIsMsgpack)
      this.problems.push(`${isBinary ? 'binary' : 'text'} frame on subprotocol '${this.protocol}': ${JSON.stringify(frame)}`);
    this.seen.push(frame);
    this.inbox.push(frame);
    this.#wake();
  }

  #wake() {
    for (const w of [...this.waiters]) w();
  }

  #checkWire() {
    if (this.problems.length)
      throw new Error(`${this.label}: the hub broke the wire format: ${this.problems.join('; ')}`);
  }

  /**
   * Resolves with the next queued frame of `type` (any type when omitted)
   * that also satisfies `where`, removing it from the inbox. Rejects after
   * `timeout` ms, or as soon as the connection closes with no such frame,
   * naming what did arrive.
   */
  next({ type, where = () => true, timeout = DEFAULT_TIMEOUT_MS } = {}) {
    const what = `${type ? `a '${type}' frame` : 'a frame'}${where.name && where.name !== 'where' ? ` (${where.name})` : ''}`;
    return new Promise((resolve, reject) => {
      let timer;
      const check = () => {
        try {
          this.#checkWire();
        } catch (err) {
          finish();
          reject(err);
          return;
        }
        const i = this.inbox.findIndex((f) => (!type || f?.type === type) && where(f));
        if (i >= 0) {
          const [f] = this.inbox.splice(i, 1);
          finish();
          resolve(f);
        } else if (this.closeInfo) {
          finish();
          reject(new Error(`${this.label}: connection closed (${this.closeInfo.code} '${this.closeInfo.reason}') before ${what} arrived; received: ${describe(this.seen)}`));
        }
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.label}: no ${what} within ${timeout} ms; received: ${describe(this.seen)}`));
      }, timeout);
      this.waiters.add(check);
      check();
    });
  }

  /**
   * Asserts that no frame of `type` (satisfying `where`) is queued or
   * arrives within ms. This waits on purpose: it is the only way to observe
   * silence. Prefer a barrier (a later event that must arrive after) where
   * ordering makes one possible, and use this for what is left.
   */
  async noMore(type, ms = 500, where = () => true) {
    const find = () => this.inbox.find((f) => (!type || f?.type === type) && where(f));
    await new Promise((resolve) => {
      let timer;
      const check = () => {
        if (find() || this.problems.length) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        }
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve();
      }, ms);
      this.waiters.add(check);
      check();
    });
    this.#checkWire();
    const f = find();
    if (f) throw new Error(`${this.label}: expected no ${type ? `'${type}' ` : ''}frame, got ${JSON.stringify(f)}`);
  }

  /**
   * Resolves true when the connection is still open after ms, false (with
   * closeInfo set) if it closed meanwhile.
   */
  async staysOpen(ms) {
    const t = new Promise((resolve) => setTimeout(() => resolve('open'), ms));
    const r = await Promise.race([t, this.closed.then(() => 'closed')]);
    return r === 'open';
  }

  /** Resolves with {code, reason} once closed; rejects after timeout ms. */
  async closedWithin(timeout = DEFAULT_TIMEOUT_MS) {
    let timer;
    const t = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.label}: still open after ${timeout} ms; received: ${describe(this.seen)}`)), timeout);
    });
    try {
      return await Promise.race([this.closed, t]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a map in the connection's format (MessagePack when negotiated). */
  send(obj) {
    if (this.wireIsMsgpack) this.ws.send(encode(obj), { binary: true });
    else this.ws.send(JSON.stringify(obj), { binary: false });
  }

  /** Sends raw bytes or text as they are, as a text or binary frame. */
  sendRaw(data, { binary = typeof data !== 'string' } = {}) {
    this.ws.send(data, { binary });
  }

  /** Sends a request and resolves with the next frame whose type is one of `types` (the caller checks its ref). */
  async request(obj, types, timeout) {
    this.send(obj);
    const want = Array.isArray(types) ? types : [types];
    return this.next({ where: (f) => want.includes(f?.type), timeout });
  }

  close(code = 1000) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
  }

  terminate() {
    this.ws.terminate();
  }
}

/**
 * Opens a WebSocket to wsUrl (…/ws) and resolves with a Client once open;
 * rejects when the upgrade is refused (err.statusCode holds the HTTP status).
 *
 * format: 'json' (default) or 'msgpack' selects the subprotocol offered;
 *   'none' offers none.
 * subprotocol: a string or array offered instead of the format's.
 * token: the JWT. header: true puts it in `Authorization: Bearer`; otherwise
 *   the first frame sent is {"type":"auth","token":…} (with "since" when given).
 *   No token: nothing is sent.
 * since: resume point; with header auth it goes in ?since= on the URL.
 * query: extra query string (e.g. {token: …} to check it is ignored).
 * path: replaces '/ws'.
 * label: names the client in failure messages.
 * tls: options of node:tls for a wss:// URL (e.g. {ca}).
 */
export function connect(wsUrl, { format = 'json', subprotocol, token, header = false, since, query = {}, path, label, headers = {}, handshakeTimeout = 5000, tls = {} } = {}) {
  const url = new URL(wsUrl);
  if (path !== undefined) url.pathname = path;
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  if (header && since !== undefined) url.searchParams.set('since', String(since));
  let protocols = subprotocol ?? (format === 'none' ? [] : [SUBPROTOCOL[format]]);
  if (!Array.isArray(protocols)) protocols = [protocols];
  const hdrs = { ...headers };
  if (header && token) hdrs.Authorization = `Bearer ${token}`;
  const ws = new WebSocket(url.toString(), protocols, { headers: hdrs, handshakeTimeout, ...tls });
  const client = new Client(ws, format, label ?? `client(${format}${header ? ', header auth' : ''})`);
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(err);
    ws.once('unexpected-response', (req, res) => {
      const err = new Error(`upgrade to ${url.pathname} refused with HTTP ${res.statusCode}`);
      err.statusCode = res.statusCode;
      res.resume();
      ws.removeListener('error', onError);
      ws.on('error', () => {});
      req.destroy();
      reject(err);
    });
    ws.once('error', onError);
    ws.once('open', () => {
      ws.removeListener('error', onError);
      ws.on('error', (err) => client.socketErrors.push(err.message));
      if (token && !header) {
        const auth = { type: 'auth', token };
        if (since !== undefined) auth.since = since;
        client.send(auth);
      }
      resolve(client);
    });
  });
}

/** Closes every client still open (used by the file's `after` hook). */
export function closeAllClients() {
  for (const c of [...openClients]) c.terminate();
  openClients.clear();
}
