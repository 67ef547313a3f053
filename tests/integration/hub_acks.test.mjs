// hub_acks.test.mjs - who may ack (docs/protocol.md "Who may ack"): an ack
// counts only from a connection the event was for (same tenant, and one of
// the event's rooms is one the connection is in or could be in by its
// automatic rooms and its role's rules); anything else gets `forbidden` and
// records nothing. Only a guard's or admin's ack claims a panic; a
// resident's ack of a panic it legitimately got counts as reached, and the
// staff are still escalated to.
//
// Own cluster and provider stand-ins (lib/fallback.mjs); the shipped panic
// policy (fallback {push,sms}, fallback_all) with a short ack timeout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { login, expectError, assertUsable } from './lib/harness.mjs';
import { useFallbackFile, uid, newPhone, sleep, waitFor } from './lib/fallback.mjs';

const ACK_TIMEOUT_MS = 1500;
const SETTLE_MS = 800;

let hub;

const fx = useFallbackFile('acks', async () => {
  await fx.setPolicy('panic', { ackTimeoutMs: ACK_TIMEOUT_MS });
  hub = await fx.startHub();
});

/** A tenant with guards, admins and residents, each with a device token and a phone. */
async function complex({ guards = 2, admins = 0, residents = 1 } = {}) {
  const tenant = await fx.newTenant('acks');
  const people = { tenant, guards: [], admins: [], residents: [] };
  const add = async (list, role, i) => list.push(await fx.addUser(tenant, {
    id: `${role.toLowerCase()}-${i}-${uid(3)}`, name: `${role} ${i}`, role,
    unitId: role === 'RESIDENT' ? `10${i}` : null,
    deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone(),
  }));
  for (let i = 1; i <= guards; i++) await add(people.guards, 'GUARD', i);
  for (let i = 1; i <= admins; i++) await add(people.admins, 'ADMIN', i);
  for (let i = 1; i <= residents; i++) await add(people.residents, 'RESIDENT', i);
  return people;
}

const claimsOf = (tenant, u) => (u.role === 'RESIDENT'
  ? { sub: u.id, tenant, role: 'resident', units: [u.unitId] }
  : { sub: u.id, tenant, role: u.role.toLowerCase() });

/** A resident presses the panic button (to role:guard and role:admin); resolves with the event. */
async function panic(tenant, resident) {
  await fx.db.insertPanic(tenant, { userId: resident.id, unitId: resident.unitId, message: 'Ayuda' });
  const ev = await fx.lastEvent(tenant, 'panic');
  assert.ok(ev && ev.data.userId === resident.id, `no panic event: ${JSON.stringify(ev)}`);
  return ev;
}

async function claimsRows(eventId) {
  return fx.db.sql('select event_id, user_id from hub.claims where event_id = $1', [eventId]);
}

async function claimedEvents(tenant) {
  return fx.db.sql("select id, data from hub.outbox where tenant = $1 and kind = 'panic_claimed'", [tenant]);
}

/** What the stand-ins got for u: accepted pushes and SMS. */
function got(u) {
  return {
    push: fx.pushesTo(u.deviceToken).filter((m) => m.status === 200).length,
    sms: fx.smsTo(u.phoneNumber).filter((m) => m.status === 201).length,
  };
}

/** Acks id on c and expects no error for it: the ws row of c's user turns 'acked'. */
async function ackAccepted(c, id, user) {
  const ref = `ack-${uid(4)}`;
  c.send({ type: 'ack', id, ref });
  await fx.waitDelivery(id, user, 'ws', { statuses: ['acked'] });
  await assertUsable(c);
  assert.ok(!c.seen.some((f) => f.type === 'error' && f.ref === ref), `${c.label}: ack of ${id} was refused: ${JSON.stringify(c.seen.filter((f) => f.type === 'error'))}`);
}

test('a resident acking a panic it was never sent gets forbidden; no delivery, no claim, no panic_claimed, and the guards are still escalated to', async () => {
  const p = await complex({ guards: 2, residents: 1 });
  const [r] = p.residents;
  const cr = await login(hub, claimsOf(p.tenant, r));
  const ev = await panic(p.tenant, r);

  // Ids are sequential: the resident guesses the panic's id.
  cr.send({ type: 'ack', id: ev.id, ref: 'guessed' });
  const err = await expectError(cr, 'forbidden', { ref: 'guessed' });
  assert.match(err.message, /not for this connection/);
  await assertUsable(cr);

  // Nobody acked: after the ack timeout every guard gets push and SMS.
  for (const g of p.guards) {
    for (const ch of ['push', 'sms']) {
      const row = await fx.waitDelivery(ev.id, g.id, ch, { timeout: ACK_TIMEOUT_MS + 15_000 });
      assert.equal(row.status, 'sent', `${g.id} ${ch}: ${JSON.stringify(row)}`);
    }
  }
  await sleep(SETTLE_MS);
  for (const g of p.guards) assert.deepEqual(got(g), { push: 1, sms: 1 }, `guard ${g.id}`);
  assert.deepEqual(await fx.deliveries(ev.id, { user: r.id }), [], 'the refused ack was recorded');
  assert.deepEqual(await claimsRows(ev.id), [], 'the resident claimed the panic');
  assert.deepEqual(await claimedEvents(p.tenant), [], 'a panic_claimed was emitted');
  cr.close();
});

test('a resident that got a panic (emitted to all) and acks it is reached but claims nothing; the staff are still escalated to', async () => {
  const p = await complex({ guards: 1, admins: 1, residents: 1 });
  const [r] = p.residents;
  const [g] = p.guards;
  const cg = await login(hub, claimsOf(p.tenant, g));
  const cr = await login(hub, claimsOf(p.tenant, r));
  const id = await fx.db.emit(p.tenant, 'panic', ['all'], {
    alertId: `a-${uid(4)}`, userId: r.id, userName: r.name, unitId: r.unitId, message: 'Incendio',
  }, { priority: 'critical', ack: true });
  const e = await cr.next({ type: 'event', where: (f) => f.id === id });
  assert.equal(e.room, 'all');
  await cg.next({ type: 'event', where: (f) => f.id === id });

  await ackAccepted(cr, id, r.id);
  for (const u of [g, p.admins[0]]) {
    for (const ch of ['push', 'sms']) {
      const row = await fx.waitDelivery(id, u.id, ch, { timeout: ACK_TIMEOUT_MS + 15_000 });
      assert.equal(row.status, 'sent', `${u.id} ${ch} after a resident's ack: ${JSON.stringify(row)}`);
    }
  }
  assert.deepEqual(await claimsRows(id), [], 'a resident\'s ack claimed the panic');
  assert.deepEqual(await claimedEvents(p.tenant), [], 'a resident\'s ack emitted panic_claimed');
  await cg.noMore('event', 300, (f) => f.kind === 'panic_claimed');
  cg.close();
  cr.close();
});

test('a guard acking a panic by id (not sent on this connection) claims it: panic_claimed names the guard, nobody is escalated to', async () => {
  const p = await complex({ guards: 2, residents: 1 });
  const [g1, g2] = p.guards;
  const ev = await panic(p.tenant, p.residents[0]);
  // g1 connects after the panic: the ack is checked against the event's rooms.
  const c1 = await login(hub, claimsOf(p.tenant, g1));
  c1.send({ type: 'ack', id: ev.id, ref: 'claim' });
  const f = await c1.next({ type: 'event', where: (x) => x.kind === 'panic_claimed' });
  assert.equal(Number(f.data.eventId), ev.id);
  assert.equal(f.data.guardId, g1.id);
  assert.ok(!c1.seen.some((x) => x.type === 'error'), JSON.stringify(c1.seen));
  assert.deepEqual((await claimsRows(ev.id)).map((x) => x.user_id), [g1.id]);
  await fx.waitJobsDone(ev.id, { timeout: ACK_TIMEOUT_MS + 15_000 });
  await waitFor(async () => (await fx.deliveries(ev.id)).every((x) => x.status !== 'pending'), { what: 'deliveries settled' });
  await sleep(SETTLE_MS);
  assert.deepEqual(got(g2), { push: 0, sms: 0 }, 'the claimed panic still escalated');
  c1.close();
});

test('a resident may ack events to its own user and unit rooms (also not sent on this connection, also after leaving the unit room); other rooms are forbidden', async () => {
  const p = await complex({ guards: 0, residents: 1 });
  const [r] = p.residents;
  const mine = await fx.db.emit(p.tenant, 'payment', [`user:${r.id}`], { status: 'COMPLETED' }, { ack: true });
  const unit = await fx.db.emit(p.tenant, 'visitor', [`unit:${r.unitId}`], { name: 'Pedro' }, { ack: true });
  const other = await fx.db.emit(p.tenant, 'visitor', ['unit:999'], { name: 'Pedro' }, { ack: true });
  const someone = await fx.db.emit(p.tenant, 'payment', ['user:someone-else'], { status: 'COMPLETED' }, { ack: true });
  const staff = await fx.db.emit(p.tenant, 'notice', ['role:guard', 'custom:x'], {}, { ack: true });
  const cr = await login(hub, claimsOf(p.tenant, r));
  await ackAccepted(cr, mine, r.id);
  cr.send({ type: 'unsubscribe', room: `unit:${r.unitId}` });
  await cr.next({ type: 'unsubscribed' });
  await ackAccepted(cr, unit, r.id);
  for (const id of [other, someone, staff]) {
    cr.send({ type: 'ack', id, ref: `no-${id}` });
    await expectError(cr, 'forbidden', { ref: `no-${id}` });
  }
  await sleep(300); // more than one flush of pending acks
  for (const id of [other, someone, staff])
    assert.deepEqual(await fx.deliveries(id), [], `a refused ack of ${id} was recorded`);
  cr.close();
});

test('a guard may ack any unit room\'s event and its role\'s; an admin any room of its tenant; nobody another tenant\'s event', async () => {
  const p = await complex({ guards: 1, admins: 1, residents: 0 });
  const [g] = p.guards;
  const [a] = p.admins;
  const visitor = await fx.db.emit(p.tenant, 'visitor', ['unit:777'], { name: 'Ana' }, { ack: true });
  const custom = await fx.db.emit(p.tenant, 'notice', ['custom:x'], {}, { ack: true });
  const cg = await login(hub, claimsOf(p.tenant, g));
  const ca = await login(hub, claimsOf(p.tenant, a));
  await ackAccepted(cg, visitor, g.id);
  cg.send({ type: 'ack', id: custom, ref: 'custom' });
  await expectError(cg, 'forbidden', { ref: 'custom' });
  await ackAccepted(ca, custom, a.id);

  const t2 = await fx.newTenant('acks-other');
  const foreign = await fx.db.emit(t2, 'notice', ['all'], {}, { ack: true });
  for (const c of [cg, ca]) {
    c.send({ type: 'ack', id: foreign, ref: 'foreign' });
    const err = await expectError(c, 'forbidden', { ref: 'foreign' });
    assert.match(err.message, /another tenant/);
  }
  await sleep(300);
  assert.deepEqual(await fx.deliveries(foreign), []);
  assert.deepEqual((await fx.deliveries(custom)).map((x) => x.user_id), [a.id]);
  cg.close();
  ca.close();
});
