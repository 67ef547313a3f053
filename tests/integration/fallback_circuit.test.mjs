// fallback_circuit.test.mjs - an open circuit delays a critical event's
// channel instead of cancelling it (docs/fallback.md §3): the row waits
// until the provider's circuit half-opens while the next channel goes at
// once; a non-critical event's row is still skipped.
//
// Own cluster (lib/fallback.mjs). The panic policy is made ordered (push,
// then SMS) so "the next channel goes at once" is the hub's doing and not
// fallback_all's; the visitor policy's ack timeout is shortened. The
// emergency announcement (always push and SMS, critical) is the case of a
// loaded machine: provider timeouts open the circuit while the hub is
// halfway through the residents' pushes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useFallbackFile, uid, newPhone, ms, waitFor, countBy, assertExactlyOnce,
} from './lib/fallback.mjs';

const ACK_TIMEOUT_MS = 300;
const THRESHOLD = 2;
/** Long enough for a panic to be planned and claimed while the circuit is open, on a busy machine. */
const COOLDOWN_MS = 8000;
const CLOCK_SLACK_MS = 30;

const fx = useFallbackFile('fbcircuit', async () => {
  await fx.setPolicy('panic', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: ['push', 'sms'], fallbackAll: false });
  await fx.setPolicy('visitor', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: ['push', 'sms'] });
});

test('open push circuit: a panic\'s push waits for the half-open probe and ends sent, its SMS goes at once; a visitor\'s push is skipped', async () => {
  const hub = await fx.startHub({
    env: { HUB_BREAKER_THRESHOLD: THRESHOLD, HUB_BREAKER_COOLDOWN_MS: COOLDOWN_MS, HUB_FALLBACK_MAX_ATTEMPTS: 10 },
  });
  const tenant = await fx.newTenant('circuit');
  try {
    const unitId = `C${uid(3)}`;
    const resident = await fx.addUser(tenant, {
      id: `res-${uid()}`, role: 'RESIDENT', unitId, deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone(),
    });
    const guard = await fx.addUser(tenant, {
      id: `guard-${uid()}`, name: 'Guarda Juan Ríos', role: 'GUARD', deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone(),
    });

    // Open the circuit: FCM fails every push of a visitor event until the
    // breaker refuses the next attempt (non-critical: skipped, SMS next).
    fx.fcm.setMode('fail500');
    await fx.db.insertVisitor(tenant, { unitId, name: 'Carlos Pérez' });
    const visit = await fx.lastEvent(tenant, 'visitor');
    const visitPush = await fx.waitDelivery(visit.id, resident.id, 'push', { timeout: 30_000 });
    assert.equal(visitPush.status, 'skipped', `visitor push: ${JSON.stringify(visitPush)}`);
    assert.match(visitPush.detail, /circuit open/);
    const failures = fx.pushesTo(resident.deviceToken);
    assert.equal(failures.length, THRESHOLD, `FCM requests before the circuit opened: ${JSON.stringify(failures)}`);
    // The breaker opened when the hub read the last failure, after the stand-in answered it.
    const openedNotBefore = ms(failures[THRESHOLD - 1].time);
    const visitSms = await fx.waitDelivery(visit.id, resident.id, 'sms');
    assert.equal(visitSms.status, 'sent', JSON.stringify(visitSms));

    // A panic while the circuit is open; the guard is offline.
    await fx.db.insertPanic(tenant, { userId: resident.id, unitId, message: 'Hay un intruso' });
    const panic = await fx.lastEvent(tenant, 'panic');
    assert.ok(panic && panic.data.userId === resident.id, `no panic event: ${JSON.stringify(panic)}`);

    const sms = await fx.waitDelivery(panic.id, guard.id, 'sms', { timeout: 15_000 });
    assert.equal(sms.status, 'sent', `the guard's SMS: ${JSON.stringify(await fx.deliveries(panic.id))}`);
    const [text] = fx.smsTo(guard.phoneNumber);
    assert.ok(text && text.status === 201, `Twilio got no SMS for the guard: ${JSON.stringify(fx.smsTo(guard.phoneNumber))}`);
    assert.ok(ms(text.time) < openedNotBefore + COOLDOWN_MS,
      `the SMS went ${Math.round(ms(text.time) - openedNotBefore)} ms after the circuit opened: it waited for the cool-down (${COOLDOWN_MS} ms)`);

    // The push was not given up: it waits, pending, for the half-open probe.
    const waiting = await fx.delivery(panic.id, guard.id, 'push');
    assert.ok(waiting, `no push row for the guard: ${JSON.stringify(await fx.deliveries(panic.id))}`);
    assert.equal(waiting.status, 'pending', `a critical push under an open circuit must wait, not end: ${JSON.stringify(waiting)}`);
    assert.match(waiting.detail ?? '', /circuit open/);
    assert.equal(waiting.attempts, 0, 'waiting for the circuit is not a provider request');
    assert.equal(fx.pushesTo(guard.deviceToken).length, 0, 'a push went out through the open circuit');
    const [{ due_ms: dueMs }] = await fx.db.sql(
      `select (extract(epoch from next_attempt_at) * 1000)::float8 as due_ms from hub.deliveries
        where event_id = $1 and user_id = $2 and channel = 'push'`, [panic.id, guard.id]);
    assert.ok(dueMs >= openedNotBefore + COOLDOWN_MS - CLOCK_SLACK_MS,
      `the push is due ${Math.round(dueMs - openedNotBefore)} ms after the circuit opened, before it half-opens (${COOLDOWN_MS} ms)`);

    // FCM recovers; the half-open probe is the panic's push.
    fx.fcm.setMode('ok');
    const push = await fx.waitDelivery(panic.id, guard.id, 'push', { timeout: COOLDOWN_MS + 20_000 });
    assert.equal(push.status, 'sent', JSON.stringify(push));
    assert.equal(push.attempts, 1, `attempts counts provider requests only: ${JSON.stringify(push)}`);
    const pushes = fx.pushesTo(guard.deviceToken);
    assert.deepEqual(pushes.map((p) => p.status), [200]);
    assert.ok(ms(pushes[0].time) >= openedNotBefore + COOLDOWN_MS - CLOCK_SLACK_MS,
      `the push went ${Math.round(ms(pushes[0].time) - openedNotBefore)} ms after the circuit opened, inside the cool-down`);
    assert.equal(pushes[0].data?.kind, 'panic');

    // Exactly one SMS: the deferral started the next channel once.
    await waitFor(async () => (await fx.deliveries(panic.id)).every((r) => r.status !== 'pending'), { what: 'the panic rows to settle' });
    assert.equal(fx.smsTo(guard.phoneNumber).length, 1);
    assert.deepEqual((await fx.deliveries(panic.id)).map((r) => `${r.user_id === guard.id ? 'guard' : r.user_id} ${r.channel} ${r.status}`),
      ['guard push sent', 'guard sms sent']);
  } finally {
    fx.fcm.setMode('ok');
    await fx.db.sql(`update hub.deliveries set status = 'skipped', detail = 'closed by the test', lease_until = null
                      where tenant = $1 and status = 'pending'`, [tenant]);
    await hub.stop();
  }
});

test('emergency announcement while FCM times out: the circuit opens, the remaining pushes wait and every resident gets exactly one push when FCM answers again', async () => {
  const N = 20;
  const hub = await fx.startHub({
    env: {
      HUB_BREAKER_THRESHOLD: THRESHOLD,
      HUB_BREAKER_COOLDOWN_MS: 2000,
      HUB_PROVIDER_TIMEOUT_MS: 1000,
      HUB_PROVIDER_MAX_INFLIGHT: 2,
      HUB_FALLBACK_MAX_ATTEMPTS: 10,
    },
  });
  const tenant = await fx.newTenant('emergency');
  try {
    const users = await fx.addUsersBulk(tenant, N);
    // FCM stops answering: the first requests time out, which opens the circuit.
    fx.fcm.setMode('hang');
    await fx.db.insertAnnouncement(tenant, { type: 'emergency', title: 'Fuga de gas', body: 'Fuga de gas: evacúe por la escalera norte.' });
    const ev = await fx.lastEvent(tenant, 'announcement');
    assert.ok(ev, 'no announcement event');
    // Open: some push met the open circuit (it should wait: checked below).
    const metCircuit = async () => (await fx.deliveries(ev.id, { channel: 'push' }))
      .filter((r) => /circuit open/.test(r.detail ?? ''));
    await waitFor(async () => (await metCircuit()).length > 0, {
      timeout: 30_000,
      what: 'push rows that met the open circuit',
      describe: async () => JSON.stringify(await fx.deliveryCounts(ev.id)),
    });
    const hung = fx.fcm.messages.filter((m) => users.tokens.has(m.token) && m.status === 'hang').length;
    assert.ok(hung >= THRESHOLD, `only ${hung} pushes hung before the circuit opened`);
    fx.fcm.setMode('ok');

    const rows = await fx.waitSettled(ev.id, { min: 2 * N, timeout: 60_000 });
    assert.deepEqual(await fx.deliveryCounts(ev.id), { 'push/sent': N, 'sms/sent': N },
      `rows: ${JSON.stringify(rows.filter((r) => r.channel === 'push' && r.status !== 'sent').slice(0, 5))}`);
    for (const r of rows.filter((x) => x.channel === 'push')) {
      assert.ok(r.attempts >= 1 && r.attempts <= 3, `attempts counts requests, not waits: ${JSON.stringify(r)}`);
    }
    const accepted = fx.fcm.messages.filter((m) => m.status === 200 && m.data?.event_id === String(ev.id));
    assertExactlyOnce(countBy(accepted, (m) => m.token), users.tokens, `pushes of event ${ev.id}`);
    const texts = fx.twilio.messages.filter((m) => m.status === 201 && users.phones.has(m.to));
    assertExactlyOnce(countBy(texts, (m) => m.to), users.phones, `SMS of event ${ev.id}`);
  } finally {
    fx.fcm.setMode('ok');
    await fx.db.sql(`update hub.deliveries set status = 'skipped', detail = 'closed by the test', lease_until = null
                      where tenant = $1 and status = 'pending'`, [tenant]);
    await hub.stop();
  }
});
