// hub_nginx.test.mjs - hubs on several machines behind nginx (README
// "Production"): nginx, started with exactly deploy/nginx/armonia-hub.conf
// (lib/nginx.mjs writes only the upstream list, the listening port and the
// certificate paths that file includes), terminates TLS in front of two
// hubs sharing one PostgreSQL. A client on wss:// whose hub is killed
// reconnects through nginx to the other and resumes with every event
// exactly once; the hubs see the client's address through X-Forwarded-For
// (HUB_TRUSTED_PROXIES=127.0.0.1) in their logs and per-address caps;
// /healthz and /metrics answer only loopback through nginx; a panic acked on
// both hubs at once is claimed once, and both guards see the same claim;
// the JS client (clients/js) does the reconnection and resume by itself.
//
// The hubs stand for hubs on two machines: each has its own port and its
// own database sessions, and they share only PostgreSQL and the JWT secret.

import { test, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { useLifecycle, startHub, db, httpGet, sleep, mintToken } from './lib/harness.mjs';
import { useStreams, openStream, streamBarrier, assertExactStream, startProducer, within } from './lib/durability.mjs';
import { startNginx } from './lib/nginx.mjs';
import { createHubClient } from '../../clients/js/src/index.js';

useLifecycle();
useStreams();

/** The address "the internet" connects from: loopback, but not nginx's own 127.0.0.1. */
const CLIENT = '127.0.0.5';
const OTHER_CLIENT = '127.0.0.6';

let database;
/** The nginx and hubs of the running test: each test ends its own, so the cluster's sessions are not held to the file's end. */
const current = [];

before(async () => {
  database = await db();
});

afterEach(async () => {
  await Promise.all(current.splice(0).map(async ({ nginx, hubs }) => {
    await nginx.stop();
    await Promise.all(hubs.map((h) => h.stop()));
  }));
});

/**
 * Two hubs with one JWT secret, trusting nginx on 127.0.0.1, and nginx in
 * front of them. front is what openStream() takes for a client of nginx.
 */
async function twoHubsBehindNginx(env = {}) {
  const secret = randomBytes(32).toString('base64url');
  const hubEnv = { JWT_SECRET_KEY: secret, HUB_TRUSTED_PROXIES: '127.0.0.1', ...env };
  const hubs = await Promise.all([startHub({ env: hubEnv }), startHub({ env: hubEnv })]);
  for (const h of hubs) h.secret = secret;
  const nginx = await startNginx(hubs.map((h) => h.port));
  current.push({ nginx, hubs });
  return { hubs, nginx, front: { secret, wsUrl: nginx.wsUrl } };
}

/** armonia_connections of a hub, asked on its own port. */
async function connections(hub) {
  const r = await httpGet(hub.port, '/metrics');
  const line = r.body.split('\n').find((l) => l.startsWith('armonia_connections '));
  return Number(line?.split(' ')[1]);
}

/** Polls until the hubs hold want connections each (in order); fails after timeout ms. */
async function connectionsBecome(hubs, want, timeout = 5000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = await Promise.all(hubs.map(connections));
    if (got.every((n, i) => n === want[i])) return;
    if (Date.now() > deadline) assert.fail(`connections per hub: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    await sleep(50);
  }
}

/**
 * Asks for an upgrade through nginx from localAddress with token (header
 * authentication). Resolves with {ws} once open, or {status, body} when
 * refused with an HTTP answer.
 */
function upgrade(nginx, token, localAddress) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(nginx.wsUrl, ['armonia.v1.json'], {
      ...nginx.tls(localAddress), headers: { Authorization: `Bearer ${token}` }, handshakeTimeout: 5000,
    });
    ws.once('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.on('error', () => {});
      resolve({ ws });
    });
  });
}

/** Resolves once one of hubs printed a line matching re after its mark; fails after timeout ms. */
async function someHubLogs(hubs, marks, re, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (hubs.some((h, i) => h.output.slice(marks[i]).some((l) => re.test(l)))) return;
    if (Date.now() > deadline) assert.fail(`no hub printed a line matching ${re}; their last lines:\n${hubs.map((h) => h.output.slice(-8).join('\n')).join('\n---\n')}`);
    await sleep(50);
  }
}

test('a client on wss:// through nginx whose hub is killed reconnects through nginx to the other hub and resumes: every event once, none missing', async () => {
  const T = await database.newTenant('nginx');
  const { hubs, nginx, front } = await twoHubsBehindNginx();
  const claims = { sub: 'resident-1', tenant: T, role: 'resident', units: ['101'] };
  const producer = startProducer(database.url, T, { rooms: () => ['all'], intervalMs: 3 });
  try {
    const first = await openStream(front, claims, { label: 'through nginx', since: 0, wsUrl: nginx.wsUrl, wsOptions: nginx.tls(CLIENT) });
    await within(20_000, 'the first 30 events', first.until(() => first.count >= 30, { timeout: 20_000, what: '30 events' }));

    // The hub holding the client, asked on each hub's own port.
    const held = await Promise.all(hubs.map(connections));
    assert.deepEqual([...held].sort(), [0, 1], `exactly one hub holds the client: ${JSON.stringify(held)}`);
    const victim = hubs[held.indexOf(1)];
    const survivor = hubs[held.indexOf(0)];
    await victim.kill('SIGKILL');
    const closed = await within(10_000, 'the client seeing its connection end', first.closed);
    assert.equal(closed.code, 1006, first.describe());

    // Events keep coming while the client is away; it resumes from the last
    // one it got, through nginx, which skips the dead hub.
    const seen = first.count;
    await sleep(100);
    const again = await openStream(front, claims, { label: 'through nginx again', since: first.lastSeq, wsUrl: nginx.wsUrl, wsOptions: nginx.tls(CLIENT) });
    assert.equal(await connections(survivor), 1, 'the client is back, on the surviving hub');
    await within(20_000, '30 more events', again.until(() => again.count >= 30, { timeout: 20_000, what: '30 more events' }));

    // nginx keeps sending new clients to the survivor only.
    const more = [];
    for (let i = 0; i < 4; i++)
      more.push(await openStream(front, { ...claims, sub: `resident-${i + 2}` }, { label: `newcomer ${i}`, since: 0, wsUrl: nginx.wsUrl, wsOptions: nginx.tls(OTHER_CLIENT) }));
    assert.equal(await connections(survivor), 5);

    await producer.stop();
    const { seq } = await streamBarrier(database, T, [again, ...more]);
    const got = [...first.seqs, ...again.seqs];
    await assertExactStream(database, T, again, { upto: seq, got });
    assert.equal(first.duplicates + again.duplicates, 0);
    assert.ok(seen >= 30 && again.count >= 30);
    for (const s of more) await assertExactStream(database, T, s, { upto: seq });
    assert.match(nginx.errorLog(), new RegExp(`connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream.*127\\.0\\.0\\.1:${victim.port}`),
      'nginx tried the dead hub and passed the client on');
  } finally {
    await producer.stop();
  }
});

test('behind nginx the hubs see the client\'s address (X-Forwarded-For from a trusted proxy): logged, and counted by the per-address cap', async () => {
  const CAP = 2;
  const { hubs, nginx, front } = await twoHubsBehindNginx({ HUB_MAX_CONNS_PER_IP: CAP, HUB_MAX_HANDSHAKES_PER_IP_S: 0, HUB_EXEMPT_ADDRESSES: '127.0.0.1' });
  const T = await database.newTenant('nginx');

  // A refused token (signed with another secret): the hub that took it logs
  // nginx's address and the client's.
  const marks = hubs.map((h) => h.output.length);
  const forged = { secret: randomBytes(32).toString('base64url'), wsUrl: nginx.wsUrl };
  await assert.rejects(openStream(forged, { sub: 'x', tenant: T, role: 'resident' }, { wsOptions: nginx.tls(CLIENT) }), /expected a welcome/);
  await someHubLogs(hubs, marks, /auth failure from 127\.0\.0\.1 \(forwarded 127\.0\.0\.5\)/);

  // The cap counts 127.0.0.5, not nginx: CAP per hub, so 2 × CAP in all
  // (least_conn alternates between the two idle hubs), then 429.
  const token = mintToken(front.secret, { sub: 'capped', tenant: T, role: 'resident' });
  const open = [];
  for (let i = 0; i < 2 * CAP; i++) {
    const r = await upgrade(nginx, token, CLIENT);
    assert.ok(r.ws, `connection ${i + 1} from ${CLIENT}: HTTP ${r.status} ${r.body}`);
    open.push(r.ws);
  }
  await connectionsBecome(hubs, [CAP, CAP]);
  const from = hubs.map((h) => h.output.length);
  const over = await upgrade(nginx, token, CLIENT);
  assert.equal(over.status, 429, `connection ${2 * CAP + 1} from ${CLIENT}: expected 429, got ${over.ws ? 'an open socket' : `${over.status} ${over.body}`}`);
  assert.equal(JSON.parse(over.body).reason, 'conns_per_ip');
  await someHubLogs(hubs, from, /upgrade refused with 429 from 127\.0\.0\.1 \(forwarded 127\.0\.0\.5\): HUB_MAX_CONNS_PER_IP/);
  // Another client address is not affected by the first one's cap.
  const other = await upgrade(nginx, token, OTHER_CLIENT);
  assert.ok(other.ws, `a connection from ${OTHER_CLIENT}: HTTP ${other.status} ${other.body}`);
  for (const ws of [...open, other.ws]) ws.terminate();
});

test('through nginx /healthz and /metrics answer loopback only; a client address gets 403', async () => {
  const { nginx } = await twoHubsBehindNginx();
  assert.equal((await nginx.get('/healthz')).status, 200);
  const m = await nginx.get('/metrics');
  assert.equal(m.status, 200);
  assert.match(m.body, /^armonia_connections /m);
  for (const path of ['/healthz', '/metrics']) {
    const r = await nginx.get(path, { localAddress: CLIENT });
    assert.equal(r.status, 403, `${path} from ${CLIENT}: ${r.status} ${r.body.slice(0, 200)}`);
  }
  // Anything else is the hub's answer, passed through.
  assert.equal((await nginx.get('/nothing-here', { localAddress: CLIENT })).status, 404);
});

test('acks and claims are coordinated in PostgreSQL: a panic acked at once by a guard on each hub is claimed once, and both see the same panic_claimed', async () => {
  const T = await database.newTenant('nginx');
  const { hubs } = await twoHubsBehindNginx();
  // Each guard straight to one hub, so the two acks surely land on different hubs.
  const guards = await Promise.all(hubs.map((h, i) => openStream(h, { sub: `guard-${i}`, tenant: T, role: 'guard' }, { label: `guard on hub ${i}`, since: 0 })));
  // eventId → guardId of every panic_claimed each guard received.
  for (const g of guards) {
    g.claimed = new Map();
    g.onEvent = (f) => {
      if (f.kind === 'panic_claimed') g.claimed.set(Number(f.data.eventId), f.data.guardId);
    };
  }
  const claimOf = async (g, id) => {
    await g.until(() => g.claimed.has(id), { what: `panic_claimed of ${id}` });
    return g.claimed.get(id);
  };
  for (let round = 0; round < 5; round++) {
    const id = await database.emit(T, 'panic', ['role:guard'], { unitId: '101', alertId: `a${round}` }, { priority: 'critical', ack: true });
    await Promise.all(guards.map((g) => g.untilId(id)));
    for (const g of guards) g.send({ type: 'ack', id, ref: `ack-${round}` });
    const [a, b] = await Promise.all(guards.map((g) => claimOf(g, id)));
    assert.equal(a, b, `the guards saw different claims of ${id}`);
    const rows = await database.sql('select user_id from hub.claims where event_id = $1', [id]);
    assert.deepEqual(rows.map((r) => r.user_id), [a], `hub.claims of ${id}`);
    const claimed = await database.sql("select count(*)::int as n from hub.outbox where tenant = $1 and kind = 'panic_claimed' and (data->>'eventId')::bigint = $2", [T, id]);
    assert.equal(claimed[0].n, 1, `panic_claimed events for ${id}`);
    // Both acks are recorded, whichever hub took them.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const acked = await database.sql("select user_id from hub.deliveries where event_id = $1 and channel = 'ws' and status = 'acked' order by user_id", [id]);
      if (acked.length === 2) break;
      assert.ok(Date.now() < deadline, `acks of ${id} recorded: ${JSON.stringify(acked)}`);
      await sleep(50);
    }
  }
});

test('the JS client (clients/js) through nginx rides out the death of its hub by itself: it reconnects to the other hub and resumes, every event once', async () => {
  const T = await database.newTenant('nginx');
  const { hubs, nginx, front } = await twoHubsBehindNginx();
  const claims = { sub: 'console-1', tenant: T, role: 'guard' };
  const token = mintToken(front.secret, claims);
  // What came over the wire, before the client's own deduplication: the
  // hub's resume must not double anything either.
  const wire = [];
  class TlsWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, nginx.tls(CLIENT));
      this.on('message', (data, isBinary) => {
        const f = isBinary ? null : JSON.parse(data.toString('utf8'));
        if (f?.type === 'event') wire.push(f.seq);
      });
    }
  }
  const client = createHubClient(nginx.wsUrl, { WebSocket: TlsWebSocket, getToken: () => token, initialMs: 200 });
  const got = [];
  const opens = [];
  client.on('event', (e) => got.push(e.seq));
  client.on('state', (s) => s.state === 'open' && opens.push(s));
  client.on('error', () => {});
  const waitFor = async (pred, what, timeout = 20_000) => {
    const deadline = Date.now() + timeout;
    while (!pred()) {
      if (Date.now() > deadline) assert.fail(`no ${what} within ${timeout} ms: ${got.length} events, ${opens.length} opens, state ${client.state}`);
      await sleep(20);
    }
  };
  // The tenant is new: once the client is open it must get every event from the first.
  await waitFor(() => opens.length >= 1, 'the first connection');
  const producer = startProducer(database.url, T, { rooms: () => ['role:guard'], intervalMs: 3 });
  try {
    await waitFor(() => got.length >= 30, '30 events');
    const held = await Promise.all(hubs.map(connections));
    const victim = hubs[held.indexOf(1)];
    assert.ok(victim, `exactly one hub holds the client: ${JSON.stringify(held)}`);
    const before = got.length;
    await victim.kill('SIGKILL');
    await waitFor(() => opens.length >= 2, 'reconnection');
    await waitFor(() => got.length >= before + 30, '30 events after the reconnection');
    assert.equal(await connections(hubs.find((h) => h !== victim)), 1, 'the client is on the surviving hub');
    await producer.stop();
    const id = await database.emit(T, 'marker', ['all'], { barrier: true });
    const [{ seq }] = await database.sql('select seq from hub.outbox where id = $1', [id]);
    await waitFor(() => got.at(-1) >= Number(seq), 'the barrier');
    const want = (await database.sql("select seq from hub.outbox where tenant = $1 and seq <= $2 and rooms && array['role:guard','all'] order by seq", [T, seq])).map((r) => Number(r.seq));
    assert.deepEqual(got, want, 'the app got every event once, in order');
    assert.deepEqual(wire, want, 'the hubs sent every event once');
  } finally {
    await producer.stop();
    await client.close();
  }
});
