// fallback_email.test.mjs - the e-mail channel facing hostile input
// (docs/fallback.md, "7. Addresses and the e-mail channel"), and the address checks every
// fallback channel makes before a provider sees an address.
//
// Runs on its own cluster (lib/fallback.mjs). Every test starts the one hub
// it needs and stops it at the end, so no other hub takes its rows. What is
// checked is what the SMTP relay saw (the stand-in records each MAIL, RCPT
// and AUTH command, not only the accepted messages), what reached the
// Twilio and FCM stand-ins, and what an operator sees in hub.deliveries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, runHub } from './lib/harness.mjs';
import { useFallbackFile, uid, newPhone, sleep } from './lib/fallback.mjs';
import { startSmtp } from '../standins/smtp.mjs';

/** Quiet time after a row settled in which nothing more may reach a provider. */
const SETTLE_MS = 800;
/** An unreached user's fallback starts this long after the event. */
const ACK_TIMEOUT_MS = 300;

let tenant;

const fx = useFallbackFile('fbemail', async () => {
  tenant = await fx.newTenant('email');
});

/** Emits an announcement to one user (room user:<id>); resolves with the event id. */
function announce(userId, data) {
  return fx.db.emit(tenant, 'announcement', [`user:${userId}`], data);
}

/** The RCPT TO commands relay got whose argument contains text. */
function rcptsWith(relay, text) {
  return relay.commands.filter((c) => c.verb === 'RCPT' && c.arg.includes(text));
}

/** The plain-text part of a multipart message as its lines (CRLF split). */
function plainLines(data) {
  const m = data.match(/Content-Type: text\/plain; charset=UTF-8\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/i);
  assert.ok(m, `no text/plain part in:\n${data}`);
  return m[1].split('\r\n');
}

test('hostile e-mail address (CRLF + second RCPT TO) → e-mail skipped "invalid e-mail address", no RCPT sent, the next channel used', async () => {
  await fx.setPolicy('announcement', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: ['email', 'sms'], always: [] });
  const victim = `victim-${uid()}@demo.co`;
  const attacker = `attacker-${uid()}@evil.test`;
  const u = await fx.addUser(tenant, { email: `${victim}>\r\nRCPT TO:<${attacker}`, phoneNumber: newPhone() });
  const hub = await fx.startHub();
  try {
    const id = await announce(u.id, { title: 'Corte de agua', body: 'Mañana de 8 a 12.' });
    const email = await fx.waitDelivery(id, u.id, 'email');
    const sms = await fx.waitDelivery(id, u.id, 'sms');
    await sleep(SETTLE_MS);
    assert.deepEqual(rcptsWith(fx.smtp, attacker).map((c) => c.arg), [],
      'the relay was sent an RCPT TO for the attacker: the address was passed to RCPT TO unchecked');
    assert.deepEqual(rcptsWith(fx.smtp, victim).map((c) => c.arg), [], 'an RCPT TO went out for the hostile address');
    assert.equal(fx.smtp.messages.filter((m) => m.to.some((a) => a.includes(attacker) || a.includes(victim))).length, 0);
    assert.equal(email.status, 'skipped', JSON.stringify(email));
    assert.equal(email.detail, 'invalid e-mail address');
    assert.equal(email.attempts, 0);
    assert.equal(sms.status, 'sent', `the next channel was not used: ${JSON.stringify(sms)}`);
    assert.equal(fx.smsTo(u.phoneNumber).length, 1);
    assert.ok(!hub.output.some((l) => l.includes(attacker) || l.includes(victim)), 'the hostile address was logged');
  } finally {
    await hub.stop();
  }
});

test('phone numbers: typed separators are dropped (+57 300 123-4567 is sent as E.164); anything else → sms skipped, never sent, never logged', async () => {
  await fx.setPolicy('announcement', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: [], always: ['sms'] });
  const e164 = newPhone(); // +573XXXXXXXXX
  const typed = `${e164.slice(0, 3)} ${e164.slice(3, 6)} ${e164.slice(6, 9)}-${e164.slice(9)}`;
  const good = await fx.addUser(tenant, { phoneNumber: typed });
  const smuggled = `${newPhone()}&To=+15005550006`;
  const bad = await fx.addUser(tenant, { phoneNumber: smuggled });
  const local = await fx.addUser(tenant, { phoneNumber: '3119876543' });
  const hub = await fx.startHub();
  try {
    const ids = [];
    for (const u of [good, bad, local]) ids.push(await announce(u.id, { title: 'Aviso' }));
    const ok = await fx.waitDelivery(ids[0], good.id, 'sms');
    assert.equal(ok.status, 'sent', JSON.stringify(ok));
    assert.equal(ok.address, e164);
    assert.equal(fx.smsTo(e164).length, 1);
    for (const [i, u] of [[1, bad], [2, local]]) {
      const row = await fx.waitDelivery(ids[i], u.id, 'sms');
      assert.equal(row.status, 'skipped', JSON.stringify(row));
      assert.match(row.detail, /^invalid phone number \(expected E\.164/);
      assert.equal(row.attempts, 0);
    }
    await sleep(SETTLE_MS);
    const sent = fx.twilio.messages.map((m) => m.to ?? m.To);
    assert.ok(!sent.some((to) => String(to).includes('15005550006') || String(to) === '3119876543'),
      `Twilio got a request for a refused number: ${JSON.stringify(sent)}`);
    const leaked = hub.output.filter((l) => l.includes(smuggled) || l.includes('3119876543'));
    assert.deepEqual(leaked, [], 'a refused number was logged in full');
  } finally {
    await hub.stop();
  }
});

test('device token with characters outside [A-Za-z0-9_:.-] → push skipped "invalid device token", FCM not called', async () => {
  await fx.setPolicy('announcement', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: [], always: ['push'] });
  const token = `tok-${uid(8)}/../../messages:send`;
  const u = await fx.addUser(tenant, { deviceToken: token });
  const hub = await fx.startHub();
  try {
    const id = await announce(u.id, { title: 'Aviso' });
    const row = await fx.waitDelivery(id, u.id, 'push');
    await sleep(SETTLE_MS);
    assert.equal(fx.pushesTo(token).length, 0, 'FCM got a request for the refused token');
    assert.equal(row.status, 'skipped', JSON.stringify(row));
    assert.equal(row.detail, 'invalid device token');
  } finally {
    await hub.stop();
  }
});

test('body lines ".x", "." and "..x" arrive intact (dot-stuffed once on the wire, not twice)', async () => {
  await fx.setPolicy('announcement', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: [], always: ['email'] });
  const u = await fx.addUser(tenant, { email: `dots-${uid()}@armonia.test` });
  const hub = await fx.startHub();
  try {
    const id = await announce(u.id, { title: 'Puntos', body: 'Antes\n.x\n.\n..x\nDespués' });
    const row = await fx.waitDelivery(id, u.id, 'email');
    assert.equal(row.status, 'sent', JSON.stringify(row));
    const [m] = fx.mailsTo(u.email);
    assert.ok(m, 'the relay got no message');
    assert.deepEqual(plainLines(m.data).slice(0, 5), ['Antes', '.x', '.', '..x', 'Después'],
      'the plain-text lines as the recipient reads them (after the relay removed one dot)');
  } finally {
    await hub.stop();
  }
});

test('HUB_SMTP_USER and a relay without STARTTLS → no AUTH in clear text; the row fails and says why', async () => {
  await fx.setPolicy('announcement', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: [], always: ['email'] });
  const log = (line) => fx.standinLog.push(`[auth relay] ${line}`);
  const relay = await startSmtp({ user: 'hub', password: 's3cret-login', log });
  const u = await fx.addUser(tenant, { email: `tls-${uid()}@armonia.test` });
  const hub = await fx.startHub({
    env: {
      HUB_SMTP_URL: `smtp://localhost:${relay.port}`,
      HUB_SMTP_USER: 'hub',
      HUB_SMTP_PASSWORD: 's3cret-login',
      HUB_FALLBACK_MAX_ATTEMPTS: 1,
    },
  });
  try {
    const id = await announce(u.id, { title: 'Aviso' });
    const row = await fx.waitDelivery(id, u.id, 'email');
    await sleep(SETTLE_MS);
    const auths = relay.commands.filter((c) => c.verb === 'AUTH');
    assert.deepEqual(auths, [], 'the login went out without TLS (AUTH on a connection the relay never encrypted)');
    assert.equal(relay.messages.length, 0);
    assert.equal(row.status, 'failed', JSON.stringify(row));
    assert.match(row.detail, /STARTTLS/, `the row does not say why: ${row.detail}`);
    assert.ok(!hub.output.some((l) => l.includes('s3cret-login')), 'the password was logged');
  } finally {
    await hub.stop();
    await relay.close();
  }
});

test('HUB_SMTP_ALLOW_PLAINTEXT_AUTH=1 with a loopback relay → the login is sent without TLS and the mail goes', async () => {
  await fx.setPolicy('announcement', { ackTimeoutMs: ACK_TIMEOUT_MS, fallback: [], always: ['email'] });
  const log = (line) => fx.standinLog.push(`[auth relay] ${line}`);
  const relay = await startSmtp({ user: 'hub', password: 's3cret-login', log });
  const u = await fx.addUser(tenant, { email: `plain-${uid()}@armonia.test` });
  const hub = await fx.startHub({
    env: {
      HUB_SMTP_URL: relay.url,
      HUB_SMTP_USER: 'hub',
      HUB_SMTP_PASSWORD: 's3cret-login',
      HUB_SMTP_ALLOW_PLAINTEXT_AUTH: 1,
    },
  });
  try {
    const id = await announce(u.id, { title: 'Aviso' });
    const row = await fx.waitDelivery(id, u.id, 'email');
    assert.equal(row.status, 'sent', JSON.stringify(row));
    assert.equal(relay.messages.length, 1);
    assert.equal(relay.messages[0].authUser, 'hub');
  } finally {
    await hub.stop();
    await relay.close();
  }
});

test('HUB_SMTP_ALLOW_PLAINTEXT_AUTH=1 with a relay that is not on loopback → refused at start: exit 2, one line naming the setting', async () => {
  const env = {
    ...fx.providerEnv(['email']),
    HUB_SMTP_URL: 'smtp://smtp.example.com:587',
    HUB_SMTP_USER: 'hub',
    HUB_SMTP_PASSWORD: 's3cret-login',
    HUB_SMTP_ALLOW_PLAINTEXT_AUTH: '1',
    DATABASE_URL: fx.url,
    JWT_SECRET_KEY: 'x'.repeat(32),
    PORT: await freePort(),
    HUB_BIND: '127.0.0.1',
  };
  const r = await runHub({ env, timeout: 8000 });
  assert.equal(r.timedOut, false, 'the hub started with clear-text login allowed to a remote relay');
  assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => /HUB_SMTP_ALLOW_PLAINTEXT_AUTH/.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /loopback/);
  assert.ok(!r.stderr.includes('s3cret-login'));
});
