// hub_rooms.test.mjs - what an authenticated client may ask of the hub:
// subscribe/unsubscribe by role, room-name rules, ping/ref, malformed
// frames, the frame-size limit, both subprotocols, and the plain HTTP side
// of the port (docs/protocol.md "Rooms", "Other frames", "Limits and close
// codes", "HTTP on the same port").

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import {
  useLifecycle, startHub, db, connect, login, mintToken, httpGet,
  expectError, assertUsable, SUBPROTOCOL,
} from './lib/harness.mjs';

useLifecycle();

let hub, database, tenant;

before(async () => {
  database = await db();
  tenant = await database.newTenant('rooms');
  hub = await startHub();
});

const resident = (sub, units = ['101'], opts) => login(hub, { sub, tenant, role: 'resident', units }, opts);
const guard = (sub, opts) => login(hub, { sub, tenant, role: 'guard' }, opts);
const admin = (sub, opts) => login(hub, { sub, tenant, role: 'admin' }, opts);

/** subscribe → exactly {"type":"subscribed","room":room} (plus ref when sent). */
async function subscribeOk(c, room, ref) {
  const req = { type: 'subscribe', room };
  if (ref !== undefined) req.ref = ref;
  const f = await c.request(req, ['subscribed', 'error']);
  const want = { type: 'subscribed', room };
  if (ref !== undefined) want.ref = ref;
  assert.deepEqual(f, want, `${c.label}: subscribe ${room}`);
}

async function subscribeRefused(c, room, code) {
  const ref = `sub-${Math.random().toString(36).slice(2, 8)}`;
  c.send({ type: 'subscribe', room, ref });
  const f = await c.next({ where: (x) => x.type === 'subscribed' || x.type === 'error' });
  assert.equal(f.type, 'error', `${c.label}: subscribe ${JSON.stringify(room)} should be refused with ${code}, got ${JSON.stringify(f)}`);
  assert.equal(f.code, code, `${c.label}: subscribe ${JSON.stringify(room)}: ${JSON.stringify(f)}`);
  assert.equal(f.ref, ref, `${c.label}: the error does not echo ref: ${JSON.stringify(f)}`);
  assert.ok(typeof f.message === 'string' && f.message.length > 0, `error without message: ${JSON.stringify(f)}`);
}

test('resident: subscribe to another unit → forbidden; the connection stays usable', async () => {
  const c = await resident('r-forbid', ['101']);
  await subscribeRefused(c, 'unit:999', 'forbidden');
  await subscribeRefused(c, 'role:guard', 'forbidden');
  await subscribeRefused(c, 'user:someone-else', 'forbidden');
  await assertUsable(c);
  assert.equal(c.closeInfo, null);
  c.close();
});

test('resident: a forbidden room really is not joined (an event to it does not arrive)', async () => {
  const c = await resident('r-notjoined', ['101']);
  await subscribeRefused(c, 'unit:998', 'forbidden');
  const secret = await database.emit(tenant, 'visitor', ['unit:998'], { unitId: '998' });
  const mine = await database.emit(tenant, 'visitor', ['unit:101'], { unitId: '101' });
  const e = await c.next({ type: 'event' });
  assert.equal(e.id, mine, `the first event should be the one for unit:101 (id ${mine}), not id ${secret}: ${JSON.stringify(e)}`);
  c.close();
});

test('guard: subscribe unit:302 → subscribed, and events to unit:302 arrive through it', async () => {
  const c = await guard('g-302');
  await subscribeOk(c, 'unit:302');
  const id = await database.emit(tenant, 'visitor', ['unit:302'], { unitId: '302' });
  const e = await c.next({ type: 'event', where: (f) => f.id === id });
  assert.equal(e.room, 'unit:302');
  c.close();
});

test('guard: subscribe role:admin, user:x, all-guards → forbidden', async () => {
  const c = await guard('g-forbid');
  await subscribeRefused(c, 'role:admin', 'forbidden');
  await subscribeRefused(c, 'user:r-someone', 'forbidden');
  await subscribeRefused(c, 'custom-room', 'forbidden');
  await assertUsable(c);
  c.close();
});

test('admin: subscribe to any room of its tenant → subscribed', async () => {
  const c = await admin('a-any');
  for (const room of ['unit:302', 'role:guard', 'user:r-forbid', 'tower.A_1-b', 'x'.repeat(100)]) await subscribeOk(c, room);
  c.close();
});

test('subscribe echoes ref (string and number)', async () => {
  const c = await guard('g-ref');
  await subscribeOk(c, 'unit:1', 'abc');
  await subscribeOk(c, 'unit:2', 42);
  c.close();
});

test('bad room names → bad_request (even for an admin); the connection stays usable', async () => {
  const c = await admin('a-badnames');
  for (const room of ['', 'x'.repeat(101), 'a b', 'x/y', 'unit:1\n', 'ñandú', 'a"b', 7, null, ['all']]) await subscribeRefused(c, room, 'bad_request');
  c.send({ type: 'subscribe', ref: 'noroom' });
  await expectError(c, 'bad_request', { ref: 'noroom' });
  await assertUsable(c);
  c.close();
});

test('unsubscribe → unsubscribed; events to that room stop', async () => {
  const c = await guard('g-unsub');
  await subscribeOk(c, 'unit:303');
  const f = await c.request({ type: 'unsubscribe', room: 'unit:303', ref: 'u1' }, ['unsubscribed', 'error']);
  assert.deepEqual(f, { type: 'unsubscribed', room: 'unit:303', ref: 'u1' });
  const gone = await database.emit(tenant, 'visitor', ['unit:303'], { unitId: '303' });
  const mine = await database.emit(tenant, 'marker', ['user:g-unsub'], {});
  const e = await c.next({ type: 'event' });
  assert.equal(e.id, mine, `after unsubscribe the event to unit:303 (id ${gone}) still arrived: ${JSON.stringify(e)}`);
  c.close();
});

// Rooms at authentication (docs/protocol.md "Rooms at authentication"):
// "rooms" in the auth frame, or ?rooms=a,b with header authentication, joined before any replay.

/** Opens a connection and sends {"type":"auth", token, ...extra}; resolves with the client. */
async function authWith(claims, extra, opts = {}) {
  const c = await connect(hub.wsUrl, { label: `${claims.sub}(auth+rooms)`, ...opts });
  c.send({ type: 'auth', token: mintToken(hub.secret, claims), ...extra });
  return c;
}

/** The frames up to and including the welcome: [errors before it, welcome]. */
async function untilWelcome(c) {
  const errors = [];
  for (;;) {
    const f = await c.next({ where: (x) => x.type === 'welcome' || x.type === 'error' });
    if (f.type === 'welcome') return [errors, f];
    errors.push(f);
  }
}

test('auth with rooms: allowed rooms are joined and listed in welcome; each refused room gets its own error naming it; events arrive through the joined ones', async () => {
  const c = await authWith({ sub: 'g-authrooms', tenant, role: 'guard' },
    { rooms: ['unit:302', 'role:admin', 'bad room!', 'unit:303', 'unit:302', 'all'], ref: 'a1' });
  const [errors, w] = await untilWelcome(c);
  assert.deepEqual(w.rooms.slice().sort(), ['all', 'role:guard', 'unit:302', 'unit:303', 'user:g-authrooms'], JSON.stringify(w));
  assert.equal(w.ref, 'a1');
  assert.deepEqual(errors.map((e) => [e.code, e.room, e.ref]), [['forbidden', 'role:admin', 'a1'], ['bad_request', 'bad room!', 'a1']],
    JSON.stringify(errors));
  for (const e of errors) assert.ok(typeof e.message === 'string' && e.message.length > 0);
  const id = await database.emit(tenant, 'visitor', ['unit:303'], { unitId: '303' });
  const e = await c.next({ type: 'event', where: (f) => f.id === id });
  assert.equal(e.room, 'unit:303');
  const secret = await database.emit(tenant, 'notice', ['role:admin'], {});
  const mark = await database.emit(tenant, 'marker', ['user:g-authrooms'], {});
  const next = await c.next({ type: 'event' });
  assert.equal(next.id, mark, `an event to the refused role:admin (id ${secret}) arrived: ${JSON.stringify(next)}`);
  c.close();
});

test('auth with rooms: a resident may name only its own rooms', async () => {
  const c = await authWith({ sub: 'r-authrooms', tenant, role: 'resident', units: ['101'] }, { rooms: ['unit:101', 'unit:102'] });
  const [errors, w] = await untilWelcome(c);
  assert.deepEqual(errors.map((e) => [e.code, e.room]), [['forbidden', 'unit:102']]);
  assert.deepEqual(w.rooms.slice().sort(), ['all', 'role:resident', 'unit:101', 'user:r-authrooms']);
  c.close();
});

test('auth with rooms that are not an array of strings → bad_request naming the field; the connection is still authenticated', async () => {
  const notArray = await authWith({ sub: 'g-authrooms-bad', tenant, role: 'guard' }, { rooms: 'unit:302', ref: 'b1' });
  const [errors, w] = await untilWelcome(notArray);
  assert.deepEqual(errors.map((e) => [e.code, e.ref]), [['bad_request', 'b1']]);
  assert.match(errors[0].message, /rooms must be an array/);
  assert.deepEqual(w.rooms.slice().sort(), ['all', 'role:guard', 'user:g-authrooms-bad']);
  notArray.close();

  const mixed = await authWith({ sub: 'g-authrooms-mixed', tenant, role: 'guard' }, { rooms: ['unit:1', 7, null, 'unit:2'] });
  const [errs, w2] = await untilWelcome(mixed);
  assert.deepEqual(errs.map((e) => [e.code, e.message]), [
    ['bad_request', 'rooms[1] must be a string room name'], ['bad_request', 'rooms[2] must be a string room name']]);
  assert.deepEqual(w2.rooms.slice().sort(), ['all', 'role:guard', 'unit:1', 'unit:2', 'user:g-authrooms-mixed']);
  await assertUsable(mixed);
  mixed.close();
});

test('auth with rooms: HUB_MAX_ROOMS_PER_CONN=5 → rooms beyond it refused with bad_request naming each', async () => {
  const h = await startHub({ env: { HUB_MAX_ROOMS_PER_CONN: 5 } });
  const c = await connect(h.wsUrl, { label: 'g-maxrooms' });
  c.send({ type: 'auth', token: mintToken(h.secret, { sub: 'g-maxrooms', tenant, role: 'guard' }), rooms: ['unit:1', 'unit:2', 'unit:3', 'unit:4'] });
  const [errors, w] = await untilWelcome(c);
  assert.deepEqual(errors.map((e) => [e.code, e.room]), [['bad_request', 'unit:3'], ['bad_request', 'unit:4']]);
  assert.match(errors[0].message, /too many rooms/);
  assert.deepEqual(w.rooms.slice().sort(), ['all', 'role:guard', 'unit:1', 'unit:2', 'user:g-maxrooms']);
  c.close();
  await h.stop();
});

test('header auth with ?rooms=a,b: joined before welcome, refusals reported', async () => {
  const token = mintToken(hub.secret, { sub: 'g-urlrooms', tenant, role: 'guard' });
  const c = await connect(hub.wsUrl, { token, header: true, query: { rooms: 'unit:302,role:admin,unit:304' }, label: 'g-urlrooms' });
  const [errors, w] = await untilWelcome(c);
  assert.deepEqual(errors.map((e) => [e.code, e.room]), [['forbidden', 'role:admin']]);
  assert.deepEqual(w.rooms.slice().sort(), ['all', 'role:guard', 'unit:302', 'unit:304', 'user:g-urlrooms']);
  c.close();
});

test('header auth with ?rooms= naming a room that is not UTF-8: bad_request for it, the others joined', async () => {
  const token = mintToken(hub.secret, { sub: 'g-urlrooms-bad', tenant, role: 'guard' });
  const c = await connect(`${hub.wsUrl}?rooms=unit:1,%FF,unit:2,bad%20room`, { token, header: true, label: 'g-urlrooms-bad' });
  const [errors, w] = await untilWelcome(c);
  assert.deepEqual(errors.map((e) => [e.code, e.room]), [['bad_request', undefined], ['bad_request', 'bad room']], JSON.stringify(errors));
  assert.match(errors[0].message, /not UTF-8/);
  assert.deepEqual(w.rooms.slice().sort(), ['all', 'role:guard', 'unit:1', 'unit:2', 'user:g-urlrooms-bad']);
  await assertUsable(c);
  c.close();
});

test('a guard resuming with since and its unit rooms in auth gets the visitor announced while it was offline', async () => {
  const claims = { sub: 'g-resume-rooms', tenant, role: 'guard' };
  const first = await authWith(claims, { rooms: ['unit:305'] });
  const [, w1] = await untilWelcome(first);
  assert.ok(w1.rooms.includes('unit:305'), JSON.stringify(w1));
  const seen = await database.emit(tenant, 'visitor', ['unit:305'], { unitId: '305', k: 1 }, { priority: 'high', ack: true });
  const e1 = await first.next({ type: 'event', where: (f) => f.id === seen });
  first.close();
  await first.closed;
  const missed = await database.emit(tenant, 'visitor', ['unit:305'], { unitId: '305', k: 2 }, { priority: 'high', ack: true });
  const again = await authWith(claims, { rooms: ['unit:305'], since: e1.seq });
  const [errors, w2] = await untilWelcome(again);
  assert.deepEqual(errors, []);
  assert.ok(w2.rooms.includes('unit:305'), JSON.stringify(w2));
  const e2 = await again.next({ type: 'event', where: (f) => f.id === missed });
  assert.equal(e2.room, 'unit:305');
  assert.equal(e2.data.k, 2);
  again.close();
});

test('ping → pong; ping with ref (string, number) → pong echoing it exactly', async () => {
  const c = await resident('r-ping');
  c.send({ type: 'ping' });
  assert.deepEqual(await c.next({ type: 'pong' }), { type: 'pong' });
  c.send({ type: 'ping', ref: 'r-1' });
  assert.deepEqual(await c.next({ type: 'pong' }), { type: 'pong', ref: 'r-1' });
  c.send({ type: 'ping', ref: 12345 });
  assert.deepEqual(await c.next({ type: 'pong' }), { type: 'pong', ref: 12345 });
  c.close();
});

test('malformed frames → bad_request, and the connection stays usable after each', async () => {
  const c = await resident('r-malformed');
  const cases = [
    ['malformed JSON', () => c.sendRaw('{"type": "ping"', { binary: false })],
    ['JSON array', () => c.sendRaw('["ping"]', { binary: false })],
    ['JSON string', () => c.sendRaw('"ping"', { binary: false })],
    ['JSON number', () => c.sendRaw('42', { binary: false })],
    ['unknown type', () => c.send({ type: 'dance', ref: 'd' })],
    ['missing type', () => c.send({ room: 'all' })],
    ['type not a string', () => c.send({ type: 5 })],
  ];
  for (const [what, send] of cases) {
    send();
    const f = await c.next({ where: (x) => x.type !== 'event' });
    assert.equal(f.type, 'error', `${what}: expected an error frame, got ${JSON.stringify(f)}`);
    assert.equal(f.code, 'bad_request', `${what}: ${JSON.stringify(f)}`);
    assert.ok(typeof f.message === 'string' && f.message.length > 0, `${what}: error without message`);
    await assertUsable(c, `after ${what}`);
  }
  assert.equal(c.closeInfo, null);
  c.close();
});

test('unknown type echoes ref in its bad_request', async () => {
  const c = await resident('r-unknown-ref');
  c.send({ type: 'dance', ref: 'step-1' });
  await expectError(c, 'bad_request', { ref: 'step-1' });
  c.close();
});

// The hub may check an ack against the database before deciding, so any
// reply could come late: silence is observed for ACK_SILENCE_MS.
const ACK_SILENCE_MS = 700;

/* Polls hub.deliveries until the ws/acked row of (id, user) shows up (acks are written in batches). */
async function ackRecorded(id, user, ms = 5000) {
  const until = Date.now() + ms;
  for (;;) {
    const rows = await database.sql(
      "select status from hub.deliveries where event_id = $1 and user_id = $2 and channel = 'ws'", [id, user]);
    if (rows.length) return rows[0].status;
    if (Date.now() > until) return null;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('an ack for an event the client received gets no reply and is recorded in hub.deliveries', async () => {
  const c = await resident('r-ack', ['101']);
  const id = await database.emit(tenant, 'visitor', ['unit:101'], { unitId: '101' }, { priority: 'high', ack: true });
  const e = await c.next({ type: 'event', where: (f) => f.id === id });
  assert.equal(e.ack, true);
  c.send({ type: 'ack', id });
  await assertUsable(c);
  await c.noMore(undefined, ACK_SILENCE_MS);
  assert.equal(await ackRecorded(Number(id), 'r-ack'), 'acked');
  c.close();
});

test('acks sent after reconnecting, for events received on the previous connection, get no reply and are recorded', async () => {
  const first = await resident('r-ack-again', ['101']);
  const ids = [];
  for (let k = 0; k < 4; k++) ids.push(await database.emit(tenant, 'visitor', ['unit:101'], { unitId: '101', k }, { priority: 'high', ack: true }));
  for (const id of ids) await first.next({ type: 'event', where: (f) => f.id === id });
  first.close();
  await first.closed;
  const again = await resident('r-ack-again', ['101']);
  for (const id of ids) again.send({ type: 'ack', id });
  await assertUsable(again);
  await again.noMore(undefined, ACK_SILENCE_MS);
  for (const id of ids) assert.equal(await ackRecorded(Number(id), 'r-ack-again'), 'acked', `ack of ${id}`);
  again.close();
});

test('an ack naming an unknown event → bad_request; another tenant\'s event → forbidden; neither is recorded', async () => {
  const other = await database.newTenant('rooms_other');
  const foreign = await database.emit(other, 'visitor', ['unit:101'], { unitId: '101' }, { priority: 'high', ack: true });
  const c = await resident('r-ack-unknown');
  c.send({ type: 'ack', id: 987654321098, ref: 'u' });
  await expectError(c, 'bad_request', { ref: 'u' });
  c.send({ type: 'ack', id: Number(foreign), ref: 'f' });
  await expectError(c, 'forbidden', { ref: 'f' });
  c.send({ type: 'ack', id: 'seven', ref: 's' });
  await expectError(c, 'bad_request', { ref: 's' });
  await assertUsable(c);
  const rows = await database.sql(
    "select 1 from hub.deliveries where user_id = 'r-ack-unknown' and event_id in ($1, $2)", [987654321098, foreign]);
  assert.equal(rows.length, 0, 'a refused ack was recorded');
  c.close();
});

test('HUB_MAX_FRAME_BYTES=4096: a 4000-byte frame is served; a 5000-byte frame → too_large, close 1009', async () => {
  const small = await startHub({ env: { HUB_MAX_FRAME_BYTES: 4096 } });
  const token = mintToken(small.secret, { sub: 'r-big', tenant, role: 'resident' });
  const c = await connect(small.wsUrl, { token, label: 'r-big' });
  await c.next({ type: 'welcome' });
  const fits = JSON.stringify({ type: 'ping', ref: 'p'.repeat(4000 - 30) });
  assert.ok(fits.length < 4096);
  c.sendRaw(fits, { binary: false });
  const pong = await c.next({ type: 'pong' });
  assert.equal(pong.ref.length, 4000 - 30);
  const big = JSON.stringify({ type: 'ping', ref: 'q'.repeat(5000) });
  c.sendRaw(big, { binary: false });
  await expectError(c, 'too_large');
  const closed = await c.closedWithin(5000);
  assert.equal(closed.code, 1009, `expected close 1009, got ${closed.code} '${closed.reason}'`);
  assert.ok(!c.seen.some((f) => f.type === 'pong' && f.ref?.startsWith('q')), 'the oversized ping was answered');
  await small.stop();
});

test('HUB_RATE_LIMIT=5, HUB_RATE_BURST=10: a flood of 40 frames → rate_limited, close 4029; a calm client is untouched', async () => {
  const strict = await startHub({ env: { HUB_RATE_LIMIT: 5, HUB_RATE_BURST: 10 } });
  const calm = await login(strict, { sub: 'r-calm', tenant, role: 'resident' });
  const flood = await login(strict, { sub: 'r-flood', tenant, role: 'resident' });
  for (let k = 0; k < 40; k++) flood.send({ type: 'ping', ref: k });
  await expectError(flood, 'rate_limited');
  const closed = await flood.closedWithin(5000);
  assert.equal(closed.code, 4029, `expected close 4029, got ${closed.code} '${closed.reason}'`);
  const pongs = flood.seen.filter((f) => f.type === 'pong').length;
  // The auth frame took one token of the burst of 10.
  assert.ok(pongs >= 8 && pongs <= 12, `the burst of 10 should be served, then the flood cut off: ${pongs} pongs`);
  for (let k = 0; k < 5; k++) await assertUsable(calm, `calm-${k}`);
  assert.equal(calm.closeInfo, null);
  await strict.stop();
});

test('SIGTERM: connected clients are closed with 1001 and the hub exits 0', async () => {
  const h = await startHub();
  const a = await login(h, { sub: 'r-bye', tenant, role: 'resident' });
  const b = await login(h, { sub: 'g-bye', tenant, role: 'guard' }, { format: 'msgpack' });
  const exit = await h.stop();
  for (const x of [a, b]) {
    const closed = await x.closedWithin(5000);
    assert.equal(closed.code, 1001, `${x.label}: expected 1001 on shutdown, got ${closed.code} '${closed.reason}'`);
  }
  assert.deepEqual(exit, { code: 0, signal: null }, `the hub exited ${JSON.stringify(exit)} on SIGTERM`);
});

test('msgpack subprotocol: welcome, subscribe, ping/ref, errors and events all as MessagePack binary frames', async () => {
  const c = await guard('g-msgpack', { format: 'msgpack' });
  assert.equal(c.protocol, SUBPROTOCOL.msgpack, `the server selected '${c.protocol}'`);
  assert.equal(c.welcome.user, 'g-msgpack');
  assert.deepEqual(c.welcome.rooms, ['all', 'user:g-msgpack', 'role:guard']);
  await subscribeOk(c, 'unit:302', 7);
  await subscribeRefused(c, 'role:admin', 'forbidden');
  await subscribeRefused(c, 'a b', 'bad_request');
  c.send({ type: 'ping', ref: 99 });
  assert.deepEqual(await c.next({ type: 'pong' }), { type: 'pong', ref: 99 });
  c.send({ type: 'ping', ref: 'texto' });
  assert.deepEqual(await c.next({ type: 'pong' }), { type: 'pong', ref: 'texto' });
  const f = await c.request({ type: 'unsubscribe', room: 'unit:302' }, ['unsubscribed', 'error']);
  assert.deepEqual(f, { type: 'unsubscribed', room: 'unit:302' });
  c.sendRaw(Buffer.from([0xc1, 0xff, 0x00]), { binary: true });
  await expectError(c, 'bad_request');
  c.sendRaw(encode([1, 2, 3]), { binary: true });
  await expectError(c, 'bad_request');
  c.send({ type: 'dance' });
  await expectError(c, 'bad_request');
  const id = await database.emit(tenant, 'marker', ['user:g-msgpack'], { n: 1, s: 'ñ' });
  const e = await c.next({ type: 'event', where: (x) => x.id === id });
  assert.deepEqual(e.data, { n: 1, s: 'ñ' });
  await assertUsable(c);
  c.close();
});

test('msgpack subprotocol: first-frame auth sent as MessagePack', async () => {
  const token = mintToken(hub.secret, { sub: 'g-mp-frame', tenant, role: 'guard' });
  const c = await connect(hub.wsUrl, { format: 'msgpack', token, label: 'g-mp-frame' });
  const w = await c.next({ type: 'welcome' });
  assert.equal(w.user, 'g-mp-frame');
  c.close();
});

test('no subprotocol offered → JSON text frames', async () => {
  const c = await resident('r-noproto', ['101'], { format: 'none' });
  assert.equal(c.protocol, '', `the server selected '${c.protocol}' although none was offered`);
  assert.equal(c.welcome.user, 'r-noproto');
  await assertUsable(c);
  c.close();
});

test('both subprotocols offered, msgpack first → the server picks one and speaks it', async () => {
  const token = mintToken(hub.secret, { sub: 'r-both', tenant, role: 'resident' });
  const c = await connect(hub.wsUrl, { subprotocol: [SUBPROTOCOL.msgpack, SUBPROTOCOL.json], token, header: true, label: 'r-both' });
  assert.ok([SUBPROTOCOL.msgpack, SUBPROTOCOL.json].includes(c.protocol), `selected '${c.protocol}'`);
  const w = await c.next({ type: 'welcome' });
  assert.equal(w.user, 'r-both');
  c.close();
});

test('a WebSocket upgrade on a path other than /ws is refused', async () => {
  const token = mintToken(hub.secret, { sub: 'r-path', tenant, role: 'resident' });
  for (const path of ['/', '/other', '/ws/x']) {
    let c;
    try {
      c = await connect(hub.wsUrl, { path, token, header: true, label: `path ${path}` });
    } catch (err) {
      assert.ok(err.statusCode === undefined || err.statusCode >= 400, `${path}: ${err.message}`);
      continue;
    }
    // Upgraded after all: it must not be served.
    const r = await Promise.race([c.next({ type: 'welcome', timeout: 2000 }).then((w) => w, () => null), c.closed.then(() => null)]);
    assert.equal(r, null, `upgrade on ${path} was accepted and got ${JSON.stringify(r)}`);
    c.terminate();
  }
});

test('HTTP: GET /nope → 404', async () => {
  const r = await httpGet(hub.port, '/nope');
  assert.equal(r.status, 404, `GET /nope answered ${r.status}: ${r.body}`);
});

test('HTTP: GET /healthz → 200 {"status":"ok"}', async () => {
  const r = await httpGet(hub.port, '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
  assert.match(r.headers['content-type'] ?? '', /application\/json/);
});

test('HTTP: GET /metrics → 200 Prometheus text', async () => {
  const r = await httpGet(hub.port, '/metrics');
  assert.equal(r.status, 200, `GET /metrics answered ${r.status}`);
  assert.match(r.headers['content-type'] ?? '', /^text\/plain/, `content-type ${r.headers['content-type']}`);
  const samples = r.body.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.ok(samples.length > 0, `no samples in /metrics:\n${r.body}`);
  for (const l of samples)
    assert.match(l, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.]+([eE][-+]?[0-9]+)?|NaN|[+-]Inf)( -?[0-9]+)?$/, `not a Prometheus sample line: ${JSON.stringify(l)}`);
  for (const l of r.body.split('\n').filter((x) => x.startsWith('# ')))
    assert.match(l, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/, `bad comment line: ${JSON.stringify(l)}`);
});
