// common.mjs - what the HTTP stand-ins (fcm.mjs, twilio.mjs) share: body
// reading with a bound, JSON answers, the failure-mode switch, the /_control
// /_messages /_reset endpoints that let a test in another process steer a
// stand-in, masking for log lines, and listen/close on loopback.
//
// Nothing here knows a provider's wire format; each stand-in passes in the
// status → mode table and the recorded-message array it owns.

import { createServer } from 'node:http';

/** Largest request body a stand-in reads (FCM caps messages at 4 KiB, Twilio bodies at 1600 chars). */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads the whole request body into a Buffer. Rejects with err.status = 413
 * past `limit` bytes, so a runaway client cannot make a stand-in buffer
 * without bound.
 */
export function readBody(req, limit = MAX_BODY_BYTES) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        const err = new Error(`request body over ${limit} bytes`);
        err.status = 413;
        req.destroy();
        reject(err);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Answers with a JSON body the way Google and Twilio do (charset named, length set). */
export function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * The failure mode of one stand-in. `modes` lists the mode names it knows;
 * `statusModes` maps an HTTP status, as written in a sequence, to the mode
 * that produces it (e.g. 500 → 'fail500', 200 → 'ok').
 *
 * In mode 'sequence' each call of next() consumes one entry (a status or a
 * mode name); once the sequence is used up the mode falls back to 'ok', so
 * a test that writes [500, 500, 200] gets exactly two failures.
 */
export class ModeSwitch {
  constructor(modes, statusModes) {
    this.modes = new Set(modes);
    this.statusModes = statusModes;
    this.mode = 'ok';
    this.sequence = [];
  }

  /** Validates and applies a mode; throws an Error naming the bad input. */
  set(mode, sequence) {
    if (mode === 'sequence') {
      if (!Array.isArray(sequence) || sequence.length === 0) {
        throw new Error('mode "sequence" needs a non-empty "sequence" array, e.g. [500, 500, 200]');
      }
      const steps = sequence.map((s) => this.#resolve(s));
      this.mode = 'sequence';
      this.sequence = steps;
      return;
    }
    if (!this.modes.has(mode)) {
      throw new Error(`unknown mode ${JSON.stringify(mode)}; expected one of ${[...this.modes, 'sequence'].join(', ')}`);
    }
    this.mode = mode;
    this.sequence = [];
  }

  /** The mode that governs the request being answered now. */
  next() {
    if (this.mode !== 'sequence') return this.mode;
    const step = this.sequence.shift();
    if (this.sequence.length === 0) this.mode = 'ok';
    return step ?? 'ok';
  }

  /** What /_control reports back. */
  describe() {
    return this.mode === 'sequence' ? { mode: this.mode, sequence: [...this.sequence] } : { mode: this.mode };
  }

  #resolve(step) {
    if (typeof step === 'number' || /^\d{3}$/.test(String(step))) {
      const mode = this.statusModes[Number(step)];
      if (!mode) {
        throw new Error(`sequence status ${step} is not one this stand-in produces; use one of ${Object.keys(this.statusModes).join(', ')}`);
      }
      return mode;
    }
    if (this.modes.has(step)) return step;
    throw new Error(`sequence step ${JSON.stringify(step)} is neither a status nor a mode`);
  }
}

/**
 * Serves the test-control endpoints shared by the HTTP stand-ins, so a test
 * can steer a stand-in that another process started (the demo's run.mjs):
 *   POST /_control {"mode": …, "sequence": […]}   → 200 the mode now in force
 *   GET  /_messages                               → 200 the recorded sends
 *   POST /_reset                                  → 200, records cleared, mode 'ok'
 * `extra(body)` may handle more /_control keys and return fields to report.
 * Returns true when the request was one of these.
 */
export async function serveControl(req, res, path, { modes, messages, reset, extra }) {
  if (path === '/_messages' && req.method === 'GET') {
    sendJson(res, 200, messages);
    return true;
  }
  if (path === '/_reset' && req.method === 'POST') {
    reset();
    sendJson(res, 200, { ok: true, ...modes.describe() });
    return true;
  }
  if (path === '/_control' && req.method === 'POST') {
    let body;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8') || '{}');
    } catch (err) {
      sendJson(res, 400, { error: `/_control wants a JSON object: ${err.message}` });
      return true;
    }
    try {
      // The mode first: a bad one is refused before anything else changes.
      if (body.mode !== undefined) modes.set(body.mode, body.sequence);
      const reported = extra ? extra(body) : {};
      sendJson(res, 200, { ...modes.describe(), ...reported });
    } catch (err) {
      sendJson(res, 400, { error: err.message });
    }
    return true;
  }
  return false;
}

/** Client side of serveControl, for tests that did not start the stand-in themselves. */
export async function remoteControl(url, body) {
  const r = await fetch(`${url}/_control`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await r.json();
  if (r.status !== 200) throw new Error(`${url}/_control: ${answer.error}`);
  return answer;
}

/** The sends a stand-in recorded, fetched over HTTP. */
export async function remoteMessages(url) {
  const r = await fetch(`${url}/_messages`);
  return r.json();
}

/** Clears a stand-in's records and puts it back in mode 'ok', over HTTP. */
export async function remoteReset(url) {
  await (await fetch(`${url}/_reset`, { method: 'POST' })).json();
}

/** "…ab12": the last four characters, so logs can tell recipients apart without printing them. */
export function maskTail(s) {
  const text = String(s ?? '');
  return text.length <= 4 ? `…${text}` : `…${text.slice(-4)}`;
}

/** At most n characters of s, with "…" when cut, on one line. */
export function clip(s, n = 40) {
  const line = String(s ?? '').replace(/\s+/g, ' ');
  return line.length > n ? `${line.slice(0, n)}…` : line;
}

/**
 * Starts an HTTP server on 127.0.0.1 (never a public interface: the
 * stand-ins accept anyone who can reach them). Resolves with the server and
 * its port once listening.
 */
export function listenHttp(handler, port) {
  const server = createServer((req, res) => {
    handler(req, res).catch((err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, err.status || 500, { error: err.message });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve({ server, port: server.address().port });
    });
  });
}

/**
 * Stops a server at once: keep-alive and deliberately hung requests
 * (mode 'hang') would otherwise hold close() open forever.
 */
export function closeHttp(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
