// socketio.test.mjs - apps built on socket.io-client 4.x talk to the hub on
// /socket.io/ (docs/protocol.md, "Socket.IO compatibility"): the real
// client from npm, against a real hub and PostgreSQL.
//
// What an app sees: the token in the CONNECT auth, events named after their
// kind carrying the native event map, errors as connect_error with the
// native codes, subscribe/unsubscribe answered through the emit's ack,
// panics claimed through the event's ack callback, and, across a hub
// restart, Socket.IO's connection state recovery with every seq once.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import {
  useLifecycle, startHub, db, login, mintToken, httpGet, sleep,
} from './lib/harness.mjs';

useLifecycle();

let hub, database, A, B;
const u = {};
const sockets = new Set();

before(async () => {
  database = await db();
  A = await database.newTenant('sioA');
  B = await database.newTenant('sioB');
  const people = {
    g1: [A, 'Guardia Uno', 'GUARD'], g2: [A, 'Guardia Dos', 'GUARD'],
    r1: [A, 'Residente 101', 'RESIDENT', '101'], gB: [B, 'Guardia B', 'GUARD'],
  };
  for (const [k, [tenant, name, role, unitId]] of Object.entries(people)) u[k] = await database.insertUser(tenant, { name, role, unitId });
  hub = await startHub({ env: { HUB_SIO_PING_INTERVAL_MS: 1000, HUB_SIO_PING_TIMEOUT_MS: 1500 } });
});

/**
 * A socket.io-client socket on hub with a token for claims; every event it
 * gets is recorded as {name, args} (args without the ack callback; ack holds
 * it). Resolves once connected, or rejects with the connect_error.
 */
function sio(h, claims, { token, auth = {}, options = {}, waitConnect = true } = {}) {
  const s = io(h.url, {
    transports: ['websocket'],
    auth: { token: token ?? mintToken(h.secret, claims), ...auth },
    reconnection: false,
    forceNew: true,
    ...options,
  });
  sockets.add(s);
  s.got = [];
  s.waiters = [];
  s.onAny((name, ...args) => {
    const ack = typeof args.at(-1) === 'function' ? args.pop() : undefined;
    s.got.push({ name, args, ack });
    for (const w of [...s.waiters]) w();
  });
  /** Resolves with the first recorded event matching where (taken or not). */
  s.waitFor = (where, what = 'an event', timeout = 8000) => new Promise((resolve, reject) => {
    const check = () => {
      const e = s.got.find(where);
      if (!e) return false;
      s.waiters = s.waiters.filter((w) => w !== check);
      clearTimeout(timer);
      resolve(e);
      return true;
    };
    const timer = setTimeout(() => {
      s.waiters = s.waiters.filter((w) => w !== check);
      reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(s.got.map((e) => [e.name, e.args]))}`));
    }, timeout);
    if (!check()) s.waiters.push(check);
  });
  if (!waitConnect) return s;
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('connect_error', (err) => reject(err));
  });
}

function closeAll() {
  for (const s of sockets) s.disconnect();
  sockets.clear();
}

const events = (s, kind) => s.got.filter((e) => e.name === kind);

test('CONNECT with the token in auth; events arrive named by kind, carrying the native event map and the seq as offset', async (t) => {
  t.after(closeAll);
  const r = await sio(hub, { sub: u.r1, tenant: A, role: 'resident', units: ['101'] });
  assert.ok(r.connected && r.id, 'socket not connected');
  const welcome = await r.waitFor((e) => e.name === 'welcome', 'the welcome event');
  assert.equal(welcome.args[0].user, u.r1);
  assert.deepEqual(welcome.args[0].rooms, ['all', `user:${u.r1}`, 'role:resident', 'unit:101']);
  const native = await login(hub, { sub: u.r1, tenant: A, role: 'resident', units: ['101'] });

  await database.insertVisitor(A, { unitId: '101', name: 'Ana' });
  const nat = await native.next({ type: 'event', where: (f) => f.kind === 'visitor' });
  const got = await r.waitFor((e) => e.name === 'visitor', 'the visitor event');
  assert.equal(got.args.length, 2, `args: the event map, then the offset: ${JSON.stringify(got.args)}`);
  assert.deepEqual(got.args[0], nat, 'the Socket.IO payload is not the native event frame');
  assert.equal(got.args[1], String(nat.seq), 'the offset is not the seq as a string');
  assert.equal(typeof got.ack === 'function', nat.ack, 'an ack callback comes exactly with ack:true');
  assert.equal(got.args[0].data.name, 'Ana');
});

test('a bad token gets connect_error with data.code unauthorized and the native reason; an expired one too', async () => {
  const bad = mintToken('not-the-secret', { sub: u.r1, tenant: A, role: 'resident' });
  await assert.rejects(sio(hub, null, { token: bad }), (err) => {
    assert.equal(err.data?.code, 'unauthorized', `connect_error data: ${JSON.stringify(err.data)}`);
    assert.equal(err.message, 'bad signature');
    return true;
  });
  const expired = mintToken(hub.secret, { sub: u.r1, tenant: A, role: 'resident', exp: Math.floor(Date.now() / 1000) - 3600 });
  await assert.rejects(sio(hub, null, { token: expired }), (err) => err.data?.code === 'unauthorized' && /expired/.test(err.message));
  await assert.rejects(sio(hub, null, { auth: { token: undefined } }), (err) => err.data?.code === 'unauthorized' && /token/.test(err.message));
});

test('HTTP long-polling gets 400 saying to set transports: [\'websocket\']; EIO other than 4 gets 400 naming it', async () => {
  const poll = await httpGet(hub.port, '/socket.io/?EIO=4&transport=polling');
  assert.equal(poll.status, 400);
  assert.match(poll.body, /transports: \['websocket'\]/);
  const eio3 = await httpGet(hub.port, '/socket.io/?EIO=3&transport=polling');
  assert.equal(eio3.status, 400);
  assert.match(eio3.body, /EIO=3/);
  // An upgrade with EIO=3 is refused the same way, before the 101.
  const ws = new WebSocket(`ws://127.0.0.1:${hub.port}/socket.io/?EIO=3&transport=websocket`);
  const status = await new Promise((resolve) => {
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('open'));
    ws.on('error', () => {});
  });
  ws.terminate();
  assert.equal(status, 400);
  // A client left with its default transports cannot connect (polling comes first).
  const s = io(hub.url, { auth: { token: 'x' }, reconnection: false, forceNew: true });
  sockets.add(s);
  const err = await new Promise((resolve) => s.once('connect_error', resolve));
  s.disconnect();
  assert.ok(err, 'a polling client connected');
});

test('subscribe and unsubscribe answer through the ack: allowed for a guard, forbidden for a resident', async (t) => {
  t.after(closeAll);
  const g = await sio(hub, { sub: u.g1, tenant: A, role: 'guard' });
  const r = await sio(hub, { sub: u.r1, tenant: A, role: 'resident', units: ['101'] });
  assert.deepEqual(await g.timeout(5000).emitWithAck('subscribe', { room: 'unit:302' }), { type: 'subscribed', room: 'unit:302' });
  const no = await r.timeout(5000).emitWithAck('subscribe', { room: 'unit:302' });
  assert.equal(no.type, 'error');
  assert.equal(no.code, 'forbidden');
  const malformed = await r.timeout(5000).emitWithAck('subscribe', { room: 'no spaces' });
  assert.equal(malformed.code, 'bad_request');

  await database.insertVisitor(A, { unitId: '302', name: 'Luis' });
  const v = await g.waitFor((e) => e.name === 'visitor', 'the visitor of unit 302');
  assert.equal(v.args[0].room, 'unit:302');

  assert.deepEqual(await g.timeout(5000).emitWithAck('unsubscribe', { room: 'unit:302' }), { type: 'unsubscribed', room: 'unit:302' });
  await database.insertVisitor(A, { unitId: '302', name: 'Otro' });
  const marker = await database.emit(A, 'marker', ['all'], {});
  await g.waitFor((e) => e.name === 'marker' && e.args[0].id === marker, 'the marker');
  assert.equal(events(g, 'visitor').length, 1, 'a visitor of a room left still arrived');
  assert.equal(events(r, 'visitor').length, 0, 'the resident of 101 got a visitor of 302');
});

test('rooms named in auth are joined at CONNECT (refusals as error events); a refresh is an auth emit answered through its ack', async (t) => {
  t.after(closeAll);
  const claims = { sub: u.g1, tenant: A, role: 'guard' };
  const g = await sio(hub, claims, { auth: { rooms: ['unit:303'] } });
  const w = await g.waitFor((e) => e.name === 'welcome', 'the welcome');
  assert.ok(w.args[0].rooms.includes('unit:303'), `welcome rooms: ${JSON.stringify(w.args[0].rooms)}`);
  await database.insertVisitor(A, { unitId: '303', name: 'Eva' });
  await g.waitFor((e) => e.name === 'visitor' && e.args[0].room === 'unit:303', 'the visitor of unit 303');

  const r = await sio(hub, { sub: u.r1, tenant: A, role: 'resident', units: ['101'] }, { auth: { rooms: ['role:admin'] } });
  const no = await r.waitFor((e) => e.name === 'error', 'the refusal of role:admin');
  assert.equal(no.args[0].code, 'forbidden');
  assert.equal(no.args[0].room, 'role:admin');
  assert.ok(r.connected, 'a refused room ended the connection');

  const fresh = await g.timeout(5000).emitWithAck('auth', { token: mintToken(hub.secret, claims) });
  assert.equal(fresh.type, 'welcome');
  assert.equal(typeof fresh.exp, 'number');
  assert.equal(fresh.session, g.id, 'a refresh answers for the same session');
});

test('the ack callback of a panic claims it: the other guard gets panic_claimed; an ack event works too', async (t) => {
  t.after(closeAll);
  const g1 = await sio(hub, { sub: u.g1, tenant: A, role: 'guard' });
  const g2 = await sio(hub, { sub: u.g2, tenant: A, role: 'guard' });
  await database.insertPanic(A, { userId: u.r1, unitId: '101', message: 'Ayuda' });
  const p1 = await g1.waitFor((e) => e.name === 'panic', 'the panic at guard 1');
  const p2 = await g2.waitFor((e) => e.name === 'panic', 'the panic at guard 2');
  assert.equal(p1.args[0].ack, true);
  assert.equal(typeof p1.ack, 'function', 'a panic came without an ack callback');
  assert.equal(p1.args[1], String(p1.args[0].seq), 'the offset is not the seq');
  p1.ack();
  const claimed = await g2.waitFor((e) => e.name === 'panic_claimed', 'panic_claimed at guard 2');
  assert.equal(claimed.args[0].data.eventId, p1.args[0].id);
  assert.equal(claimed.args[0].data.guardId, u.g1);
  const rows = await database.sql("select user_id, status from hub.deliveries where event_id = $1 and channel = 'ws'", [p1.args[0].id]);
  assert.ok(rows.some((x) => x.user_id === u.g1 && x.status === 'acked'), `no acked delivery for guard 1: ${JSON.stringify(rows)}`);

  // The other guard acks with an ack event naming the seq, as the offset
  // string (after the claim: recorded, claims nothing new).
  assert.deepEqual(p2.args[0].id, p1.args[0].id);
  g2.emit('ack', { seq: p2.args[1] });
  for (let i = 0; i < 100; i++) {
    const r2 = await database.sql("select status from hub.deliveries where event_id = $1 and user_id = $2 and channel = 'ws'", [p2.args[0].id, u.g2]);
    if (r2.some((x) => x.status === 'acked')) break;
    assert.ok(i < 99, 'the ack event of guard 2 was not recorded');
    await sleep(50);
  }
  const claims = await database.sql("select id from hub.outbox where tenant = $1 and kind = 'panic_claimed' and (data->>'eventId')::bigint = $2", [A, p1.args[0].id]);
  assert.equal(claims.length, 1, 'one panic_claimed per panic');
  // A resident cannot ack the panic by guessing its id.
  const r = await sio(hub, { sub: u.r1, tenant: A, role: 'resident', units: ['101'] });
  r.emit('ack', { id: p1.args[0].id });
  const e = await r.waitFor((x) => x.name === 'error', 'the refusal of the resident\'s ack');
  assert.equal(e.args[0].code, 'forbidden');
});

test('tenant isolation: a socket of tenant B never sees tenant A\'s events', async (t) => {
  t.after(closeAll);
  const gA = await sio(hub, { sub: u.g1, tenant: A, role: 'guard' });
  const gB = await sio(hub, { sub: u.gB, tenant: B, role: 'guard' });
  await database.insertPanic(A, { userId: u.r1, unitId: '101', message: 'A' });
  await database.emit(A, 'announcement', ['all'], { title: 'A' });
  await gA.waitFor((e) => e.name === 'announcement', 'A\'s announcement at A');
  const mB = await database.emit(B, 'marker', ['all'], {});
  await gB.waitFor((e) => e.name === 'marker' && e.args[0].id === mB, 'B\'s marker');
  await sleep(300);
  assert.deepEqual(gB.got.filter((e) => !['welcome', 'marker'].includes(e.name)).map((e) => e.name), [], 'tenant B got events of A');
});

test('the hub pings (Engine.IO 2) and a client that never answers is closed; socket.io-client answers and stays', async (t) => {
  t.after(closeAll);
  const s = await sio(hub, { sub: u.r1, tenant: A, role: 'resident', units: ['101'] });
  const raw = new WebSocket(`ws://127.0.0.1:${hub.port}/socket.io/?EIO=4&transport=websocket`);
  const frames = [];
  raw.on('message', (m) => frames.push(String(m)));
  const closed = new Promise((resolve) => raw.on('close', (code) => resolve(code)));
  await new Promise((resolve) => raw.on('open', resolve));
  raw.send(`40${JSON.stringify({ token: mintToken(hub.secret, { sub: u.r1, tenant: A, role: 'resident' }) })}`);
  const code = await Promise.race([closed, sleep(10_000).then(() => 'still open')]);
  assert.equal(code, 4008, `a client without pongs: ${code}; frames ${JSON.stringify(frames)}`);
  const open = JSON.parse(frames[0].slice(1));
  assert.equal(frames[0][0], '0');
  assert.deepEqual(open.upgrades, []);
  assert.equal(open.pingInterval, 1000);
  assert.ok(frames.includes('2'), 'no ping seen');
  assert.ok(frames.some((f) => f.startsWith('40{"sid"')), `no CONNECT answer: ${JSON.stringify(frames)}`);
  assert.ok(s.connected, 'socket.io-client was disconnected although it answers pings');
  const metrics = (await httpGet(hub.port, '/metrics')).body;
  const value = (name) => Number(metrics.match(new RegExp(`^${name} (\\d+)$`, 'm'))?.[1]);
  assert.ok(value('armonia_socketio_ping_timeouts_total') >= 1, 'the ping timeout was not counted');
  assert.ok(value('armonia_socketio_connections_total') >= 2, 'Socket.IO connections were not counted');
});

/** A raw Engine.IO WebSocket, CONNECTed with a token for claims; frames are recorded. */
async function rawSio(h, claims) {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/socket.io/?EIO=4&transport=websocket`);
  ws.frames = [];
  ws.on('message', (m) => ws.frames.push(String(m)));
  ws.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve) => ws.on('open', resolve));
  ws.send(`40${JSON.stringify({ token: mintToken(h.secret, claims) })}`);
  for (let i = 0; i < 100 && !ws.frames.some((f) => f.startsWith('40{')); i++) await sleep(20);
  assert.ok(ws.frames.some((f) => f.startsWith('40{')), `not connected: ${JSON.stringify(ws.frames)}`);
  return ws;
}

const within = (p, ms) => Promise.race([p, sleep(ms).then(() => 'still open')]);

test('the native limits hold: a message over HUB_MAX_FRAME_BYTES gets too_large and 1009, a flood rate_limited and 4029', async () => {
  const big = await rawSio(hub, { sub: u.r1, tenant: A, role: 'resident' });
  big.send(`42["ping",{"pad":"${'x'.repeat(70 * 1024)}"}]`);
  assert.equal(await within(big.closed, 5000), 1009);
  assert.ok(big.frames.some((f) => f.startsWith('42["error",') && JSON.parse(f.slice(2))[1].code === 'too_large'), JSON.stringify(big.frames.slice(-3)));

  const flood = await rawSio(hub, { sub: u.r1, tenant: A, role: 'resident' });
  for (let i = 0; i < 300; i++) flood.send('42["ping"]');
  assert.equal(await within(flood.closed, 5000), 4029);
  assert.ok(flood.frames.some((f) => f.startsWith('42["error",') && JSON.parse(f.slice(2))[1].code === 'rate_limited'));
  assert.ok(flood.frames.includes('42["pong",{"type":"pong"}]'), 'a ping event is answered with a pong event');
});

test('a namespace other than "/" gets CONNECT_ERROR; the default one still works', async (t) => {
  t.after(closeAll);
  const s = io(`${hub.url}/admin`, { transports: ['websocket'], auth: { token: mintToken(hub.secret, { sub: u.g1, tenant: A, role: 'guard' }) }, reconnection: false, forceNew: true });
  sockets.add(s);
  const err = await new Promise((resolve) => s.once('connect_error', resolve));
  assert.match(err.message, /namespace/);
});

test('hub restart mid-stream: the client reconnects with connection state recovery, socket.recovered is true and every seq arrives once', async (t) => {
  t.after(closeAll);
  const T = await database.newTenant('sioR');
  const g = await database.insertUser(T, { name: 'Guardia', role: 'GUARD' });
  const h1 = await startHub({ env: { HUB_SIO_PING_INTERVAL_MS: 1000, HUB_SIO_PING_TIMEOUT_MS: 1500 } });
  const claims = { sub: g, tenant: T, role: 'guard' };
  const s = await sio(h1, claims, { options: { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300 } });
  assert.equal(s.recovered, false);
  const seqs = () => s.got.filter((e) => e.name === 'tick' || e.name === 'alarm').map((e) => e.args[0].seq);
  for (let i = 0; i < 20; i++) await database.emit(T, 'tick', ['all'], { i });
  // The last event before the restart asks for an ack: its offset comes in the event after it.
  await database.emit(T, 'alarm', ['role:guard'], { i: 20 }, { ack: true, priority: 'high' });
  await s.waitFor((e) => e.name === 'alarm', 'the alarm');
  await h1.kill('SIGKILL');
  await new Promise((resolve) => (s.connected ? s.once('disconnect', resolve) : resolve()));
  for (let i = 21; i < 40; i++) await database.emit(T, 'tick', ['all'], { i });
  const h2 = await startHub({ port: h1.port, env: { JWT_SECRET_KEY: h1.secret, HUB_SIO_PING_INTERVAL_MS: 1000, HUB_SIO_PING_TIMEOUT_MS: 1500 } });
  await new Promise((resolve) => (s.connected ? resolve() : s.once('connect', resolve)));
  assert.equal(s.recovered, true, 'socket.recovered is false after the restart');
  for (let i = 40; i < 50; i++) await database.emit(T, 'tick', ['all'], { i });
  await s.waitFor((e) => e.name === 'tick' && e.args[0].data.i === 49, 'the last tick', 15_000);
  const expected = (await database.sql("select seq from hub.outbox where tenant = $1 and kind in ('tick', 'alarm') order by seq", [T])).map((r) => Number(r.seq));
  assert.deepEqual(seqs(), expected, 'not every seq exactly once, in order');
  await h2.stop();
});
