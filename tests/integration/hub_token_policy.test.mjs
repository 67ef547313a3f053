// hub_token_policy.test.mjs - the operator's token policy and the log of
// authentication failures: exp too far ahead, HUB_JWT_MAX_TTL_S,
// HUB_JWT_AUDIENCE / HUB_JWT_ISSUER, HUB_SESSION_MAX_AGE_S across in-band
// refreshes, and the client address (and, behind HUB_TRUSTED_PROXIES, the
// forwarded one) on every failure line, never the token.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  useLifecycle, startHub, runHub, db, connect, login, mintToken, nowS, randomSecret,
  expectUnauthorized, assertUsable, waitLog,
} from './lib/harness.mjs';

useLifecycle();

const DAY_S = 86400;
// Short enough to watch, long enough that a loaded machine still logs in and
// refreshes before it passes.
const SESSION_MAX_AGE_S = 4;
const MAX_TTL_S = 3600;
const AUDIENCE = 'armonia-hub';
const ISSUER = 'https://api.armonia.example';

let database, tenant, plain, strict, shortSessions, proxied;

before(async () => {
  database = await db();
  tenant = await database.newTenant('tokpol');
  [plain, strict, shortSessions, proxied] = await Promise.all([
    startHub(),
    startHub({ env: { HUB_JWT_MAX_TTL_S: MAX_TTL_S, HUB_JWT_AUDIENCE: AUDIENCE, HUB_JWT_ISSUER: ISSUER } }),
    startHub({ env: { HUB_SESSION_MAX_AGE_S: SESSION_MAX_AGE_S } }),
    startHub({ env: { HUB_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1' } }),
  ]);
});

const claimsOf = (sub, extra = {}) => ({ sub, tenant, role: 'guard', ...extra });
/** Claims the strict hub accepts, with extra replacing or (undefined) removing some. */
const strictClaims = (sub, extra = {}) => claimsOf(sub, { iat: nowS(), exp: nowS() + 600, aud: AUDIENCE, iss: ISSUER, ...extra });

/** Connects with token (header or first frame) and expects the refusal; returns the error frame. */
async function refused(hub, token, header, label) {
  const c = await connect(hub.wsUrl, { token, header, label: `${label} (${header ? 'header' : 'frame'})` });
  return expectUnauthorized(c);
}

// --- exp: a token that never ends ------------------------------------------

for (const header of [true, false]) {
  test(`exp = 1e300 is refused (${header ? 'header' : 'first frame'}): unauthorized "token exp too far in the future", 4001`, async () => {
    const f = await refused(plain, mintToken(plain.secret, claimsOf('tp-forever', { exp: 1e300 })), header, 'exp 1e300');
    assert.equal(f.message, 'token exp too far in the future');
  });
}

test('exp 401 days ahead is refused; 399 days ahead (a yearly token) is accepted', async () => {
  const f = await refused(plain, mintToken(plain.secret, claimsOf('tp-401d', { exp: nowS() + 401 * DAY_S })), false, 'exp +401 d');
  assert.equal(f.message, 'token exp too far in the future');
  const c = await login(plain, claimsOf('tp-399d', { exp: nowS() + 399 * DAY_S }));
  await assertUsable(c);
  c.close();
});

test('an in-band refresh with exp = 1e300 is refused and closes the connection with 4001', async () => {
  const c = await login(plain, claimsOf('tp-refresh-forever'));
  c.send({ type: 'auth', token: mintToken(plain.secret, claimsOf('tp-refresh-forever', { exp: 1e300 })), ref: 'r' });
  const f = await expectUnauthorized(c);
  assert.equal(f.message, 'token exp too far in the future');
});

// --- HUB_JWT_MAX_TTL_S -------------------------------------------------------

test(`HUB_JWT_MAX_TTL_S=${MAX_TTL_S}: iat required, not in the future, exp - iat at most the limit`, async () => {
  const ok = await login(strict, strictClaims('tp-ttl-ok', { iat: nowS() - 60, exp: nowS() + MAX_TTL_S - 120 }));
  await assertUsable(ok);
  ok.close();
  const cases = {
    'token lifetime (exp - iat) exceeds the limit': strictClaims('tp-ttl-long', { iat: nowS() - 60, exp: nowS() + MAX_TTL_S }),
    'missing claim iat (required: token lifetimes are limited)': strictClaims('tp-ttl-noiat', { iat: undefined }),
    'token issued in the future (iat)': strictClaims('tp-ttl-ahead', { iat: nowS() + 2 * DAY_S, exp: nowS() + 2 * DAY_S + 60 }),
  };
  for (const [why, claims] of Object.entries(cases)) {
    for (const header of [true, false]) {
      const f = await refused(strict, mintToken(strict.secret, claims), header, why);
      assert.equal(f.message, why);
    }
  }
});

test('without HUB_JWT_MAX_TTL_S a backend token with iat and a 30-day exp is accepted', async () => {
  const c = await login(plain, claimsOf('tp-nest', { iat: nowS(), exp: nowS() + 30 * DAY_S }));
  await assertUsable(c);
  c.close();
});

// --- HUB_JWT_AUDIENCE / HUB_JWT_ISSUER ---------------------------------------

test('HUB_JWT_AUDIENCE and HUB_JWT_ISSUER: aud (string or array) must include the audience, iss must equal the issuer', async () => {
  for (const aud of [AUDIENCE, ['web', AUDIENCE]]) {
    const c = await login(strict, strictClaims('tp-aud-ok', { aud }));
    await assertUsable(c);
    c.close();
  }
  const cases = [
    ['missing claim aud', strictClaims('tp-aud-none', { aud: undefined })],
    ['token audience (aud) does not include this hub', strictClaims('tp-aud-other', { aud: 'payments' })],
    ['token audience (aud) does not include this hub', strictClaims('tp-aud-arr', { aud: ['payments', 'web'] })],
    ['missing claim iss', strictClaims('tp-iss-none', { iss: undefined })],
    ['token issuer (iss) not accepted', strictClaims('tp-iss-other', { iss: 'https://evil.example' })],
  ];
  for (const [why, claims] of cases) {
    for (const header of [true, false]) {
      const f = await refused(strict, mintToken(strict.secret, claims), header, why);
      assert.equal(f.message, why);
    }
  }
});

test('without HUB_JWT_AUDIENCE a token issued for another audience is refused; one without aud is accepted', async () => {
  const f = await refused(plain, mintToken(plain.secret, claimsOf('tp-payments', { aud: 'payments-service' })), false, 'aud payments');
  assert.equal(f.message, 'token names an audience (aud) and this hub expects none');
  const c = await login(plain, claimsOf('tp-noaud', { iss: 'anyone' }));
  await assertUsable(c);
  c.close();
});

// --- HUB_SESSION_MAX_AGE_S ---------------------------------------------------

test(`HUB_SESSION_MAX_AGE_S=${SESSION_MAX_AGE_S}: refreshes keep the token fresh, yet the session ends with 4001 "session too old; sign in again"`, async () => {
  const t0 = Date.now();
  const c = await login(shortSessions, claimsOf('tp-old'));
  // Refresh every 500 ms with hour-long tokens: each one is welcomed, none extends the session.
  let refreshes = 0;
  const timer = setInterval(() => {
    if (c.closeInfo) return;
    c.send({ type: 'auth', token: mintToken(shortSessions.secret, claimsOf('tp-old')), ref: `r${++refreshes}` });
  }, 500);
  try {
    const f = await c.next({ type: 'error', timeout: SESSION_MAX_AGE_S * 1000 + 20_000 });
    assert.equal(f.code, 'unauthorized', JSON.stringify(f));
    assert.equal(f.message, 'session too old; sign in again');
    const closed = await c.closedWithin(10_000);
    assert.equal(closed.code, 4001, `expected 4001, got ${closed.code} '${closed.reason}'`);
  } finally {
    clearInterval(timer);
  }
  const lived = Date.now() - t0;
  assert.ok(lived >= SESSION_MAX_AGE_S * 1000 - 1000, `closed after ${lived} ms, before HUB_SESSION_MAX_AGE_S`);
  assert.ok(c.seen.some((f) => f.type === 'welcome' && typeof f.ref === 'string'), `no refresh was welcomed: ${JSON.stringify(c.seen)}`);
  // Signing in again works at once.
  const again = await login(shortSessions, claimsOf('tp-old'));
  await assertUsable(again);
  again.close();
});

test('a session younger than HUB_SESSION_MAX_AGE_S (default 24 h) is not closed', async () => {
  const c = await login(plain, claimsOf('tp-young'));
  assert.ok(await c.staysOpen(SESSION_MAX_AGE_S * 1000 + 2000), `closed: ${JSON.stringify(c.closeInfo)}; received ${JSON.stringify(c.seen)}`);
  c.close();
});

// --- the failure log line ----------------------------------------------------

test('an authentication failure is logged with the client address and the reason, never the token', async () => {
  const token = mintToken(randomSecret(), claimsOf('tp-log-badsig'));
  const from = plain.output.length;
  await refused(plain, token, true, 'log bad signature');
  const line = await waitLog(plain, /auth failure from 127\.0\.0\.1: bad signature/, from);
  assert.doesNotMatch(line, /forwarded/, line);
  const expired = mintToken(plain.secret, claimsOf('tp-log-expired', { exp: nowS() - 3600 }));
  await refused(plain, expired, false, 'log expired');
  await waitLog(plain, /auth failure from 127\.0\.0\.1: token expired/, from);
  for (const t of [token, expired]) {
    for (const part of t.split('.')) assert.ok(!plain.logs().includes(part), `the log holds a piece of a token:\n${plain.logs()}`);
  }
});

test('X-Forwarded-For from a peer that is not a trusted proxy is not believed', async () => {
  const token = mintToken(randomSecret(), claimsOf('tp-log-spoof'));
  const from = plain.output.length;
  const c = await connect(plain.wsUrl, { token, header: true, headers: { 'X-Forwarded-For': '192.0.2.99' }, label: 'spoofed xff' });
  await expectUnauthorized(c);
  await waitLog(plain, /auth failure from 127\.0\.0\.1: bad signature/, from);
  assert.ok(!plain.logs().includes('192.0.2.99'), `an untrusted X-Forwarded-For reached the log:\n${plain.logs()}`);
});

test('behind a trusted proxy (HUB_TRUSTED_PROXIES) the line also names the forwarded client: the rightmost untrusted hop', async () => {
  const token = mintToken(randomSecret(), claimsOf('tp-log-proxy'));
  // The client wrote 192.0.2.1 itself; the proxies appended 198.51.100.2 then 10.1.2.3.
  const c = await connect(proxied.wsUrl, { token, header: true, headers: { 'X-Forwarded-For': '192.0.2.1, 198.51.100.2, 10.1.2.3' }, label: 'proxied xff' });
  await expectUnauthorized(c);
  await waitLog(proxied, /auth failure from 127\.0\.0\.1 \(forwarded 198\.51\.100\.2\): bad signature/);
  // The address is kept for failures of the first frame too (the headers are gone by then).
  const d = await connect(proxied.wsUrl, { headers: { 'X-Forwarded-For': '203.0.113.7' }, label: 'proxied first frame' });
  d.send({ type: 'auth', token: mintToken(proxied.secret, claimsOf('tp-log-proxy2', { exp: nowS() - 3600 })) });
  await expectUnauthorized(d);
  await waitLog(proxied, /auth failure from 127\.0\.0\.1 \(forwarded 203\.0\.113\.7\): token expired/);
  // A header that is not an address list never reaches the log; the peer still does.
  const from = proxied.output.length;
  const e = await connect(proxied.wsUrl, { token, header: true, headers: { 'X-Forwarded-For': 'auth failure from 6.6.6.6' }, label: 'proxied junk' });
  await expectUnauthorized(e);
  await waitLog(proxied, /auth failure from 127\.0\.0\.1: bad signature/, from);
  assert.ok(!proxied.logs().includes('6.6.6.6'), `a malformed X-Forwarded-For reached the log:\n${proxied.logs()}`);
});

// --- configuration -----------------------------------------------------------

const good = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/armonia',
  JWT_SECRET_KEY: 'config-test-secret',
  PORT: '39998',
  HUB_BIND: '127.0.0.1',
};

for (const [name, value] of [
  ['HUB_TRUSTED_PROXIES', 'proxy.example.com'],
  ['HUB_TRUSTED_PROXIES', '10.0.0.0/33'],
  ['HUB_JWT_MAX_TTL_S', '-1'],
  ['HUB_SESSION_MAX_AGE_S', 'a day'],
]) {
  test(`${name}=${JSON.stringify(value)} stops the hub at start: exit 2, one line naming ${name}`, async () => {
    const r = await runHub({ env: { ...good, [name]: value }, timeout: 5000 });
    const shown = `exit ${r.code}\nstderr: ${JSON.stringify(r.stderr)}`;
    assert.equal(r.timedOut, false, `the hub kept running:\n${shown}`);
    assert.equal(r.code, 2, shown);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, shown);
    assert.match(lines[0], new RegExp(`\\b${name}\\b`), shown);
  });
}
