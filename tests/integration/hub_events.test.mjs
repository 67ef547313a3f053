// hub_events.test.mjs - events from the database to the right screens and
// nowhere else (docs/protocol.md "Rooms", "Events"; the triggers in README "How an event travels").
//
// Tenant A: guard gA, admin aA, residents rA1 (unit 101) and rA2 (unit 202).
// Tenant B: guard gB. "Got nothing" inside tenant A is checked with a
// barrier (a later event every client must get; seq order means anything
// earlier has arrived by then); across tenants, where seq order says
// nothing, with a short silence window.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  useLifecycle, startHub, db, login, connect, mintToken, barrier, pendingEvents, expectError,
} from './lib/harness.mjs';

useLifecycle();

const SILENCE_MS = 600;
let hub, database, A, B;
const u = {}; // user ids by name
const c = {}; // connections by name

before(async () => {
  database = await db();
  A = await database.newTenant('evA');
  B = await database.newTenant('evB');
  u.gA = await database.insertUser(A, { name: 'Guarda A', role: 'GUARD' });
  u.aA = await database.insertUser(A, { name: 'Admin A', role: 'ADMIN' });
  u.rA1 = await database.insertUser(A, { name: 'Residente 101', role: 'RESIDENT', unitId: '101' });
  u.rA2 = await database.insertUser(A, { name: 'Residente 202', role: 'RESIDENT', unitId: '202' });
  u.gB = await database.insertUser(B, { name: 'Guarda B', role: 'GUARD' });
  u.rB1 = await database.insertUser(B, { name: 'Residente B 101', role: 'RESIDENT', unitId: '101' });
  hub = await startHub();
  const as = (name, tenant, role, units) => login(hub, { sub: u[name], tenant, role, units }, { label: name });
  c.gA = await as('gA', A, 'guard');
  c.aA = await as('aA', A, 'admin');
  c.rA1 = await as('rA1', A, 'resident', ['101']);
  c.rA2 = await as('rA2', A, 'resident', ['202']);
  c.gB = await as('gB', B, 'guard');
  c.rB1 = await as('rB1', B, 'resident', ['101']);
});

const inA = () => [c.gA, c.aA, c.rA1, c.rA2];

/** Exactly the fields of an event frame, each of the right type. */
function assertEventShape(e, { kind, priority, ack, room }) {
  assert.deepEqual(Object.keys(e).sort(), ['ack', 'data', 'id', 'kind', 'priority', 'room', 'seq', 'ts', 'type'], `event fields: ${JSON.stringify(e)}`);
  assert.equal(e.type, 'event');
  assert.equal(e.kind, kind, `kind: ${JSON.stringify(e)}`);
  assert.equal(e.priority, priority, `priority: ${JSON.stringify(e)}`);
  assert.equal(e.ack, ack, `ack: ${JSON.stringify(e)}`);
  if (room !== undefined) assert.equal(e.room, room, `room: ${JSON.stringify(e)}`);
  assert.ok(Number.isSafeInteger(e.id) && e.id > 0, `id: ${JSON.stringify(e)}`);
  assert.ok(Number.isSafeInteger(e.seq) && e.seq > 0, `seq: ${JSON.stringify(e)}`);
  assert.ok(Number.isSafeInteger(e.ts) && Math.abs(e.ts - Date.now()) < 60_000, `ts must be ms since the epoch, near now (${Date.now()}): ${JSON.stringify(e)}`);
  assert.ok(e.data && typeof e.data === 'object' && !Array.isArray(e.data), `data must be a map: ${JSON.stringify(e)}`);
}

/** After a barrier in A: none of `clients` holds an event of `kind`. */
async function assertNoneInA(kind, clients) {
  await barrier(database, A, inA());
  for (const x of clients) assert.deepEqual(pendingEvents(x, kind), [], `${x.label} got a ${kind} event it must not get`);
}

/** Tenant B hears nothing of kind within the silence window. */
async function assertNoneInB(kind) {
  await Promise.all([c.gB, c.rB1].map((x) => x.noMore('event', SILENCE_MS, (f) => f.kind === kind)));
}

const ofKind = (kind) => (f) => f.kind === kind;

test('panic alert (insert into "PanicAlert") → guards and admins of A, critical, ack; not residents, not tenant B', async () => {
  await database.insertPanic(A, { userId: u.rA1, unitId: '101', message: 'Ayuda en la torre 1' });
  const g = await c.gA.next({ type: 'event', where: ofKind('panic') });
  const a = await c.aA.next({ type: 'event', where: ofKind('panic') });
  assertEventShape(g, { kind: 'panic', priority: 'critical', ack: true, room: 'role:guard' });
  assertEventShape(a, { kind: 'panic', priority: 'critical', ack: true, room: 'role:admin' });
  assert.equal(g.data.unitId, '101', `panic data should name the unit: ${JSON.stringify(g.data)}`);
  assert.equal(a.id, g.id, 'guard and admin got different event ids for one alert');
  assert.equal(a.seq, g.seq);
  assert.deepEqual(a.data, g.data);
  c.gA.send({ type: 'ack', id: g.id });
  c.aA.send({ type: 'ack', id: a.id });
  await assertNoneInA('panic', [c.rA1, c.rA2, c.gA, c.aA]);
  await assertNoneInB('panic');
});

test('visitor for unit 101 → rA1 and a guard subscribed to unit:101; not rA2, not the other guards, not tenant B', async () => {
  const g2 = await login(hub, { sub: 'gA2', tenant: A, role: 'guard' }, { label: 'gA2' });
  const sub = await g2.request({ type: 'subscribe', room: 'unit:101' }, ['subscribed', 'error']);
  assert.deepEqual(sub, { type: 'subscribed', room: 'unit:101' });
  await database.insertVisitor(A, { unitId: '101', name: 'Pedro Pérez' });
  const r = await c.rA1.next({ type: 'event', where: ofKind('visitor') });
  assertEventShape(r, { kind: 'visitor', priority: 'high', ack: true, room: 'unit:101' });
  const g = await g2.next({ type: 'event', where: ofKind('visitor') });
  assertEventShape(g, { kind: 'visitor', priority: 'high', ack: true, room: 'unit:101' });
  assert.equal(g.id, r.id);
  c.rA1.send({ type: 'ack', id: r.id });
  await assertNoneInA('visitor', [c.rA2, c.gA, c.aA, c.rA1]);
  // Tenant B has a unit 101 too: its resident must not hear A's visitor.
  await assertNoneInB('visitor');
  g2.close();
});

test('payment status change → only the paying user, once, normal, no ack', async () => {
  const pay = await database.insertPayment(A, { userId: u.rA1, amount: 250000, status: 'PENDING' });
  await database.setPaymentStatus(A, pay, 'COMPLETED');
  const e = await c.rA1.next({ type: 'event', where: ofKind('payment') });
  assertEventShape(e, { kind: 'payment', priority: 'normal', ack: false, room: `user:${u.rA1}` });
  await assertNoneInA('payment', [c.rA1, c.rA2, c.gA, c.aA]);
  await assertNoneInB('payment');
});

test('emergency announcement → everyone of A through "all", critical; none of B; a general one emits nothing', async () => {
  await database.insertAnnouncement(A, { title: 'Corte de agua', body: 'Mañana de 8 a 12', type: 'general' });
  await database.insertAnnouncement(A, { title: 'Evacuación', body: 'Salgan por la escalera norte', type: 'emergency' });
  const got = await Promise.all(inA().map((x) => x.next({ type: 'event', where: ofKind('announcement') })));
  for (const e of got) assertEventShape(e, { kind: 'announcement', priority: 'critical', room: 'all', ack: e.ack });
  assert.equal(new Set(got.map((e) => e.id)).size, 1, `different ids: ${JSON.stringify(got)}`);
  await assertNoneInA('announcement', inA());
  await assertNoneInB('announcement');
});

test('the same event on a JSON and a MessagePack connection decodes to equal maps', async () => {
  const mp = await login(hub, { sub: u.gA, tenant: A, role: 'guard' }, { format: 'msgpack', label: 'gA/msgpack' });
  const data = { text: 'Pánico en la portería ¿quién atiende?', n: 42, neg: -7, big: 9007199254740991, f: 1.5, t: true, nil: null, list: [1, 'dos', { tres: 3 }], nested: { a: { b: [] } }, empty: {} };
  const id = await database.emit(A, 'custom_kind', ['role:guard'], data, { priority: 'high', ack: true });
  const ej = await c.gA.next({ type: 'event', where: (f) => f.id === id });
  const em = await mp.next({ type: 'event', where: (f) => f.id === id });
  assert.deepEqual(em, ej);
  assertEventShape(ej, { kind: 'custom_kind', priority: 'high', ack: true, room: 'role:guard' });
  assert.deepEqual(ej.data, data);
  mp.close();
});

test("an event to ['all','role:guard'] reaches a guard once, and residents through 'all'", async () => {
  const id = await database.emit(A, 'notice', ['all', 'role:guard'], { x: 1 });
  const g = await c.gA.next({ type: 'event', where: (f) => f.id === id });
  assert.ok(['all', 'role:guard'].includes(g.room), `room ${g.room}`);
  const r = await c.rA2.next({ type: 'event', where: (f) => f.id === id });
  assert.equal(r.room, 'all');
  await barrier(database, A, inA());
  assert.deepEqual(c.gA.inbox.filter((f) => f.id === id), [], 'the guard got the event twice');
  assert.deepEqual(c.rA2.inbox.filter((f) => f.id === id), [], 'the resident got the event twice');
});

test('a rolled-back emit delivers nothing; a later event still arrives', async () => {
  const tx = await database.client();
  let doomed;
  try {
    await tx.query('begin');
    doomed = await database.emit(A, 'doomed', ['all'], {}, { on: tx });
    await tx.query('rollback');
  } finally {
    tx.release();
  }
  const kept = await database.emit(A, 'kept', ['all'], {});
  const e = await c.gA.next({ type: 'event', where: (f) => f.kind === 'kept' || f.kind === 'doomed' });
  assert.equal(e.id, kept, `expected the committed event ${kept} first, got ${JSON.stringify(e)}`);
  await barrier(database, A, inA());
  for (const x of inA()) assert.ok(!x.seen.some((f) => f.type === 'event' && (f.id === doomed || f.kind === 'doomed')), `${x.label} got the rolled-back event`);
});

test('concurrent producers: the first to emit commits last → both arrive, each once, in increasing seq, the early commit not held back', async () => {
  const t1 = await database.client();
  const t2 = await database.client();
  try {
    await t1.query('begin');
    const slow = await database.emit(A, 'race', ['role:guard'], { who: 'slow' }, { on: t1 });
    await t2.query('begin');
    const fast = await database.emit(A, 'race', ['role:guard'], { who: 'fast' }, { on: t2 });
    assert.ok(slow < fast, `hub.emit ids: slow ${slow}, fast ${fast}`);
    await t2.query('commit');
    // The fast one committed: it must arrive while the slow one is still open.
    const ef = await c.gA.next({ type: 'event', where: (f) => f.kind === 'race' });
    assert.equal(ef.id, fast, `expected the committed event ${fast} first, got ${JSON.stringify(ef)}`);
    await t1.query('commit');
    const es = await c.gA.next({ type: 'event', where: (f) => f.kind === 'race' });
    assert.equal(es.id, slow, `expected the slow event ${slow}, got ${JSON.stringify(es)}`);
    assert.ok(es.seq > ef.seq, `seq must follow commit order: fast ${ef.seq}, slow ${es.seq}`);
    await barrier(database, A, inA());
    assert.deepEqual(pendingEvents(c.gA, 'race'), [], 'a race event arrived twice');
  } finally {
    await t1.query('rollback').catch(() => {});
    await t2.query('rollback').catch(() => {});
    t1.release();
    t2.release();
  }
});

test('200 events emitted in one transaction arrive complete, once each, in seq order', async () => {
  const N = 200;
  const tx = await database.client();
  try {
    await tx.query('begin');
    await tx.query(`select hub.emit($1, 'bulk', array['role:guard'], jsonb_build_object('i', i)) from generate_series(1, ${N}) as i`, [A]);
    await tx.query('commit');
  } finally {
    tx.release();
  }
  const got = [];
  for (let k = 0; k < N; k++) got.push(await c.gA.next({ type: 'event', where: ofKind('bulk'), timeout: 10_000 }));
  for (let k = 1; k < N; k++) assert.ok(got[k].seq > got[k - 1].seq, `event ${k} has seq ${got[k].seq} after ${got[k - 1].seq}`);
  assert.deepEqual(got.map((e) => e.data.i).sort((x, y) => x - y), Array.from({ length: N }, (_, k) => k + 1));
  assert.equal(new Set(got.map((e) => e.id)).size, N);
  await barrier(database, A, [c.gA]);
  assert.deepEqual(pendingEvents(c.gA, 'bulk'), [], 'more than 200 bulk events arrived');
});

test("tenant B's events (even to a room name A also has) never reach A", async () => {
  const id = await database.emit(B, 'visitor', ['unit:101', 'all', 'role:guard'], { unitId: '101' });
  const g = await c.gB.next({ type: 'event', where: (f) => f.id === id });
  assert.ok(['all', 'role:guard', 'unit:101'].includes(g.room));
  await c.rB1.next({ type: 'event', where: (f) => f.id === id });
  await Promise.all(inA().map((x) => x.noMore('event', SILENCE_MS, (f) => f.id === id)));
  for (const x of inA()) assert.ok(!x.seen.some((f) => f.type === 'event' && f.id === id), `${x.label} got tenant B's event`);
});

/**
 * Emits, in tenant A, one event to each of rooms (in order) and resolves
 * with their {id, seq}, learned through admin watcher w (subscribed to all
 * of them), so replay can be checked against known seqs.
 */
async function emitWatched(w, rooms) {
  const out = [];
  for (const room of rooms) {
    const id = await database.emit(A, 'resume_test', [room], { room });
    const e = await w.next({ type: 'event', where: (f) => f.id === id });
    out.push({ id, seq: e.seq, room });
  }
  return out;
}

async function resumeWatcher(label, rooms) {
  const w = await login(hub, { sub: `watch-${label}`, tenant: A, role: 'admin' }, { label: `watch-${label}` });
  for (const room of rooms) {
    const r = await w.request({ type: 'subscribe', room }, ['subscribed', 'error']);
    assert.equal(r.type, 'subscribed', JSON.stringify(r));
  }
  return w;
}

/** Takes n events from c and checks they are exactly `want` (ids), in that order. */
async function expectReplay(c, want) {
  const got = [];
  for (let k = 0; k < want.length; k++) got.push(await c.next({ type: 'event', where: (f) => f.kind === 'resume_test' || f.kind === 'marker' }));
  assert.deepEqual(got.map((e) => e.id), want.map((x) => x.id), `replayed ${JSON.stringify(got.map((e) => [e.id, e.seq, e.room]))}, expected ${JSON.stringify(want.map((x) => [x.id, x.seq, x.room]))}`);
  for (let k = 0; k < want.length; k++) assert.equal(got[k].seq, want[k].seq);
  return got;
}

test('resume with "since" in the auth frame: the events after S of its rooms, in seq order, then live, no duplicate', async () => {
  const w = await resumeWatcher('r1', ['unit:303', 'unit:404', 'user:res-resume']);
  const claims = { sub: 'res-resume', tenant: A, role: 'resident', units: ['303'] };
  const before = await login(hub, claims, { label: 'res-resume (first)' });
  const S = before.welcome.last_seq;
  before.close();
  await before.closed;
  const ev = await emitWatched(w, ['unit:303', 'all', 'unit:404', 'user:res-resume']);
  const c = await login(hub, claims, { since: S, label: 'res-resume (since)' });
  await expectReplay(c, [ev[0], ev[1], ev[3]]);
  const live = await database.emit(A, 'resume_test', ['unit:303'], { live: true });
  const e = await c.next({ type: 'event', where: (f) => f.kind === 'resume_test' });
  assert.equal(e.id, live, `after the replay expected the live event ${live}, got ${JSON.stringify(e)}`);
  await barrier(database, A, [c]);
  assert.deepEqual(pendingEvents(c), [], 'more events than replay + live arrived');
  c.close();
  w.close();
});

test('resume with ?since= and header auth replays from that seq on', async () => {
  const w = await resumeWatcher('r2', ['unit:505']);
  const claims = { sub: 'res-resume-h', tenant: A, role: 'resident', units: ['505'] };
  const ev = await emitWatched(w, ['unit:505', 'unit:505', 'unit:505']);
  const c = await login(hub, claims, { header: true, since: ev[0].seq, label: 'res-resume-h' });
  await expectReplay(c, [ev[1], ev[2]]);
  await barrier(database, A, [c]);
  assert.deepEqual(pendingEvents(c), [], 'more events than the replay arrived');
  c.close();
  w.close();
});

test('no "since": live events only, nothing from before', async () => {
  const w = await resumeWatcher('r3', ['unit:606']);
  await emitWatched(w, ['unit:606']);
  const c = await login(hub, { sub: 'res-live', tenant: A, role: 'resident', units: ['606'] }, { label: 'res-live' });
  await barrier(database, A, [c]);
  assert.deepEqual(pendingEvents(c), [], 'events from before the connection arrived without since');
  c.close();
  w.close();
});

for (const [how, since] of [['-1', -1], ['1.5', 1.5], ['"abc"', 'abc']]) {
  test(`since = ${how} in the auth frame → bad_request, no replay`, async () => {
    const w = await resumeWatcher(`bad${how.length}`, ['unit:707']);
    await emitWatched(w, ['unit:707']);
    const c = await connect(hub.wsUrl, { token: mintToken(hub.secret, { sub: 'res-badsince', tenant: A, role: 'resident', units: ['707'] }), since, label: `since ${how}` });
    await expectError(c, 'bad_request');
    await barrier(database, A, [c]).catch((err) => {
      throw new Error(`after a bad since the connection is not served: ${err.message}`);
    });
    assert.deepEqual(pendingEvents(c), [], `events were replayed after a bad since: ${JSON.stringify(pendingEvents(c))}`);
    c.close();
    w.close();
  });
}

test('?since=abc with header auth → bad_request, no replay', async () => {
  const token = mintToken(hub.secret, { sub: 'res-badsince-h', tenant: A, role: 'resident', units: ['707'] });
  const c = await connect(hub.wsUrl, { token, header: true, since: 'abc', label: 'since=abc (header)' });
  await expectError(c, 'bad_request');
  await barrier(database, A, [c]);
  assert.deepEqual(pendingEvents(c), [], 'events were replayed after a bad since');
  c.close();
});

test('every connection received its events in strictly increasing seq, never the same event twice', () => {
  for (const x of Object.values(c)) {
    const evs = x.seen.filter((f) => f.type === 'event');
    assert.ok(evs.length > 0, `${x.label} received no events at all`);
    for (let k = 1; k < evs.length; k++)
      assert.ok(evs[k].seq > evs[k - 1].seq, `${x.label}: seq ${evs[k].seq} (id ${evs[k].id}) came after seq ${evs[k - 1].seq} (id ${evs[k - 1].id})`);
    assert.equal(new Set(evs.map((e) => e.id)).size, evs.length, `${x.label} got an event twice`);
  }
});
