// hub_auth.test.mjs - who gets in, who does not, and how a client learns
// why (docs/protocol.md "Authentication"). One hub with a short first-frame
// deadline (700 ms) serves every case; each case uses its own user ids.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  useLifecycle, startHub, db, connect, login, mintToken, nowS, randomSecret,
  expectUnauthorized, assertUsable,
} from './lib/harness.mjs';

useLifecycle();

const AUTH_TIMEOUT_MS = 700;
let hub, database, tenant, otherTenant;

before(async () => {
  database = await db();
  tenant = await database.newTenant('auth');
  otherTenant = await database.newTenant('auth2');
  hub = await startHub({ env: { HUB_AUTH_TIMEOUT_MS: AUTH_TIMEOUT_MS } });
});

const claimsOf = (sub, extra = {}) => ({ sub, tenant, role: 'guard', ...extra });

/** welcome must carry exactly these fields (ref only when the auth frame had one). */
function assertWelcome(w, { user, tenantName = tenant, role, rooms }) {
  const keys = Object.keys(w).sort();
  assert.deepEqual(keys, ['last_seq', 'role', 'rooms', 'session', 'tenant', 'type', 'user'], `welcome fields: ${JSON.stringify(w)}`);
  assert.equal(w.type, 'welcome');
  assert.equal(typeof w.session, 'string', `session must be a string: ${JSON.stringify(w)}`);
  assert.ok(w.session.length > 0, `session must not be empty: ${JSON.stringify(w)}`);
  assert.equal(w.user, user);
  assert.equal(w.tenant, tenantName);
  assert.equal(w.role, role);
  assert.deepEqual(w.rooms, rooms, `welcome rooms: ${JSON.stringify(w)}`);
  assert.ok(Number.isSafeInteger(w.last_seq) && w.last_seq >= 0, `last_seq must be a non-negative integer: ${JSON.stringify(w)}`);
}

test('header auth: welcome with user, tenant, role (lower case), automatic rooms, session, last_seq', async () => {
  const c = await login(hub, { sub: 'res-h1', tenant, role: 'RESIDENT', units: ['101', '102'] }, { header: true });
  assertWelcome(c.welcome, { user: 'res-h1', role: 'resident', rooms: ['all', 'user:res-h1', 'role:resident', 'unit:101', 'unit:102'] });
  await assertUsable(c);
  c.close();
});

test('first-frame auth: welcome', async () => {
  const c = await login(hub, { sub: 'guard-f1', tenant, role: 'guard' });
  assertWelcome(c.welcome, { user: 'guard-f1', role: 'guard', rooms: ['all', 'user:guard-f1', 'role:guard'] });
  await assertUsable(c);
  c.close();
});

test('schemaName is accepted as an alias of tenant; role is case-insensitive', async () => {
  const c = await login(hub, { sub: 'adm-alias', schemaName: tenant, role: 'Admin' });
  assertWelcome(c.welcome, { user: 'adm-alias', role: 'admin', rooms: ['all', 'user:adm-alias', 'role:admin'] });
  c.close();
});

test('every connection gets its own session id', async () => {
  const a = await login(hub, claimsOf('sess-1'));
  const b = await login(hub, claimsOf('sess-1'), { header: true });
  assert.notEqual(a.welcome.session, b.welcome.session, 'two connections got the same session id');
  a.close();
  b.close();
});

test('welcome last_seq is the newest seq of the tenant', async () => {
  const watcher = await login(hub, claimsOf('seq-watch'));
  const id = await database.emit(tenant, 'marker', ['all'], { n: 1 });
  const e = await watcher.next({ type: 'event', where: (f) => f.id === id });
  const late = await login(hub, claimsOf('seq-late'));
  assert.equal(late.welcome.last_seq, e.seq, `a newcomer after event seq ${e.seq} was told last_seq ${late.welcome.last_seq}`);
  watcher.close();
  late.close();
});

// Tokens the hub must refuse, each wrong in one way.
const badTokens = {
  'bad signature': () => mintToken(randomSecret(), claimsOf('u-badsig')),
  'alg none': () => mintToken(hub.secret, claimsOf('u-none'), { alg: 'none' }),
  'alg HS512': () => mintToken(hub.secret, claimsOf('u-hs512'), { alg: 'HS512' }),
  'alg RS256 in the header, HS256 signature': () => mintToken(hub.secret, claimsOf('u-rs'), { header: { alg: 'RS256' }, signAlg: 'HS256' }),
  'expired (exp = now - 120, past the 30 s leeway)': () => mintToken(hub.secret, claimsOf('u-exp', { exp: nowS() - 120 })),
  'not yet valid (nbf = now + 120)': () => mintToken(hub.secret, claimsOf('u-nbf', { nbf: nowS() + 120 })),
  'missing sub': () => mintToken(hub.secret, { tenant, role: 'guard' }),
  'empty sub': () => mintToken(hub.secret, claimsOf('')),
  'missing tenant': () => mintToken(hub.secret, { sub: 'u-notenant', role: 'guard' }),
  'missing role': () => mintToken(hub.secret, { sub: 'u-norole', tenant }),
  'missing exp': () => mintToken(hub.secret, claimsOf('u-noexp', { exp: undefined })),
  'unknown role (janitor)': () => mintToken(hub.secret, claimsOf('u-janitor', { role: 'janitor' })),
  'unknown tenant (no such schema)': () => mintToken(hub.secret, claimsOf('u-ghost', { tenant: `t_nosuch_${Date.now()}` })),
  'not a JWT at all': () => 'not-a-token',
};

for (const [what, make] of Object.entries(badTokens)) {
  for (const header of [true, false]) {
    test(`refused (${header ? 'header' : 'first frame'}): ${what} → error unauthorized, close 4001`, async () => {
      const c = await connect(hub.wsUrl, { token: make(), header, label: `${what} (${header ? 'header' : 'frame'})` });
      await expectUnauthorized(c);
    });
  }
}

test('a token in the URL (?token=) is ignored: no welcome, then unauthorized and 4001 at the auth deadline', async () => {
  const token = mintToken(hub.secret, claimsOf('u-query'));
  const t0 = Date.now();
  const c = await connect(hub.wsUrl, { query: { token }, label: 'query token' });
  await expectUnauthorized(c, { timeout: AUTH_TIMEOUT_MS + 3000 });
  assert.ok(!c.seen.some((f) => f.type === 'welcome'), `a URL token was accepted: ${JSON.stringify(c.seen)}`);
  assert.ok(Date.now() - t0 >= AUTH_TIMEOUT_MS - 100, `refused after ${Date.now() - t0} ms, before the ${AUTH_TIMEOUT_MS} ms deadline`);
});

test(`auth timeout: silence for HUB_AUTH_TIMEOUT_MS=${AUTH_TIMEOUT_MS} → unauthorized, 4001`, async () => {
  const t0 = Date.now();
  const c = await connect(hub.wsUrl, { label: 'silent' });
  await expectUnauthorized(c, { timeout: AUTH_TIMEOUT_MS + 3000 });
  const took = Date.now() - t0;
  assert.ok(took >= AUTH_TIMEOUT_MS - 100, `closed after ${took} ms, before the ${AUTH_TIMEOUT_MS} ms deadline`);
});

test('a frame other than auth before authenticating (subscribe) → unauthorized, 4001', async () => {
  const c = await connect(hub.wsUrl, { label: 'subscribe first' });
  c.send({ type: 'subscribe', room: 'unit:101' });
  await expectUnauthorized(c);
  assert.ok(!c.seen.some((f) => f.type === 'subscribed'), `subscribed before auth: ${JSON.stringify(c.seen)}`);
});

test('a ping before authenticating → unauthorized, 4001 (no pong)', async () => {
  const c = await connect(hub.wsUrl, { label: 'ping first' });
  c.send({ type: 'ping', ref: 1 });
  await expectUnauthorized(c);
  assert.ok(!c.seen.some((f) => f.type === 'pong'), `answered a ping before auth: ${JSON.stringify(c.seen)}`);
});

test('a token expiring while connected (exp = now - 27, inside the leeway) → welcome, then closed 4001 within ~5 s', async () => {
  const exp = nowS() - 27;
  const c = await login(hub, claimsOf('u-expiring', { exp }));
  const closed = await c.closedWithin(6000);
  assert.equal(closed.code, 4001, `expected 4001 at expiry, got ${closed.code} '${closed.reason}'`);
  const at = Date.now();
  assert.ok(at >= (exp + 30) * 1000 - 1000, `closed at ${at}, well before exp + leeway ${(exp + 30) * 1000}`);
});

test('a fresh auth frame for the same sub and tenant extends the connection past the old expiry', async () => {
  const exp = nowS() - 27;
  const c = await login(hub, claimsOf('u-refresh', { exp }));
  c.send({ type: 'auth', token: mintToken(hub.secret, claimsOf('u-refresh')) });
  // The old token dies at (exp + 30 s); the connection must outlive it.
  const wait = (exp + 30) * 1000 - Date.now() + 1500;
  const open = await c.staysOpen(wait);
  assert.ok(open, `closed ${JSON.stringify(c.closeInfo)} although the token was refreshed; received: ${JSON.stringify(c.seen)}`);
  assert.ok(!c.seen.some((f) => f.type === 'error'), `the refresh got an error: ${JSON.stringify(c.seen)}`);
  const id = await database.emit(tenant, 'marker', ['user:u-refresh'], { after: 'refresh' });
  const e = await c.next({ type: 'event', where: (f) => f.id === id });
  assert.equal(e.room, 'user:u-refresh');
  c.close();
});

test('msgpack: an auth frame with rooms joins them before welcome, which lists them after the automatic rooms', async () => {
  const c = await connect(hub.wsUrl, { format: 'msgpack', label: 'u-mp-rooms(msgpack)' });
  c.send({ type: 'auth', token: mintToken(hub.secret, claimsOf('u-mp-rooms')), rooms: ['unit:7', 'unit:8'], ref: 9 });
  const w = await c.next({ where: (f) => f.type === 'welcome' || f.type === 'error' });
  assert.equal(w.type, 'welcome', JSON.stringify(w));
  assert.deepEqual(w.rooms, ['all', 'user:u-mp-rooms', 'role:guard', 'unit:7', 'unit:8']);
  assert.equal(w.ref, 9);
  const id = await database.emit(tenant, 'visitor', ['unit:8'], { unitId: '8' });
  const e = await c.next({ type: 'event', where: (f) => f.id === id });
  assert.equal(e.room, 'unit:8');
  c.close();
});

test('a refresh auth frame\'s rooms are ignored: no room joined, no error, the welcome lists the current rooms', async () => {
  const c = await login(hub, claimsOf('u-refresh-rooms'));
  c.send({ type: 'auth', token: mintToken(hub.secret, claimsOf('u-refresh-rooms')), rooms: ['unit:9', 'role:admin'], ref: 'r' });
  const w = await c.next({ where: (f) => (f.type === 'welcome' || f.type === 'error') && f.ref === 'r' });
  assert.equal(w.type, 'welcome', JSON.stringify(w));
  assert.deepEqual(w.rooms.slice().sort(), ['all', 'role:guard', 'user:u-refresh-rooms']);
  await assertUsable(c);
  assert.ok(!c.seen.some((f) => f.type === 'error'), JSON.stringify(c.seen));
  c.close();
});

test('a refresh naming another sub → unauthorized, 4001', async () => {
  const c = await login(hub, claimsOf('u-swap'));
  c.send({ type: 'auth', token: mintToken(hub.secret, claimsOf('u-other')) });
  await expectUnauthorized(c);
});

test('a refresh naming another tenant → unauthorized, 4001', async () => {
  const c = await login(hub, claimsOf('u-swap-t'));
  c.send({ type: 'auth', token: mintToken(hub.secret, claimsOf('u-swap-t', { tenant: otherTenant })) });
  await expectUnauthorized(c);
});

test('a refresh with a bad signature → unauthorized, 4001', async () => {
  const c = await login(hub, claimsOf('u-swap-sig'));
  c.send({ type: 'auth', token: mintToken(randomSecret(), claimsOf('u-swap-sig')) });
  await expectUnauthorized(c);
});
