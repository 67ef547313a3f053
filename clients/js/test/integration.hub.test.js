// Integration tests: the client against a real armonia-hub and PostgreSQL
// (tests/integration/lib starts them). What an app would notice: every event
// once and in order across a hub crash, tokens renewed, subscriptions
// refused, acks recorded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useHubTests, startConsoleHub, restartHub, tokenFor, until, poll, db, httpGet, mintToken, nowS } from './lib/hub.js';
import { createHubClient } from '../src/index.js';

useHubTests();

let database;
const clients = new Set();

before(async () => {
  database = await db();
});

after(async () => {
  await Promise.all([...clients].map((c) => c.close()));
});

/** A client of hub for claims that records everything it reports. */
function open(hub, claims, opts = {}) {
  const tokenCalls = [];
  const getToken =
    opts.getToken ??
    ((ctx) => {
      tokenCalls.push(ctx.reason);
      return tokenFor(hub, claims);
    });
  const c = createHubClient(opts.url ?? hub.wsUrl, { WebSocket, ...opts, getToken });
  const rec = { client: c, events: [], states: [], errors: [], welcomes: [], tokenCalls };
  c.on('event', (e) => rec.events.push(e));
  c.on('state', (s) => rec.states.push(s));
  c.on('error', (e) => rec.errors.push(e));
  c.on('welcome', (w, info) => rec.welcomes.push({ w, ...info }));
  rec.describe = () =>
    `events ${JSON.stringify(rec.events.map((e) => [e.id, e.seq, e.kind]))}; states ${JSON.stringify(rec.states)}; errors ${rec.errors.map((e) => `${e.code}: ${e.message}`).join(' | ')}`;
  rec.until = (pred, what, timeout) => until(c, pred, { what, timeout, describe: rec.describe });
  rec.opened = (n = 1) => rec.until(() => rec.states.filter((s) => s.state === 'open').length >= n, `open state #${n}`);
  rec.hasIds = (ids) => rec.until(() => ids.every((id) => rec.events.some((e) => e.id === id)), `events ${ids.join(',')}`);
  clients.add(c);
  return rec;
}

async function emitTicks(tenant, n, label) {
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(await database.emit(tenant, 'tick', ['role:guard'], { label, i }));
  return ids;
}

test('the hub serves the console and the client as static files', async () => {
  const hub = await startConsoleHub();
  const js = await httpGet(hub.port, '/js/index.js');
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'], /javascript/);
  assert.match(js.body, /createHubClient/);
  const page = await httpGet(hub.port, '/console/');
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'], /text\/html/);
  assert.match(page.body, /\/js\/index\.js|console\.js/);
  await hub.stop();
});

test('GET /console without the slash redirects and the hub keeps serving', async () => {
  const hub = await startConsoleHub();
  hub.killedOnPurpose = true; // while this is a known crash, keep it from failing the file's after hook
  const r = await httpGet(hub.port, '/console');
  assert.equal(r.status, 301);
  assert.equal((await httpGet(hub.port, '/healthz')).status, 200, 'the hub still answers after the redirect');
  await hub.stop();
});

for (const format of ['json', 'msgpack']) {
  test(`${format}: a hub killed with SIGKILL and restarted on the same port — the app sees every event once, in order`, async () => {
    const T = await database.newTenant(`k9${format}`);
    const hub1 = await startConsoleHub();
    const g = open(hub1, { sub: 'g1', tenant: T, role: 'guard' }, { format, since: 0 });
    await g.opened();
    const before = await emitTicks(T, 5, 'before');
    await g.hasIds(before);

    await hub1.kill('SIGKILL');
    await g.until(() => g.states.some((s) => s.state === 'reconnecting' && s.code === 1006), 'reconnecting after the kill');
    const during = await emitTicks(T, 5, 'during');
    const hub2 = await restartHub(hub1);
    try {
      const afterIds = await emitTicks(T, 3, 'after');
      const all = [...before, ...during, ...afterIds];
      await g.hasIds(all);
      // A barrier: everything emitted before it has arrived once it has.
      const [barrier] = await emitTicks(T, 1, 'barrier');
      await g.hasIds([barrier]);
      const ids = g.events.map((e) => e.id);
      assert.deepEqual(ids, [...all, barrier], `each event once, in emit order; ${g.describe()}`);
      const seqs = g.events.map((e) => e.seq);
      assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, 'seqs increase');
      assert.equal(g.client.lastSeq, seqs.at(-1));
      const reopened = g.states.filter((s) => s.state === 'open').at(-1);
      assert.equal(reopened.since, seqs[before.length - 1], 'the reconnection resumed from the last delivered seq');
      assert.equal(g.tokenCalls.length, 1, 'the token was still good: not asked again');
    } finally {
      await g.client.close();
      await hub2.stop();
    }
  });
}

test('a token that expires: the hub closes with 4001, getToken() is called again, events keep coming', async () => {
  const T = await database.newTenant('exp4001');
  const hub = await startConsoleHub();
  const claims = { sub: 'g2', tenant: T, role: 'guard' };
  // 26 s past exp: inside the hub's 30 s leeway, so accepted, and closed ~4 s later.
  const short = tokenFor(hub, claims, -26);
  const reasons = [];
  const g = open(hub, claims, {
    getToken: ({ reason }) => {
      reasons.push(reason);
      // Until the hub rejects it, the app has nothing newer to give (so no in-band refresh).
      return reason === 'unauthorized' ? tokenFor(hub, claims) : short;
    },
  });
  await g.opened();
  await g.until(() => g.states.some((s) => s.state === 'reconnecting' && s.code === 4001), 'a 4001 close', 30_000);
  assert.ok(g.errors.some((e) => e.code === 'unauthorized'), `the hub said why; ${g.describe()}`);
  await g.opened(2);
  assert.deepEqual(reasons.filter((r) => r !== 'refresh'), ['connect', 'unauthorized']);
  const ids = await emitTicks(T, 2, 'after 4001');
  await g.hasIds(ids);
  await g.client.close();
  await hub.stop();
});

test('a token about to expire is refreshed in-band: same connection, no 4001', async () => {
  const T = await database.newTenant('refresh');
  const hub = await startConsoleHub();
  const claims = { sub: 'g3', tenant: T, role: 'guard' };
  const short = tokenFor(hub, claims, -27); // the hub would close it within ~3 s
  const reasons = [];
  let fresh;
  const g = open(hub, claims, {
    getToken: ({ reason }) => {
      reasons.push(reason);
      if (reason !== 'refresh') return short;
      fresh = mintToken(hub.secret, { ...claims, exp: nowS() + 3600 });
      return fresh;
    },
  });
  await g.opened();
  await g.until(() => g.welcomes.some((w) => w.refresh), 'a welcome answering the refresh');
  const rw = g.welcomes.find((w) => w.refresh).w;
  assert.equal(rw.session, g.welcomes[0].w.session, 'same session');
  assert.deepEqual(reasons, ['connect', 'refresh']);
  // Outlive the first token's expiry plus leeway: absence of a close can only be observed by waiting.
  await new Promise((r) => setTimeout(r, 6000));
  const ids = await emitTicks(T, 1, 'after refresh');
  await g.hasIds(ids);
  assert.deepEqual(g.states.map((s) => s.state), ['connecting', 'open'], `no reconnection; ${g.describe()}`);
  await g.client.close();
  await hub.stop();
});

test('subscribe: allowed rooms resolve and deliver, forbidden ones reject with code forbidden', async () => {
  const T = await database.newTenant('subs');
  const hub = await startConsoleHub();
  const guard = open(hub, { sub: 'g4', tenant: T, role: 'guard' });
  const resident = open(hub, { sub: 'r1', tenant: T, role: 'resident', units: ['101'] });
  await Promise.all([guard.opened(), resident.opened()]);
  assert.equal(await guard.client.subscribe('unit:302'), 'unit:302');
  await assert.rejects(resident.client.subscribe('unit:302'), (err) => err.code === 'forbidden' && err instanceof Error);
  await assert.rejects(resident.client.subscribe('role:guard'), (err) => err.code === 'forbidden');
  assert.deepEqual(resident.client.rooms, []);
  await database.insertVisitor(T, { unitId: '302', name: 'Domicilio Rappi' });
  await guard.until(() => guard.events.some((e) => e.kind === 'visitor' && e.data.unitId === '302'), 'the visitor of unit 302');
  assert.equal(await guard.client.unsubscribe('unit:302'), 'unit:302');
  await Promise.all([guard.client.close(), resident.client.close()]);
  await hub.stop();
});

test('a guard subscribed to unit:302 gets, after a reconnect, the visitor announced while it was disconnected', async () => {
  const T = await database.newTenant('subresume');
  const hub = await startConsoleHub();
  const claims = { sub: 'g6', tenant: T, role: 'guard' };
  // 26 s past exp: accepted, then closed with 4001 a few seconds later. The
  // visitor is announced while the client is disconnected: before getToken()
  // hands it the token of its next connection.
  const short = tokenFor(hub, claims, -26);
  let announced = false;
  const g = open(hub, claims, {
    getToken: async ({ reason }) => {
      if (reason !== 'unauthorized') return short;
      if (!announced) await database.insertVisitor(T, { unitId: '302', name: 'Mensajería Servientrega' });
      announced = true;
      return tokenFor(hub, claims);
    },
  });
  await g.opened();
  assert.equal(await g.client.subscribe('unit:302'), 'unit:302');
  await g.until(() => g.states.some((s) => s.state === 'reconnecting' && s.code === 4001), 'a 4001 close', 30_000);
  await g.opened(2);
  await g.until(() => g.events.some((e) => e.kind === 'visitor' && e.data.unitId === '302'), 'the visitor announced while disconnected');
  const v = g.events.find((e) => e.kind === 'visitor');
  assert.equal(v.room, 'unit:302');
  assert.equal(v.data.name, 'Mensajería Servientrega');
  const w = g.welcomes.at(-1).w;
  assert.ok(w.rooms.includes('unit:302'), `the reconnect's welcome lists unit:302: ${JSON.stringify(w)}`);
  assert.deepEqual(g.client.rooms, ['unit:302']);
  assert.deepEqual(g.errors.filter((e) => e.room), [], g.describe());
  await g.client.close();
  await hub.stop();
});

test('rooms refused at authentication are forgotten and reported with their room', async () => {
  const T = await database.newTenant('authrooms');
  const hub = await startConsoleHub();
  const r = open(hub, { sub: 'r2', tenant: T, role: 'resident', units: ['101'] }, { rooms: ['unit:101', 'unit:999'] });
  await r.opened();
  await r.until(() => r.errors.some((e) => e.room === 'unit:999'), 'the refusal of unit:999');
  const err = r.errors.find((e) => e.room === 'unit:999');
  assert.equal(err.code, 'forbidden');
  assert.deepEqual(r.client.rooms, ['unit:101']);
  assert.ok(r.welcomes[0].w.rooms.includes('unit:101'));
  await r.client.close();
  await hub.stop();
});

test('autoAck acks events that ask for it: hub.deliveries says ws/acked, and the panic is claimed', async () => {
  const T = await database.newTenant('autoack');
  const hub = await startConsoleHub();
  const guardId = await database.insertUser(T, { name: 'Carlos Pérez', role: 'GUARD' });
  const g = open(hub, { sub: guardId, tenant: T, role: 'guard' }, { autoAck: true });
  await g.opened();
  await database.insertPanic(T, { userId: 'r9', unitId: '502', message: 'Ayuda, torre 5' });
  await g.until(() => g.events.some((e) => e.kind === 'panic'), 'the panic');
  const panic = g.events.find((e) => e.kind === 'panic');
  assert.equal(panic.ack, true);
  const rows = await poll(async () => {
    const r = await database.sql(`select status from hub.deliveries where event_id = $1 and user_id = $2 and channel = 'ws'`, [panic.id, guardId]);
    return r.length && r[0].status === 'acked' ? r : null;
  }, { what: `an acked ws delivery of event ${panic.id}` });
  assert.equal(rows[0].status, 'acked');
  await g.until(() => g.events.some((e) => e.kind === 'panic_claimed' && e.data.eventId === panic.id), 'panic_claimed');
  const claim = g.events.find((e) => e.kind === 'panic_claimed');
  assert.equal(claim.data.guardId, guardId);
  assert.equal(claim.data.guardName, 'Carlos Pérez');
  assert.equal(claim.ack, false);
  await g.client.close();
  await hub.stop();
});

test('SIGTERM (draining, 1001): the client waits a jittered delay and resumes on the new hub', async () => {
  const T = await database.newTenant('drain');
  const hub1 = await startConsoleHub();
  const g = open(hub1, { sub: 'g5', tenant: T, role: 'guard' }, { drainSpreadMs: 1500 });
  await g.opened();
  const first = await emitTicks(T, 2, 'before');
  await g.hasIds(first);
  await hub1.stop();
  await g.until(() => g.states.some((s) => s.state === 'reconnecting'), 'reconnecting');
  const st = g.states.find((s) => s.state === 'reconnecting');
  assert.equal(st.code, 1001, `the hub said it was going away; ${g.describe()}`);
  const during = await emitTicks(T, 2, 'during');
  const hub2 = await restartHub(hub1);
  await g.hasIds(during);
  assert.deepEqual(g.events.map((e) => e.id), [...first, ...during]);
  await g.client.close();
  await hub2.stop();
});
