// fallback_push.test.mjs - a resident the WebSocket did not reach gets an
// FCM push, and the next channel when push cannot help (docs/fallback.md).
//
// Runs on its own cluster (lib/fallback.mjs) with the shipped triggers and
// policies, only the ack timeouts shortened: visitor and payment 1.5 s.
// What is checked is what the resident's phone would show (the FCM, Twilio
// and SMTP stand-ins' records) and what an operator sees (hub.deliveries).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { login, runHub, freePort } from './lib/harness.mjs';
import {
  useFallbackFile, uid, newPhone, sleep, ms,
} from './lib/fallback.mjs';

const ACK_TIMEOUT_MS = 1500;
/** Quiet time after a delivery settled in which nothing more may be sent (several ticks and retry delays). */
const SETTLE_MS = 800;
/** Stand-in and database clocks are the same machine's; allow for ms rounding. */
const CLOCK_SLACK_MS = 30;

let hub;
let tenant;

const fx = useFallbackFile('fbpush', async () => {
  await fx.setPolicy('visitor', { ackTimeoutMs: ACK_TIMEOUT_MS });
  await fx.setPolicy('payment', { ackTimeoutMs: ACK_TIMEOUT_MS });
  hub = await fx.startHub({ env: { HUB_BREAKER_THRESHOLD: 20, HUB_FALLBACK_MAX_ATTEMPTS: 5 } });
  tenant = await fx.newTenant('push');
});

/** A resident of a fresh unit; fields override. */
function resident(extra = {}) {
  const unitId = `U${uid(3)}`;
  return { id: `res-${uid()}`, name: 'Ana Gómez', role: 'RESIDENT', unitId, ...extra };
}

/** Registers a visitor for unit and resolves with the visitor event (hub.outbox row). */
async function visitorFor(unitId, name = 'Carlos Pérez') {
  await fx.db.insertVisitor(tenant, { unitId, name });
  const ev = await fx.lastEvent(tenant, 'visitor');
  assert.ok(ev && ev.data.unitId === unitId, `no visitor event for unit ${unitId}: ${JSON.stringify(ev)}`);
  return ev;
}

async function payment(userId, status = 'COMPLETED', amount = 150000) {
  const id = await fx.db.insertPayment(tenant, { userId, amount, status: 'PENDING' });
  await fx.db.setPaymentStatus(tenant, id, status);
  const ev = await fx.lastEvent(tenant, 'payment');
  assert.ok(ev && ev.data.paymentId === id, `no payment event for ${id}: ${JSON.stringify(ev)}`);
  return ev;
}

/** The collapse key channels/fcm_auth.c derives for (event, user): docs/fallback.md §5. */
function collapseKey(eventId, userId) {
  return createHash('sha256').update(`armonia-push-collapse\0${eventId}\0${userId}\0`).digest()
    .subarray(0, 16).toString('base64url');
}

function residentClaims(u) {
  return { sub: u.id, tenant, role: 'resident', units: [u.unitId] };
}

test('offline resident with a device token → exactly one push for a visitor: high priority, Spanish text, string data', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone() }));
  const ev = await visitorFor(u.unitId, 'Carlos Pérez');

  const row = await fx.waitDelivery(ev.id, u.id, 'push');
  assert.equal(row.status, 'sent', `push row: ${JSON.stringify(row)}`);
  assert.equal(row.attempts, 1);
  assert.equal(row.origin, 'fallback');
  assert.equal(row.address, u.deviceToken);
  assert.match(row.detail ?? '', /^projects\/armonia-test\/messages\//, 'the row keeps FCM\'s message name');

  await sleep(SETTLE_MS);
  const pushes = fx.pushesTo(u.deviceToken);
  assert.equal(pushes.length, 1, `FCM got ${pushes.length} requests for the token: ${JSON.stringify(pushes)}`);
  const p = pushes[0];
  assert.equal(p.status, 200);
  assert.equal(p.projectId, 'armonia-test');
  assert.ok(ms(p.time) >= ev.created_ms + ACK_TIMEOUT_MS - CLOCK_SLACK_MS,
    `the push went ${Math.round(ms(p.time) - ev.created_ms)} ms after the event, before the ${ACK_TIMEOUT_MS} ms ack timeout`);
  assert.equal(p.androidPriority, 'HIGH');
  assert.equal(p.apnsPriority, '10');
  assert.equal(p.notification.title, 'Visitante en portería');
  assert.match(p.notification.body, /Carlos Pérez espera en la portería/);
  assert.match(p.notification.body, new RegExp(`unidad ${u.unitId}`));
  assert.deepEqual(p.data, { event_id: String(ev.id), kind: 'visitor', tenant },
    'data carries the event id, kind and tenant, all as strings');

  // Reached by push: the chain stops there, no SMS.
  const rows = await fx.deliveries(ev.id);
  assert.deepEqual(rows.map((r) => `${r.channel}/${r.status}`), ['push/sent'], JSON.stringify(rows));
  assert.equal(fx.smsTo(u.phoneNumber).length, 0, 'an SMS went out although the push worked');
});

test('English-locale resident → the push is in English', async () => {
  const u = await fx.addUser(tenant, resident({ name: 'John Smith', deviceToken: `tok-${uid(8)}`, locale: 'en' }));
  const ev = await visitorFor(u.unitId, 'Mary Jones');
  const row = await fx.waitDelivery(ev.id, u.id, 'push');
  assert.equal(row.status, 'sent', JSON.stringify(row));
  assert.equal(row.locale, 'en');
  const [p] = fx.pushesTo(u.deviceToken);
  assert.equal(p.notification.title, 'Visitor at the gate');
  assert.match(p.notification.body, /Mary Jones is waiting at the gate/);
  assert.doesNotMatch(`${p.notification.title} ${p.notification.body}`, /portería|Visitante|espera/);
});

test('connected resident who acks in time → nothing is sent and no row is left pending', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone() }));
  const c = await login(hub, residentClaims(u));
  const ev = await visitorFor(u.unitId);
  const e = await c.next({ type: 'event', where: (f) => f.id === ev.id });
  assert.equal(e.ack, true);
  c.send({ type: 'ack', id: ev.id });

  // The fallback job comes due at the timeout and is closed; after that no row can appear.
  await fx.waitJobsDone(ev.id, { timeout: ACK_TIMEOUT_MS + 10_000 });
  await sleep(SETTLE_MS);
  const rows = await fx.deliveries(ev.id);
  assert.deepEqual(rows.map((r) => `${r.user_id}:${r.channel}/${r.status}`), [`${u.id}:ws/acked`],
    `an acked visitor left these rows: ${JSON.stringify(rows)}`);
  assert.equal(fx.pushesTo(u.deviceToken).length, 0, 'a push went out although the resident acked');
  assert.equal(fx.smsTo(u.phoneNumber).length, 0, 'an SMS went out although the resident acked');
  c.close();
});

test('connected resident who does not ack → push after the timeout', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone() }));
  const c = await login(hub, residentClaims(u));
  const ev = await visitorFor(u.unitId);
  await c.next({ type: 'event', where: (f) => f.id === ev.id });
  // No ack: received is not reached for an ack event.
  const row = await fx.waitDelivery(ev.id, u.id, 'push');
  assert.equal(row.status, 'sent', JSON.stringify(row));
  const pushes = fx.pushesTo(u.deviceToken);
  assert.equal(pushes.length, 1, JSON.stringify(pushes));
  const late = ms(pushes[0].time) - ev.created_ms;
  assert.ok(late >= ACK_TIMEOUT_MS - CLOCK_SLACK_MS, `the push went ${Math.round(late)} ms after the event, before the ack timeout`);
  assert.ok(late < ACK_TIMEOUT_MS + 3000, `the push went ${Math.round(late)} ms after the event (timeout ${ACK_TIMEOUT_MS} ms, tick 100 ms)`);
  assert.equal(fx.smsTo(u.phoneNumber).length, 0);
  c.close();
});

test('no device token → SMS instead; the push row is skipped with "no device token"', async () => {
  const u = await fx.addUser(tenant, resident({ phoneNumber: newPhone() }));
  const ev = await visitorFor(u.unitId, 'Pedro Ruiz');
  const sms = await fx.waitDelivery(ev.id, u.id, 'sms');
  assert.equal(sms.status, 'sent', JSON.stringify(sms));
  const push = await fx.delivery(ev.id, u.id, 'push');
  assert.ok(push, 'no push row at all: the skipped channel should be recorded');
  assert.equal(push.status, 'skipped');
  assert.equal(push.detail, 'no device token');
  assert.equal(push.attempts, 0);
  await sleep(SETTLE_MS);
  const texts = fx.smsTo(u.phoneNumber);
  assert.equal(texts.length, 1, JSON.stringify(texts));
  assert.equal(texts[0].status, 201);
  assert.match(texts[0].body, /Visitante en porteria/);
  assert.match(texts[0].body, /Pedro Ruiz/);
});

test('UNREGISTERED token → push row failed with detail UNREGISTERED (no retry), then SMS', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `unregistered-${uid(8)}`, phoneNumber: newPhone() }));
  const ev = await visitorFor(u.unitId);
  const sms = await fx.waitDelivery(ev.id, u.id, 'sms');
  assert.equal(sms.status, 'sent', JSON.stringify(sms));
  const push = await fx.delivery(ev.id, u.id, 'push');
  assert.equal(push.status, 'failed', JSON.stringify(push));
  assert.equal(push.detail, 'UNREGISTERED');
  assert.equal(push.attempts, 1);
  await sleep(SETTLE_MS);
  const pushes = fx.pushesTo(u.deviceToken);
  assert.equal(pushes.length, 1, `an UNREGISTERED token must not be retried: ${pushes.length} requests`);
  assert.equal(pushes[0].errorCode, 'UNREGISTERED');
  assert.equal(fx.smsTo(u.phoneNumber).length, 1);
  // "clears nothing in the tenant"
  const [still] = await fx.db.sql(`select "deviceToken" from "${tenant}"."User" where id = $1`, [u.id]);
  assert.equal(still.deviceToken, u.deviceToken, 'the hub changed the tenant\'s "User" row');
});

test('FCM answers 500, 500, 200 → one push after retries, attempts = 3, no SMS', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `tok-${uid(8)}`, phoneNumber: newPhone() }));
  fx.fcm.setMode('sequence', [500, 500, 200]);
  try {
    const ev = await visitorFor(u.unitId);
    const row = await fx.waitDelivery(ev.id, u.id, 'push', { timeout: 20_000 });
    assert.equal(row.status, 'sent', JSON.stringify(row));
    assert.equal(row.attempts, 3, `attempts counts provider requests: ${JSON.stringify(row)}`);
    await sleep(SETTLE_MS);
    const pushes = fx.pushesTo(u.deviceToken);
    assert.deepEqual(pushes.map((p) => p.status), [500, 500, 200]);
    assert.equal(fx.smsTo(u.phoneNumber).length, 0, 'an SMS went out although the push got through on retry');
    assert.equal(await fx.delivery(ev.id, u.id, 'sms'), undefined);
  } finally {
    fx.fcm.setMode('ok');
  }
});

test('every push carries one collapse key per (event, user) in android tag, apns-collapse-id and web push Topic: a retry repeats it, another resident differs', async () => {
  // docs/fallback.md §5: a second copy of a push must replace the first on
  // the device, so every copy of (event, user) carries the same key.
  const unitId = `U${uid(3)}`;
  const a = await fx.addUser(tenant, resident({ unitId, deviceToken: `tok-${uid(8)}` }));
  const b = await fx.addUser(tenant, resident({ unitId, deviceToken: `tok-${uid(8)}` }));
  fx.fcm.setMode('sequence', [500, 500]);
  try {
    const ev = await visitorFor(unitId);
    for (const u of [a, b]) {
      const row = await fx.waitDelivery(ev.id, u.id, 'push', { timeout: 20_000 });
      assert.equal(row.status, 'sent', JSON.stringify(row));
    }
    const keys = new Map();
    for (const u of [a, b]) {
      const pushes = fx.pushesTo(u.deviceToken);
      const expected = collapseKey(ev.id, u.id);
      for (const p of pushes) {
        assert.deepEqual([p.androidTag, p.apnsCollapseId, p.webpushTopic], [expected, expected, expected],
          `push ${pushes.indexOf(p) + 1} of ${pushes.length} to ${u.id}: ${JSON.stringify(p)}`);
      }
      assert.ok(!expected.includes(u.id));
      keys.set(u.id, expected);
    }
    assert.ok(fx.pushesTo(a.deviceToken).length + fx.pushesTo(b.deviceToken).length >= 4,
      'the two 500s were not retried: no push was sent twice');
    assert.notEqual(keys.get(a.id), keys.get(b.id), 'two residents share a collapse key');
  } finally {
    fx.fcm.setMode('ok');
  }
});

test('FCM answers 429 with Retry-After: 2 → the retry waits at least 2 s, then the push goes', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `tok-${uid(8)}` }));
  fx.fcm.setMode('sequence', [429, 200]);
  try {
    const ev = await visitorFor(u.unitId);
    const row = await fx.waitDelivery(ev.id, u.id, 'push', { timeout: 20_000 });
    assert.equal(row.status, 'sent', JSON.stringify(row));
    assert.equal(row.attempts, 2);
    const pushes = fx.pushesTo(u.deviceToken);
    assert.deepEqual(pushes.map((p) => p.status), [429, 200]);
    assert.equal(pushes[0].answer?.error?.status, 'RESOURCE_EXHAUSTED');
    const gap = ms(pushes[1].time) - ms(pushes[0].time);
    assert.ok(gap >= 2000 - CLOCK_SLACK_MS, `the retry came ${gap} ms after the 429 that asked for Retry-After: 2`);
  } finally {
    fx.fcm.setMode('ok');
  }
});

test('payment (no ack) to a connected resident → delivered over the WebSocket, nothing else sent', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `tok-${uid(8)}`, email: `pay-${uid()}@armonia.test` }));
  const c = await login(hub, residentClaims(u));
  const ev = await payment(u.id);
  const e = await c.next({ type: 'event', where: (f) => f.id === ev.id });
  assert.equal(e.ack, false);
  await fx.waitJobsDone(ev.id, { timeout: ACK_TIMEOUT_MS + 10_000 });
  await sleep(SETTLE_MS);
  const rows = await fx.deliveries(ev.id);
  assert.deepEqual(rows.map((r) => `${r.channel}/${r.status}`), ['ws/sent'],
    `a payment the resident received over the WebSocket left: ${JSON.stringify(rows)}`);
  assert.equal(fx.pushesTo(u.deviceToken).length, 0, 'a push went out although the WebSocket delivered the payment');
  assert.equal(fx.mailsTo(u.email).length, 0);
  c.close();
});

test('payment to an offline resident → push, normal priority, Spanish amount', async () => {
  const u = await fx.addUser(tenant, resident({ deviceToken: `tok-${uid(8)}`, email: `pay-${uid()}@armonia.test` }));
  const ev = await payment(u.id, 'COMPLETED', 150000);
  const row = await fx.waitDelivery(ev.id, u.id, 'push');
  assert.equal(row.status, 'sent', JSON.stringify(row));
  await sleep(SETTLE_MS);
  const pushes = fx.pushesTo(u.deviceToken);
  assert.equal(pushes.length, 1, JSON.stringify(pushes));
  assert.equal(pushes[0].notification.title, 'Pago aprobado');
  assert.match(pushes[0].notification.body, /\$150\.000 COP/);
  assert.equal(pushes[0].androidPriority, 'NORMAL');
  assert.equal(pushes[0].apnsPriority, '5');
  assert.deepEqual(pushes[0].data, { event_id: String(ev.id), kind: 'payment', tenant });
  assert.equal(fx.mailsTo(u.email).length, 0, 'an e-mail went out although the push worked');
});

test('payment to an offline resident without a device token → e-mail (multipart, Spanish subject)', async () => {
  const u = await fx.addUser(tenant, resident({ email: `pay-${uid()}@armonia.test` }));
  const ev = await payment(u.id, 'COMPLETED', 150000);
  const row = await fx.waitDelivery(ev.id, u.id, 'email');
  assert.equal(row.status, 'sent', JSON.stringify(await fx.deliveries(ev.id)));
  const push = await fx.delivery(ev.id, u.id, 'push');
  assert.equal(push?.status, 'skipped');
  assert.equal(push?.detail, 'no device token');
  await sleep(SETTLE_MS);
  const mails = fx.mailsTo(u.email);
  assert.equal(mails.length, 1, `the relay got ${mails.length} messages`);
  const m = mails[0];
  assert.equal(m.status, 250);
  assert.equal(m.subject, 'Pago aprobado');
  assert.match(m.data, /^Content-Type: multipart\/alternative; boundary=/im);
  assert.match(m.data, /Content-Type: text\/plain; charset=UTF-8/i);
  assert.match(m.data, /Content-Type: text\/html/i);
  assert.match(m.data, /\$150\.000 COP/);
  assert.match(m.data, /^From: .*notificaciones@armonia\.test/im);
  assert.match(m.data, new RegExp(`^To: .*${u.email.replace(/[.]/g, '\\.')}`, 'im'));
  assert.equal(m.from, 'notificaciones@armonia.test', 'envelope sender');
});

test('HUB_SMTP_FROM with a display name ("Armonía <addr>") → refused at start, or the envelope sender is the bare address', async () => {
  const from = 'Armonía <notificaciones@armonia.test>';
  // A hub that refuses this setting must say so at start (exit 2, naming the variable)...
  const env = { ...fx.providerEnv(['email']), HUB_SMTP_FROM: from, DATABASE_URL: fx.url, JWT_SECRET_KEY: 'x'.repeat(32), PORT: await freePort(), HUB_BIND: '127.0.0.1' };
  const probe = await runHub({ env, timeout: 1500 });
  if (!probe.timedOut) {
    assert.equal(probe.code, 2, `the hub exited ${probe.code}: ${probe.stderr}`);
    assert.match(probe.stderr, /HUB_SMTP_FROM/);
    return;
  }
  // ...otherwise it runs, and the SMTP envelope must carry only the address:
  // "MAIL FROM:<Armonía <a@b>>" is a syntax error to SES, SendGrid and Postfix.
  // Only this hub may send: the file's hub (plain HUB_SMTP_FROM) stops first.
  await hub.stop();
  const h = await fx.startHub({ env: { HUB_SMTP_FROM: from } });
  const u = await fx.addUser(tenant, resident({ email: `from-${uid()}@armonia.test` }));
  const ev = await payment(u.id, 'REFUNDED', 20000);
  const row = await fx.waitDelivery(ev.id, u.id, 'email');
  assert.equal(row.status, 'sent', JSON.stringify(row));
  const [m] = fx.mailsTo(u.email);
  assert.ok(m, 'the relay got no message');
  assert.equal(m.from, 'notificaciones@armonia.test',
    `envelope sender: the relay parsed ${JSON.stringify(m.from)}, i.e. the hub sent MAIL FROM:<${from}> (HUB_SMTP_FROM passed verbatim to CURLOPT_MAIL_FROM)`);
  const fromHeader = m.data.match(/^From: (.*)$/im)?.[1] ?? '';
  assert.match(fromHeader, /^[\x20-\x7e]*$/, `From: header with raw 8-bit text (needs RFC 2047): ${JSON.stringify(fromHeader)}`);
  await h.stop();
});
