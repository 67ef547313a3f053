// hub_close.test.mjs - closing is bounded (docs/protocol.md
// "Limits and close codes"): a connection the hub decided to close is gone within
// HUB_CLOSE_TIMEOUT_MS whether or not its client reads.
//
// The clients here are raw TCP sockets that do the WebSocket upgrade by
// hand and then stop reading, so the hub's writes back up into the kernel's
// buffers and its own queue, and nothing it sends (the close frame
// included) can go out. Keepalive is off: nothing but the close deadline
// can end such a connection. "Gone" is what the hub reports
// (armonia_connections on /metrics), since a client that does not read
// cannot see the end of its socket until it reads again.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { useLifecycle, startHub, db, mintToken } from './lib/harness.mjs';
import { emitMany, hubMetrics, hubBackedUp, sleep, nowMs } from './lib/durability.mjs';

useLifecycle();

let database;

before(async () => {
  database = await db();
});

// Slack for a busy machine, beyond what the settings allow: the stall
// sweep runs once a second, and two cores are shared by many builds.
const SLACK_MS = 5000;

/**
 * Connects to hub with a hand-made WebSocket upgrade (headers: extra
 * request headers) and resolves with the socket once the 101 and the text
 * `until` have arrived (the socket is then paused: it never reads again).
 */
function rawUpgrade(hub, { headers = {}, until = '\r\n\r\n' } = {}) {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: '127.0.0.1', port: hub.port });
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no upgrade answer containing ${JSON.stringify(until)} within 10 s; got ${JSON.stringify(got.slice(0, 300))}`));
    }, 10_000);
    sock.on('error', () => {});
    sock.once('connect', () => {
      const lines = [
        'GET /ws HTTP/1.1',
        `Host: 127.0.0.1:${hub.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Protocol: armonia.v1.json',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    const onData = (chunk) => {
      got += chunk.toString('latin1');
      if (!got.startsWith('HTTP/1.1 101')) {
        if (got.includes('\r\n\r\n')) {
          clearTimeout(timer);
          sock.destroy();
          reject(new Error(`upgrade refused: ${got.split('\r\n')[0]}`));
        }
        return;
      }
      if (!got.includes(until)) return;
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.pause();
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

/** One masked client text frame (RFC 6455 §5.2) carrying text. */
function maskedText(text) {
  const payload = Buffer.from(text, 'utf8');
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, 0x80 | n]) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (n >= 126 && n < 65536) {
    head[0] = 0x81;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(n, 2);
  } else if (n >= 65536) {
    head[0] = 0x81;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  const mask = randomBytes(4);
  for (let i = 0; i < n; i++) payload[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, payload]);
}

/** Polls /metrics until pred(metrics) holds; resolves with the time (nowMs) and metrics. */
async function metricsUntil(hub, pred, { timeout, what }) {
  const deadline = nowMs() + timeout;
  let m;
  for (;;) {
    m = await hubMetrics(hub.port);
    if (pred(m)) return { at: nowMs(), m };
    if (nowMs() > deadline) {
      throw new Error(`${what}: not within ${timeout} ms; armonia_connections=${m.armonia_connections}, ` +
        `slow_consumers_total=${m.armonia_slow_consumers_total}, rate_limited_total=${m.armonia_rate_limited_total}`);
    }
    await sleep(50);
  }
}

/** Resolves when sock has ended or closed (reading what is left), or rejects after timeout ms. */
function socketEnds(sock, timeout) {
  return new Promise((resolve, reject) => {
    if (sock.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error(`the client socket did not end within ${timeout} ms`)), timeout);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    sock.once('end', done);
    sock.once('close', done);
    sock.on('data', () => {});
    sock.resume();
  });
}

test('an authenticated client that never reads during a broadcast of big events: closed 4008 and gone within HUB_CLOSE_TIMEOUT_MS (keepalive off)', async () => {
  const CLOSE_MS = 2000;
  const hub = await startHub({
    env: { HUB_TCP_KEEPALIVE_S: 0, HUB_SLOW_CONSUMER_MS: 1000, HUB_CLOSE_TIMEOUT_MS: CLOSE_MS },
  });
  const T = await database.newTenant('closeslow');
  const token = mintToken(hub.secret, { sub: 'r101', tenant: T, role: 'resident', units: ['101'] });
  const sock = await rawUpgrade(hub, { headers: { Authorization: `Bearer ${token}` }, until: '"welcome"' });
  try {
    await metricsUntil(hub, (m) => m.armonia_connections === 1, { timeout: 5000, what: 'the connection counted' });
    // ~18 MB: more than the kernel buffers on both ends plus the 1 MiB queue.
    await emitMany(database, T, 600, { rooms: ['unit:101'], kind: 'big', payload: 30_000 });
    const slow = await metricsUntil(hub, (m) => m.armonia_slow_consumers_total >= 1, { timeout: 30_000, what: 'the hub closing the non-reader with 4008' });
    const gone = await metricsUntil(hub, (m) => m.armonia_connections === 0, {
      timeout: CLOSE_MS + SLACK_MS,
      what: `the connection gone within HUB_CLOSE_TIMEOUT_MS (${CLOSE_MS} ms) + ${SLACK_MS} ms of the 4008 decision`,
    });
    console.log(`# non-reader: gone ${Math.round(gone.at - slow.at)} ms after the 4008 decision was seen (close timeout ${CLOSE_MS} ms); close_timeouts_total=${gone.m.armonia_close_timeouts_total}`);
    assert.equal(gone.m.armonia_close_timeouts_total, 1, 'the close deadline is what ended it');
    // The client sees its socket end once it reads again.
    await socketEnds(sock, 10_000);
  } finally {
    sock.destroy();
    await hub.stop();
  }
});

test('an unauthenticated client that floods frames but never reads: gone within HUB_AUTH_TIMEOUT_MS + HUB_CLOSE_TIMEOUT_MS', async () => {
  const AUTH_MS = 10_000;
  const CLOSE_MS = 1500;
  // Big inbound frames allowed, so a few error replies (echoing their ref)
  // fill the socket and the queue at once. Whether the queue overflows
  // (4008) or the auth deadline comes first (4001) depends on how fast the
  // hub reads the flood; either close must be done in time.
  const hub = await startHub({
    env: { HUB_TCP_KEEPALIVE_S: 0, HUB_AUTH_TIMEOUT_MS: AUTH_MS, HUB_CLOSE_TIMEOUT_MS: CLOSE_MS, HUB_MAX_FRAME_BYTES: 1_048_576 },
  });
  const sock = await rawUpgrade(hub);
  const t0 = nowMs();
  try {
    const frame = maskedText(JSON.stringify({ type: 'ping', ref: 'x'.repeat(900_000) }));
    // 30 × 900 KB of "authenticate first" errors, each echoing its ref: 27 MB.
    for (let i = 0; i < 30; i++) sock.write(frame);
    const gone = await metricsUntil(hub, (m) => m.armonia_connections === 0, {
      timeout: AUTH_MS + CLOSE_MS + SLACK_MS,
      what: `the unauthenticated flooder gone within HUB_AUTH_TIMEOUT_MS (${AUTH_MS}) + HUB_CLOSE_TIMEOUT_MS (${CLOSE_MS}) + ${SLACK_MS} ms`,
    });
    console.log(`# unauthenticated flooder: gone ${Math.round(gone.at - t0)} ms after its upgrade; slow_consumers_total=${gone.m.armonia_slow_consumers_total}, close_timeouts_total=${gone.m.armonia_close_timeouts_total}`);
    await socketEnds(sock, 10_000);
  } finally {
    sock.destroy();
    await hub.stop();
  }
});

test('shutdown with a client that never reads: its 1001 close is bounded by HUB_CLOSE_TIMEOUT_MS, not HUB_SHUTDOWN_TIMEOUT_MS', async () => {
  const CLOSE_MS = 1500;
  const SHUTDOWN_MS = 60_000;
  // The slow-consumer close is far off: only the shutdown closes it.
  const hub = await startHub({
    env: { HUB_TCP_KEEPALIVE_S: 0, HUB_SLOW_CONSUMER_MS: 600_000, HUB_CLOSE_TIMEOUT_MS: CLOSE_MS, HUB_SHUTDOWN_TIMEOUT_MS: SHUTDOWN_MS },
  });
  const T = await database.newTenant('closedrain');
  const token = mintToken(hub.secret, { sub: 'r101', tenant: T, role: 'resident', units: ['101'] });
  const sock = await rawUpgrade(hub, { headers: { Authorization: `Bearer ${token}` }, until: '"welcome"' });
  try {
    await emitMany(database, T, 600, { rooms: ['unit:101'], kind: 'big', payload: 30_000 });
    await hubBackedUp(hub.port, { minSent: 50, stillMs: 500, timeout: 30_000 });
    const t0 = nowMs();
    const exit = await hub.stop(SHUTDOWN_MS + 10_000);
    const ms = Math.round(nowMs() - t0);
    console.log(`# shutdown with a non-reader: exited ${JSON.stringify(exit)} ${ms} ms after SIGTERM (close timeout ${CLOSE_MS} ms, shutdown timeout ${SHUTDOWN_MS} ms)`);
    assert.equal(exit.code, 0, `exit: ${JSON.stringify(exit)}`);
    assert.ok(ms <= CLOSE_MS + SLACK_MS, `the hub took ${ms} ms to stop: the non-reader held the drain`);
  } finally {
    sock.destroy();
    await hub.stop();
  }
});
