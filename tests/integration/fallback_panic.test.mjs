// fallback_panic.test.mjs - a panic nobody acks escalates by push AND SMS
// to every guard and admin not reached; the first ack claims it and the
// hub tells the other consoles who claimed it ('panic_claimed').
//
// Own cluster (lib/fallback.mjs); the shipped panic policy (fallback
// {push,sms}, fallback_all) with its ack timeout shortened to 1.5 s.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { login } from './lib/harness.mjs';
import {
  useFallbackFile, uid, newPhone, sleep, ms, waitFor,
} from './lib/fallback.mjs';

const ACK_TIMEOUT_MS = 1500;
const SETTLE_MS = 800;
const CLOCK_SLACK_MS = 30;

let hub;

const fx = useFallbackFile('fbpanic', async () => {
  await fx.setPolicy('panic', { ackTimeoutMs: ACK_TIMEOUT_MS });
  const p = await fx.policy('panic');
  assert.deepEqual(p.fallback, ['push', 'sms'], `shipped panic policy: ${JSON.stringify(p)}`);
  assert.equal(p.fallback_all, true, `shipped panic policy: ${JSON.stringify(p)}`);
  hub = await fx.startHub();
});

/** A tenant with guards, admins and residents, each with a device token and a phone. */
async function complex({ guards = 2, admins = 1, residents = 2 } = {}) {
  const tenant = await fx.newTenant('panic');
  const people = { tenant, guards: [], admins: [], residents: [] };
  const add = async (list, role, i, name) => list.push(await fx.addUser(tenant, {
    id: `${role.toLowerCase()}-${i}-${uid(3)}`, name, role, unitId: role === 'RESIDENT' ? `10${i}` : null,
    deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone(),
  }));
  for (let i = 1; i <= guards; i++) await add(people.guards, 'GUARD', i, `Guarda ${['Juan Ríos', 'Óscar Peña', 'Inés Mejía', 'Raúl Díaz'][i - 1] ?? i}`);
  for (let i = 1; i <= admins; i++) await add(people.admins, 'ADMIN', i, `Administradora ${i}`);
  for (let i = 1; i <= residents; i++) await add(people.residents, 'RESIDENT', i, `Residente ${i}`);
  return people;
}

/** A resident presses the panic button; resolves with the panic event. */
async function panic(tenant, resident, message = 'Hay un intruso en el parqueadero') {
  await fx.db.insertPanic(tenant, { userId: resident.id, unitId: resident.unitId, message });
  const ev = await fx.lastEvent(tenant, 'panic');
  assert.ok(ev && ev.data.userId === resident.id, `no panic event: ${JSON.stringify(ev)}`);
  return ev;
}

function staffClaims(tenant, u) {
  return { sub: u.id, tenant, role: u.role.toLowerCase() };
}

/** What the stand-ins got for u: accepted pushes and SMS. */
function got(u) {
  return {
    push: fx.pushesTo(u.deviceToken).filter((m) => m.status === 200).length,
    sms: fx.smsTo(u.phoneNumber).filter((m) => m.status === 201).length,
  };
}

test('unacked panic → after the timeout every guard and admin gets push AND SMS; residents get nothing', async () => {
  const p = await complex({ guards: 2, admins: 1, residents: 2 });
  // One guard has the console open but does not claim: received is not reached.
  const console1 = await login(hub, staffClaims(p.tenant, p.guards[0]));
  const ev = await panic(p.tenant, p.residents[0]);
  await console1.next({ type: 'event', where: (f) => f.id === ev.id });

  const staff = [...p.guards, ...p.admins];
  for (const u of staff) {
    for (const ch of ['push', 'sms']) {
      const row = await fx.waitDelivery(ev.id, u.id, ch);
      assert.equal(row.status, 'sent', `${u.id} ${ch}: ${JSON.stringify(row)}`);
      assert.equal(row.origin, 'fallback');
    }
  }
  await sleep(SETTLE_MS);
  for (const u of staff) assert.deepEqual(got(u), { push: 1, sms: 1 }, `${u.role} ${u.id}`);
  for (const u of p.residents) {
    assert.deepEqual(got(u), { push: 0, sms: 0 }, `resident ${u.id} was sent the panic`);
  }
  const rows = await fx.deliveries(ev.id);
  const residentRows = rows.filter((r) => p.residents.some((u) => u.id === r.user_id));
  assert.deepEqual(residentRows, [], 'residents have delivery rows for a panic');
  assert.equal(rows.filter((r) => r.channel !== 'ws').length, 2 * staff.length, JSON.stringify(rows));

  // Not before the timeout, and the texts say what happened and where.
  const g = p.guards[1];
  const [push] = fx.pushesTo(g.deviceToken);
  const [sms] = fx.smsTo(g.phoneNumber);
  for (const m of [push, sms]) {
    assert.ok(ms(m.time) >= ev.created_ms + ACK_TIMEOUT_MS - CLOCK_SLACK_MS, `sent ${Math.round(ms(m.time) - ev.created_ms)} ms after the panic, before the ack timeout`);
  }
  assert.equal(push.notification.title, `Alerta de pánico - Unidad ${p.residents[0].unitId}`);
  assert.match(push.notification.body, /Residente 1/);
  assert.match(push.notification.body, /intruso en el parqueadero/);
  assert.equal(push.androidPriority, 'HIGH');
  assert.equal(push.apnsPriority, '10');
  assert.match(sms.body, /^ALERTA DE PANICO - Unidad 101/);
  assert.equal(sms.encoding, 'GSM-7');
  console1.close();
});

test('one guard acks → the other guard consoles get panic_claimed naming the guard; the acking guard gets no push/SMS; only the first ack claims', async () => {
  const p = await complex({ guards: 4, admins: 0, residents: 1 });
  const [g1, g2, g3, g4] = p.guards; // g4 stays offline
  const c1 = await login(hub, staffClaims(p.tenant, g1));
  const c2 = await login(hub, staffClaims(p.tenant, g2));
  const c3 = await login(hub, staffClaims(p.tenant, g3));
  const ev = await panic(p.tenant, p.residents[0]);
  for (const c of [c1, c2, c3]) await c.next({ type: 'event', where: (f) => f.id === ev.id });

  c1.send({ type: 'ack', id: ev.id });
  const claims = [];
  for (const c of [c2, c3, c1]) {
    const f = await c.next({ type: 'event', where: (x) => x.kind === 'panic_claimed' });
    claims.push(f);
  }
  const claimed = claims[0];
  assert.ok(['role:guard', 'role:admin'].includes(claimed.room), claimed.room);
  assert.equal(Number(claimed.data.eventId), ev.id);
  assert.equal(claimed.data.guardId, g1.id);
  assert.equal(claimed.data.guardName, g1.name);
  assert.equal(claimed.data.alertId, ev.data.alertId);
  assert.equal(claimed.data.unitId, p.residents[0].unitId);
  assert.ok(!Number.isNaN(Date.parse(claimed.data.claimedAt)), `claimedAt: ${claimed.data.claimedAt}`);
  for (const f of claims) assert.deepEqual(f.data, claimed.data, 'every console sees the same claim');

  // A second ack is recorded but claims nothing.
  c3.send({ type: 'ack', id: ev.id });
  await fx.waitDelivery(ev.id, g3.id, 'ws', { statuses: ['acked'] });
  const [{ n }] = await fx.db.sql(`select count(*)::int as n from hub.outbox where tenant = $1 and kind = 'panic_claimed'`, [p.tenant]);
  assert.equal(n, 1, 'a second ack produced another panic_claimed');
  await c2.noMore('event', 300, (f) => f.kind === 'panic_claimed');

  // After the timeout: the acking guards are left alone.
  await fx.waitJobsDone(ev.id, { timeout: ACK_TIMEOUT_MS + 10_000 });
  await fx.waitSettled(ev.id, { min: 1 });
  await sleep(SETTLE_MS);
  for (const u of [g1, g3]) {
    assert.deepEqual(got(u), { push: 0, sms: 0 }, `guard ${u.id} acked and was still pushed/texted`);
    const rows = await fx.deliveries(ev.id, { user: u.id });
    assert.deepEqual(rows.map((r) => `${r.channel}/${r.status}`), ['ws/acked'], JSON.stringify(rows));
  }
  // The panic was claimed: nobody else is escalated to either.
  for (const u of [g2, g4]) assert.deepEqual(got(u), { push: 0, sms: 0 }, `guard ${u.id} was escalated to after the claim`);
  for (const c of [c1, c2, c3]) c.close();
});

test('the claim reaches admins too (and no resident console)', async () => {
  const p = await complex({ guards: 1, admins: 2, residents: 1 });
  const [g1] = p.guards;
  const cg = await login(hub, staffClaims(p.tenant, g1));
  const ca = await login(hub, staffClaims(p.tenant, p.admins[0]));
  const cr = await login(hub, { sub: p.residents[0].id, tenant: p.tenant, role: 'resident', units: [p.residents[0].unitId] });
  const ev = await panic(p.tenant, p.residents[0], 'Ayuda');
  await cg.next({ type: 'event', where: (f) => f.id === ev.id });
  const panicAtAdmin = await ca.next({ type: 'event', where: (f) => f.id === ev.id });
  assert.equal(panicAtAdmin.kind, 'panic');
  cg.send({ type: 'ack', id: ev.id });
  const f = await ca.next({ type: 'event', where: (x) => x.kind === 'panic_claimed' });
  assert.equal(Number(f.data.eventId), ev.id);
  assert.equal(f.data.guardId, g1.id);
  assert.equal(f.data.guardName, g1.name);
  // The claim is an event like any other: it is not to be acked and has no fallback.
  assert.equal(f.ack, false);
  await cr.noMore('event', 500, (x) => x.kind === 'panic_claimed' || x.kind === 'panic');
  const claimEv = await fx.lastEvent(p.tenant, 'panic_claimed');
  assert.deepEqual(await fx.jobs(claimEv.id), [], 'panic_claimed has fallback jobs');
  for (const c of [cg, ca, cr]) c.close();
});

test('a claimed panic is not escalated by SMS to the other guards and admins (DOMAIN: "escalate by SMS if nobody claims")', async () => {
  const p = await complex({ guards: 2, admins: 1, residents: 1 });
  const [g1, g2] = p.guards;
  const c1 = await login(hub, staffClaims(p.tenant, g1));
  const ev = await panic(p.tenant, p.residents[0]);
  await c1.next({ type: 'event', where: (f) => f.id === ev.id });
  c1.send({ type: 'ack', id: ev.id });
  await c1.next({ type: 'event', where: (x) => x.kind === 'panic_claimed' });
  await fx.waitJobsDone(ev.id, { timeout: ACK_TIMEOUT_MS + 10_000 });
  await waitFor(async () => (await fx.deliveries(ev.id)).every((r) => r.status !== 'pending'), { what: 'deliveries settled' });
  await sleep(SETTLE_MS);
  const sms = [g2, p.admins[0]].map((u) => fx.smsTo(u.phoneNumber).length);
  assert.deepEqual(sms, [0, 0], `after ${g1.id} claimed the panic, the other guard and the admin still got SMS: ${JSON.stringify(await fx.deliveries(ev.id))}`);
  c1.close();
});
