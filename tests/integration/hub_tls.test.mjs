// hub_tls.test.mjs - TLS in the hub (HUB_TLS_CERT_FILE, HUB_TLS_KEY_FILE):
// wss:// with both subprotocols and https:// on the one port, an event
// arriving over TLS, refusals answered through TLS (Origin → 403), a plain
// client refused on the TLS port, the frame checks (unmasked frames, control
// frames counted by the rate limit) holding over TLS as over ws://, the
// certificate reloaded on SIGHUP with connections kept (one hub and several
// workers), and bad TLS settings refused at start.
//
// Certificates are made here with the openssl command: a root CA, an
// intermediate and a leaf for 127.0.0.1, served as leaf + intermediate (a
// chain: clients trust only the root), and a second, self-signed one the
// reload switches to.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { randomBytes, X509Certificate } from 'node:crypto';
import WebSocket from 'ws';
import {
  useLifecycle, startHub, runHub, httpGet, waitLog, db, login, connect, SUBPROTOCOL, freePort,
} from './lib/harness.mjs';

useLifecycle();

const ORIGIN_OK = 'https://app.armonia.example';
let dir, pki, hub, database, tenant, guardId;

/** Runs openssl with args in dir (throws with its output on failure). */
function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A P-256 key and a certificate request for cn, in name.key and name.csr. */
function request(name, cn) {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
}

/** Signs name.csr with issuer (its .crt and .key) using the extensions ext. */
function sign(name, issuer, ext) {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`,
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-extfile', `${name}.ext`,
    '-out', `${name}.crt`);
}

/** The files of the test's certificates, made once. */
function makePki() {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'root.key', '-out', 'root.crt', '-days', '2', '-subj', '/CN=Armonia test root',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  request('inter', 'Armonia test intermediate');
  sign('inter', 'root', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  request('leaf', '127.0.0.1');
  sign('leaf', 'inter', 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'chain.crt'), readFileSync(join(dir, 'leaf.crt'), 'utf8') + readFileSync(join(dir, 'inter.crt'), 'utf8'));
  // The certificate a reload switches to: self-signed, trusted on its own.
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'next.key', '-out', 'next.crt', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1');
  const read = (f) => readFileSync(join(dir, f), 'utf8');
  const fp = (f) => new X509Certificate(read(f)).fingerprint256;
  return {
    ca: [read('root.crt'), read('next.crt')],
    leafFp: fp('leaf.crt'),
    nextFp: fp('next.crt'),
  };
}

/** Copies the served files (chain.crt + leaf.key) to fresh paths for one hub. */
function servedFiles(tag) {
  const cert = join(dir, `${tag}-cert.pem`);
  const key = join(dir, `${tag}-key.pem`);
  copyFileSync(join(dir, 'chain.crt'), cert);
  copyFileSync(join(dir, 'leaf.key'), key);
  return { cert, key };
}

function tlsHub(tag, env = {}) {
  const f = servedFiles(tag);
  return startHub({ env: { HUB_TLS_CERT_FILE: f.cert, HUB_TLS_KEY_FILE: f.key, ...env }, tls: { ca: pki.ca } })
    .then((h) => Object.assign(h, { certFile: f.cert, keyFile: f.key }));
}

/**
 * Opens a TLS connection to port and resolves with the socket once the
 * handshake is done (its certificate: socket.getPeerCertificate()).
 */
function tlsOpen(port, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: pki.ca, ...opts }, () => resolve(s));
    s.once('error', reject);
  });
}

/** The SHA-256 fingerprint of the certificate a new connection to port is shown. */
async function servedFingerprint(port) {
  const s = await tlsOpen(port);
  const fp = s.getPeerCertificate().fingerprint256;
  s.destroy();
  return fp;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hub-tls-'));
  pki = makePki();
  database = await db();
  tenant = await database.newTenant('tls');
  guardId = await database.insertUser(tenant, { name: 'Guarda TLS', role: 'GUARD' });
  hub = await tlsHub('main', { HUB_ALLOWED_ORIGINS: ORIGIN_OK, HUB_AUTH_TIMEOUT_MS: 60_000 });
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const guard = (label, format = 'json') => login(hub, { sub: guardId, tenant, role: 'guard' }, { label, format });

test('wss: both subprotocols authenticate and get a panic event; TLS 1.2 at least; the chain is served', async () => {
  const j = await guard('guard-json', 'json');
  const m = await guard('guard-msgpack', 'msgpack');
  assert.equal(j.protocol, SUBPROTOCOL.json);
  assert.equal(m.protocol, SUBPROTOCOL.msgpack);
  const panicId = await database.insertPanic(tenant, { userId: guardId, message: 'Ayuda por TLS' });
  for (const c of [j, m]) {
    const e = await c.next({ type: 'event', where: (x) => x.kind === 'panic' });
    assert.equal(e.priority, 'critical', `${c.label}: ${JSON.stringify(e)}`);
    assert.ok(panicId, 'the panic row was inserted');
    assert.deepEqual(c.problems, [], `${c.label}: wire problems: ${c.problems.join('; ')}`);
  }
  // A client that offers TLS 1.2 at most is served; the chain verifies against the root only.
  const s = await tlsOpen(hub.port, { maxVersion: 'TLSv1.2' });
  assert.equal(s.getProtocol(), 'TLSv1.2');
  assert.equal(s.getPeerCertificate().fingerprint256, pki.leafFp);
  s.destroy();
  // HTTP/1.1 is the one protocol offered (a WebSocket inside HTTP/2 is not served).
  const newest = await tlsOpen(hub.port, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.ok(['TLSv1.2', 'TLSv1.3'].includes(newest.getProtocol()), newest.getProtocol());
  assert.equal(newest.alpnProtocol, 'http/1.1');
  newest.destroy();
  // Older versions are refused by the hub (or by this client's own OpenSSL floor).
  await assert.rejects(tlsOpen(hub.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }));
  j.terminate();
  m.terminate();
});

test('wss: a burst of events arrives complete and in order through the queued TLS writes', async () => {
  const c = await guard('burst', 'json');
  const N = 400;
  const big = 'x'.repeat(3000); // about 1.2 MB in all: several runs and partial TLS writes
  await database.sql(
    `select hub.emit($1, 'burst', array['all'], jsonb_build_object('i', i, 'pad', $2::text), 'normal', false)
       from generate_series(1, $3::int) as i`, [tenant, big, N]);
  let last = 0;
  for (let i = 1; i <= N; i++) {
    const e = await c.next({ type: 'event', where: (x) => x.kind === 'burst' });
    assert.equal(e.data.i, i, `event ${i} out of order: ${JSON.stringify(e.data.i)}`);
    assert.ok(e.seq > last, 'seq increases');
    last = e.seq;
  }
  assert.deepEqual(c.problems, []);
});

test('https: /healthz and /metrics on the TLS port', async () => {
  const h = await httpGet(hub.port, '/healthz', { tls: { ca: pki.ca } });
  assert.equal(h.status, 200, h.body);
  const m = await httpGet(hub.port, '/metrics', { tls: { ca: pki.ca } });
  assert.equal(m.status, 200);
  assert.match(m.body, /^armonia_connections_total \d+$/m);
});

test('HUB_INTERNAL_PORT beside TLS: /healthz and /metrics in plain HTTP there, 404 over https on the public port', async () => {
  const internal = await freePort();
  const h = await tlsHub('internal', { HUB_INTERNAL_PORT: internal });
  try {
    assert.equal((await httpGet(internal, '/healthz')).status, 200);
    assert.match((await httpGet(internal, '/metrics')).body, /^armonia_connections_total \d+$/m);
    assert.equal((await httpGet(h.port, '/healthz', { tls: { ca: pki.ca } })).status, 404);
    assert.equal((await httpGet(h.port, '/metrics', { tls: { ca: pki.ca } })).status, 404);
  } finally {
    await h.stop();
  }
});

test('refusals are answered through TLS: an Origin not allowed gets a readable 403', async () => {
  const got = await new Promise((resolve, reject) => {
    const ws = new WebSocket(hub.wsUrl, [SUBPROTOCOL.json], { origin: 'https://evil.example', ca: pki.ca, handshakeTimeout: 5000 });
    ws.once('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => {});
  });
  assert.equal(got.status, 403);
  assert.equal(JSON.parse(got.body).reason, 'origin');
  // An allowed origin still gets in.
  const c = await connect(hub.wsUrl, { tls: { ca: pki.ca }, headers: { Origin: ORIGIN_OK } });
  c.terminate();
});

test('a plain ws:// client on the TLS port is refused; the hub goes on serving', async () => {
  const from = hub.output.length;
  const err = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${hub.port}/ws`, [SUBPROTOCOL.json], { handshakeTimeout: 5000 });
    ws.once('open', () => resolve(null));
    ws.once('error', (e) => resolve(e));
  });
  assert.ok(err, 'the plain client was let in');
  const plainHttp = await httpGet(hub.port, '/healthz', { timeout: 3000 }).then(() => null, (e) => e);
  assert.ok(plainHttp, 'plain http:// was answered on the TLS port');
  const c = await guard('after-plain');
  assert.ok(c.welcome);
  // Quiet about it: no error line for a client that does not speak TLS.
  const noisy = hub.output.slice(from).filter((l) => /\b(ERROR|error)\b/.test(l) && !/welcome/.test(l));
  assert.deepEqual(noisy, [], `error lines for a plain client: ${noisy.join('\n')}`);
});

// --- frame checks over TLS, as over ws:// (ws_conformance.test.mjs) ----------

/** One client frame (masked unless mask is false). */
function wsFrame(opcode, payload, { mask = true } = {}) {
  const p = Buffer.from(payload);
  const head = Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | p.length]);
  if (!mask) return Buffer.concat([head, p]);
  const key = randomBytes(4);
  return Buffer.concat([head, key, Buffer.from(p.map((b, i) => b ^ key[i & 3]))]);
}

/**
 * Upgrades over a raw TLS socket and resolves with {write, closed}:
 * closed() resolves with the code of the hub's close frame (null when the
 * connection ended without one).
 */
async function rawWss(port) {
  const s = await tlsOpen(port);
  let data = Buffer.alloc(0);
  let upgraded = false;
  let ended = false;
  const wake = new Set();
  s.on('data', (d) => {
    data = Buffer.concat([data, d]);
    for (const w of wake) w();
  });
  s.on('error', () => {});
  s.on('close', () => {
    ended = true;
    for (const w of wake) w();
  });
  const until = (cond, what) => new Promise((resolve, reject) => {
    const check = () => {
      const v = cond();
      if (v === undefined) return;
      wake.delete(check);
      clearTimeout(t);
      resolve(v);
    };
    const t = setTimeout(() => reject(new Error(`no ${what} within 10 s; got ${data.toString('latin1').slice(0, 200)}`)), 10_000);
    wake.add(check);
    check();
  });
  s.write(['GET /ws HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Protocol: ${SUBPROTOCOL.json}`].join('\r\n') + '\r\n\r\n');
  await until(() => {
    const i = data.indexOf('\r\n\r\n');
    if (i < 0) return undefined;
    upgraded = data.toString('latin1').startsWith('HTTP/1.1 101');
    data = data.subarray(i + 4);
    return true;
  }, 'upgrade answer');
  assert.ok(upgraded, 'the upgrade over TLS was refused');
  /** The close code of the first close frame in what the hub sent. */
  const closeCode = () => {
    for (let at = 0; at + 2 <= data.length;) {
      let len = data[at + 1] & 0x7f, hl = 2;
      if (len === 126) [len, hl] = [data.readUInt16BE(at + 2), 4];
      if (at + hl + len > data.length) break;
      if ((data[at] & 0x0f) === 0x8) return len >= 2 ? data.readUInt16BE(at + hl) : null;
      at += hl + len;
    }
    return ended ? null : undefined;
  };
  return { write: (b) => s.write(b), closed: () => until(closeCode, 'close frame'), end: () => s.destroy() };
}

test('wss: an unmasked client frame is refused with 1002, as over ws://', async () => {
  const r = await rawWss(hub.port);
  r.write(wsFrame(0x1, JSON.stringify({ type: 'ping', ref: 1 }), { mask: false }));
  assert.equal(await r.closed(), 1002);
  r.end();
  // A masked one on another connection is read as usual (no close).
  const ok = await guard('masked-ok');
  ok.send({ type: 'ping', ref: 'm' });
  await ok.next({ type: 'pong' });
});

test('wss: control frames count against the rate limit: a ping flood is closed with 4029', async () => {
  const limited = await tlsHub('rate', { HUB_RATE_LIMIT: 5, HUB_RATE_BURST: 20, HUB_AUTH_TIMEOUT_MS: 60_000 });
  const r = await rawWss(limited.port);
  const pings = [];
  for (let i = 0; i < 2000; i++) pings.push(wsFrame(0x9, String(i)));
  r.write(Buffer.concat(pings));
  assert.equal(await r.closed(), 4029);
  r.end();
  await limited.stop();
});

// --- reload ------------------------------------------------------------------

test('SIGHUP reloads the certificate: open connections stay, new ones see the new certificate; a bad file keeps the current one', async () => {
  const h = await tlsHub('reload');
  const before = await login(h, { sub: guardId, tenant, role: 'guard' }, { label: 'before-reload' });
  assert.equal(await servedFingerprint(h.port), pki.leafFp);

  copyFileSync(join(dir, 'next.crt'), h.certFile);
  copyFileSync(join(dir, 'next.key'), h.keyFile);
  let from = h.output.length;
  h.proc.kill('SIGHUP');
  await waitLog(h, /certificate reloaded/, from);
  assert.equal(await servedFingerprint(h.port), pki.nextFp, 'a new connection still sees the old certificate');

  // The connection made before the reload is still served.
  const id = await database.emit(tenant, 'after_reload', ['all'], { n: 1 });
  const e = await before.next({ type: 'event', where: (x) => x.kind === 'after_reload' });
  assert.equal(e.id, id);
  const after = await login(h, { sub: guardId, tenant, role: 'guard' }, { label: 'after-reload' });
  assert.ok(after.welcome);

  // A broken file: logged, and the certificate in use stays.
  writeFileSync(h.certFile, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
  from = h.output.length;
  h.proc.kill('SIGHUP');
  await waitLog(h, /certificate not reloaded/, from);
  assert.equal(await servedFingerprint(h.port), pki.nextFp);
  before.send({ type: 'ping', ref: 'still' });
  await before.next({ type: 'pong' });
  await h.stop();
});

test('with HUB_WORKERS=2 every worker reloads on SIGHUP', async () => {
  const h = await tlsHub('workers', { HUB_WORKERS: 2 });
  copyFileSync(join(dir, 'next.crt'), h.certFile);
  copyFileSync(join(dir, 'next.key'), h.keyFile);
  const from = h.output.length;
  h.proc.kill('SIGHUP');
  await waitLog(h, /\[w0\].*certificate reloaded/, from);
  await waitLog(h, /\[w1\].*certificate reloaded/, from);
  // Whichever worker the kernel picks presents the new certificate.
  for (let i = 0; i < 6; i++) assert.equal(await servedFingerprint(h.port), pki.nextFp);
  await h.stop();
});

// --- configuration -------------------------------------------------------------

test('config: one TLS file alone, an unreadable file or a key of another certificate is refused at start (exit 2)', async () => {
  const base = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/armonia', JWT_SECRET_KEY: 'k' };
  let r = await runHub({ env: { ...base, HUB_TLS_CERT_FILE: join(dir, 'chain.crt') } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /HUB_TLS_KEY_FILE: required with HUB_TLS_CERT_FILE/);
  r = await runHub({ env: { ...base, HUB_TLS_KEY_FILE: join(dir, 'leaf.key') } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /HUB_TLS_CERT_FILE: required with HUB_TLS_KEY_FILE/);
  r = await runHub({ env: { ...base, HUB_TLS_CERT_FILE: join(dir, 'missing.crt'), HUB_TLS_KEY_FILE: join(dir, 'leaf.key') } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /HUB_TLS_CERT_FILE: cannot use '.*missing\.crt'/);
  r = await runHub({ env: { ...base, HUB_TLS_CERT_FILE: join(dir, 'chain.crt'), HUB_TLS_KEY_FILE: join(dir, 'next.key') } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /HUB_TLS_KEY_FILE: /);
});
