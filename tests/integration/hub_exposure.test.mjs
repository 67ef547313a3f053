// hub_exposure.test.mjs - a hub exposed to the internet: browsers' Origin
// checked on upgrade (HUB_ALLOWED_ORIGINS), the per-address caps on open
// connections (HUB_MAX_CONNS_PER_IP) and on handshakes per second
// (HUB_MAX_HANDSHAKES_PER_IP_S), their exemptions (HUB_EXEMPT_ADDRESSES,
// HUB_TRUSTED_PROXIES), the forwarded address counted behind a trusted
// proxy, and every refusal counted in /metrics. Bad values of these
// settings are refused at start (hub_config.test.mjs).
//
// Tests run on loopback, which the caps exempt by default: these hubs exempt
// only 127.0.0.1, and the counted clients connect from other addresses of
// 127/8 (Linux answers all of them locally).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useLifecycle, startHub, httpGet, waitLog, SUBPROTOCOL, sleep } from './lib/harness.mjs';

useLifecycle();

const ORIGINS = 'https://app.armonia.example, http://localhost:8100';
const CONNS_CAP = 3;
const RATE = 2;
const BURST = 3;
const PROXY = '127.0.0.3';

let origins, conns, rate;
const opened = [];

before(async () => {
  [origins, conns, rate] = await Promise.all([
    startHub({ env: { HUB_ALLOWED_ORIGINS: ORIGINS } }),
    startHub({
      env: {
        HUB_MAX_CONNS_PER_IP: CONNS_CAP,
        HUB_MAX_HANDSHAKES_PER_IP_S: 0,
        HUB_EXEMPT_ADDRESSES: '127.0.0.1',
        HUB_TRUSTED_PROXIES: PROXY,
      },
    }),
    startHub({
      env: {
        HUB_MAX_CONNS_PER_IP: 0,
        HUB_MAX_HANDSHAKES_PER_IP_S: RATE,
        HUB_HANDSHAKE_BURST_PER_IP: BURST,
        HUB_EXEMPT_ADDRESSES: '127.0.0.1',
      },
    }),
  ]);
});

/**
 * Asks hub for an upgrade from localAddress (with origin and headers when
 * given). Resolves with {ws} once open, or {status, retryAfter, body} when
 * refused with an HTTP answer.
 */
function upgrade(hub, { localAddress = '127.0.0.1', origin, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(hub.wsUrl, [SUBPROTOCOL.json], { localAddress, origin, headers, handshakeTimeout: 5000 });
    ws.once('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        req.destroy();
        resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body: JSON.parse(body) });
      });
      res.on('error', reject);
    });
    ws.once('error', (err) => reject(err));
    ws.once('open', () => {
      ws.on('error', () => {});
      opened.push(ws);
      resolve({ ws });
    });
  });
}

/** Expects the upgrade to succeed; returns the open socket. */
async function accepted(hub, opts, what) {
  const r = await upgrade(hub, opts);
  assert.ok(r.ws, `${what}: expected the upgrade to succeed, got HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.ws;
}

/** Expects the upgrade to be refused with status and reason; returns the answer. */
async function refused(hub, opts, status, reason, what) {
  const r = await upgrade(hub, opts);
  if (r.ws) r.ws.close();
  assert.equal(r.status, status, `${what}: expected HTTP ${status}, the upgrade succeeded or got another answer`);
  assert.equal(r.body.reason, reason, `${what}: body ${JSON.stringify(r.body)}`);
  return r;
}

/** Closes ws and resolves once it is closed on both ends. */
function closed(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', () => resolve());
    ws.close();
  });
}

/** The value of one line of hub's /metrics (name with its labels), or NaN. */
async function metric(hub, series) {
  const r = await httpGet(hub.port, '/metrics');
  const line = r.body.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

/** Polls until hub's /metrics series equals want; fails after timeout ms. */
async function metricBecomes(hub, series, want, timeout = 5000) {
  const deadline = Date.now() + timeout;
  let got;
  for (;;) {
    got = await metric(hub, series);
    if (got === want) return;
    if (Date.now() > deadline) assert.fail(`${series}: expected ${want}, still ${got} after ${timeout} ms`);
    await sleep(50);
  }
}

async function closeOpened() {
  await Promise.all(opened.splice(0).map(closed));
}

// --- Origin --------------------------------------------------------------

test('HUB_ALLOWED_ORIGINS: a listed origin and an upgrade without Origin get in; another origin gets 403, logged and counted', async () => {
  await accepted(origins, { origin: 'https://app.armonia.example' }, 'listed origin');
  await accepted(origins, { origin: 'http://localhost:8100' }, 'second listed origin');
  await accepted(origins, {}, 'no Origin (a native app)');
  const from = origins.output.length;
  await refused(origins, { origin: 'https://evil.example' }, 403, 'origin', 'unlisted origin');
  await refused(origins, { origin: 'https://app.armonia.example:8443' }, 403, 'origin', 'listed host, other port');
  await refused(origins, { origin: 'http://app.armonia.example' }, 403, 'origin', 'listed host, other scheme');
  await waitLog(origins, /upgrade refused with 403 from 127\.0\.0\.1: Origin 'https:\/\/evil\.example' not in HUB_ALLOWED_ORIGINS/, from);
  assert.equal(await metric(origins, 'armonia_upgrades_refused_total{reason="origin"}'), 3);
  assert.equal(await metric(origins, 'armonia_upgrades_refused_total{reason="conns_per_ip"}'), 0);
  await closeOpened();
});

test('without HUB_ALLOWED_ORIGINS any origin gets in', async () => {
  await accepted(conns, { origin: 'https://anything.example' }, 'any origin');
  await closeOpened();
  assert.equal(await metric(conns, 'armonia_upgrades_refused_total{reason="origin"}'), 0);
});

// --- Concurrent connections per address ----------------------------------

test('HUB_MAX_CONNS_PER_IP: N open from one address, the next gets 429 with Retry-After; one closes, the next gets in', async () => {
  const from = '127.0.0.2';
  const mine = [];
  for (let i = 0; i < CONNS_CAP; i++) mine.push(await accepted(conns, { localAddress: from }, `connection ${i + 1} of ${CONNS_CAP}`));
  const r = await refused(conns, { localAddress: from }, 429, 'conns_per_ip', `connection ${CONNS_CAP + 1}`);
  assert.ok(Number(r.retryAfter) >= 1, `Retry-After: ${r.retryAfter}`);
  await waitLog(conns, /upgrade refused with 429 from 127\.0\.0\.2: HUB_MAX_CONNS_PER_IP \(3\) reached/);
  // Another address is not affected, and loopback's exempt one never is.
  const other = await accepted(conns, { localAddress: '127.0.0.4' }, 'another address');
  for (let i = 0; i < CONNS_CAP + 2; i++) await accepted(conns, { localAddress: '127.0.0.1' }, `exempt 127.0.0.1, connection ${i + 1}`);
  // The hub lets go of the place once the connection has ended on its side.
  await closed(mine.pop());
  await metricBecomes(conns, 'armonia_connections', CONNS_CAP - 1 + 1 + CONNS_CAP + 2);
  await accepted(conns, { localAddress: from }, 'after one closed');
  await refused(conns, { localAddress: from }, 429, 'conns_per_ip', 'at the cap again');
  assert.equal(await metric(conns, 'armonia_upgrades_refused_total{reason="conns_per_ip"}'), 2);
  await closed(other);
  await closeOpened();
  await metricBecomes(conns, 'armonia_connections', 0);
  // Every address has given its places back: nothing is tracked any more.
  assert.equal(await metric(conns, 'armonia_tracked_ips'), 0);
});

test('behind a trusted proxy the forwarded address is counted; the proxy itself is exempt', async () => {
  const before = await metric(conns, 'armonia_upgrades_refused_total{reason="conns_per_ip"}');
  const via = (xff) => ({ localAddress: PROXY, headers: xff ? { 'X-Forwarded-For': xff } : {} });
  for (let i = 0; i < CONNS_CAP; i++) await accepted(conns, via('192.0.2.1, 203.0.113.5'), `forwarded client, connection ${i + 1}`);
  await refused(conns, via('203.0.113.5'), 429, 'conns_per_ip', 'forwarded client over the cap');
  await waitLog(conns, /upgrade refused with 429 from 127\.0\.0\.3 \(forwarded 203\.0\.113\.5\): HUB_MAX_CONNS_PER_IP/);
  // Another client behind the same proxy has its own count.
  await accepted(conns, via('203.0.113.6'), 'another forwarded client');
  // The proxy's own connections (nothing forwarded) are not capped.
  for (let i = 0; i < CONNS_CAP + 1; i++) await accepted(conns, via(null), `the proxy itself, connection ${i + 1}`);
  // An untrusted peer's X-Forwarded-For is not believed: its own address is counted.
  const untrusted = [];
  for (let i = 0; i < CONNS_CAP; i++)
    untrusted.push(await accepted(conns, { localAddress: '127.0.0.5', headers: { 'X-Forwarded-For': `198.51.100.${i + 1}` } }, `untrusted peer, connection ${i + 1}`));
  await refused(conns, { localAddress: '127.0.0.5', headers: { 'X-Forwarded-For': '198.51.100.9' } }, 429, 'conns_per_ip', 'untrusted peer over the cap');
  assert.equal(await metric(conns, 'armonia_upgrades_refused_total{reason="conns_per_ip"}'), before + 2);
  await closeOpened();
  await metricBecomes(conns, 'armonia_connections', 0);
  await metricBecomes(conns, 'armonia_tracked_ips', 0);
});

// --- Handshakes per second per address -----------------------------------

test('HUB_MAX_HANDSHAKES_PER_IP_S: a burst gets in, the next upgrade gets 429 with Retry-After, and after it one gets in again', async () => {
  const from = '127.0.0.6';
  for (let i = 0; i < BURST; i++) await closed(await accepted(rate, { localAddress: from }, `handshake ${i + 1} of the burst`));
  const r = await refused(rate, { localAddress: from }, 429, 'handshake_rate', 'handshake past the burst');
  const retryS = Number(r.retryAfter);
  assert.ok(retryS >= 1 && retryS <= 2, `Retry-After: ${r.retryAfter}`);
  await waitLog(rate, /upgrade refused with 429 from 127\.0\.0\.6: HUB_MAX_HANDSHAKES_PER_IP_S \(2\) exceeded/);
  // Exempt and other addresses are not slowed by it.
  for (let i = 0; i < BURST + 3; i++) await closed(await accepted(rate, { localAddress: '127.0.0.1' }, `exempt handshake ${i + 1}`));
  await closed(await accepted(rate, { localAddress: '127.0.0.7' }, 'another address'));
  await sleep(retryS * 1000);
  await closed(await accepted(rate, { localAddress: from }, 'after Retry-After'));
  assert.ok((await metric(rate, 'armonia_upgrades_refused_total{reason="handshake_rate"}')) >= 1);
  assert.equal(await metric(rate, 'armonia_ip_table_full_total'), 0);
});
