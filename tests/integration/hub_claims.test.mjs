// hub_claims.test.mjs - the backend's own tokens (docs/protocol.md "Claim
// names and roles"): claim names set by HUB_JWT_CLAIM_*, extra role values
// mapped by HUB_JWT_ROLE_MAP, refusals that name the configured claim, and
// the hub refusing to start on a malformed map or claim name.
//
// One hub reads tokens shaped like the Armonía backend's ({"userId",
// "schemaName", "role": "ADMIN" | "COMPLEX_ADMIN" | ...}); a second hub with
// the defaults shows the same tokens are refused there, as before.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  useLifecycle, startHub, runHub, db, connect, login, mintToken, expectUnauthorized, expectError,
  assertUsable,
} from './lib/harness.mjs';

useLifecycle();

const ROLE_MAP = 'COMPLEX_ADMIN=admin, SECURITY=guard,owner=Resident';
let database, tenant, backendHub, plainHub;

before(async () => {
  database = await db();
  tenant = await database.newTenant('claims');
  [backendHub, plainHub] = await Promise.all([
    startHub({ env: { HUB_JWT_CLAIM_SUB: 'userId', HUB_JWT_CLAIM_UNITS: 'unitIds', HUB_JWT_ROLE_MAP: ROLE_MAP } }),
    startHub(),
  ]);
});

/** Claims as the backend writes them. */
const backendClaims = (userId, role, extra = {}) => ({ userId, schemaName: tenant, role, ...extra });

/** Logs in to the backend hub with claims through header or first frame. */
const backendLogin = (claims, header) =>
  login(backendHub, claims, { header, label: `${claims.userId}/${claims.role} (${header ? 'header' : 'frame'})` });

/** Connects with claims signed for hub and expects the refusal; returns the error frame. */
async function refused(hub, claims, header, label) {
  const token = mintToken(hub.secret, claims);
  const c = await connect(hub.wsUrl, { token, header, label: `${label} (${header ? 'header' : 'frame'})` });
  const f = await expectUnauthorized(c);
  assert.ok(!f.message.includes(token) && !f.message.includes(token.split('.')[1]), `the reason repeats the token: ${f.message}`);
  return f;
}

for (const header of [true, false]) {
  const how = header ? 'header' : 'first frame';

  test(`a backend token (userId, schemaName, role ADMIN) is welcomed as admin (${how})`, async () => {
    const id = `clx${header ? 'h' : 'f'}0admin01`;
    const c = await backendLogin(backendClaims(id, 'ADMIN', { unitIds: ['302'] }), header);
    assert.equal(c.welcome.user, id);
    assert.equal(c.welcome.tenant, tenant);
    assert.equal(c.welcome.role, 'admin');
    assert.deepEqual(c.welcome.rooms, ['all', `user:${id}`, 'role:admin', 'unit:302']);
    // An admin may join any room; an event to its user room reaches it.
    c.send({ type: 'subscribe', room: 'announcements', ref: 's' });
    assert.deepEqual(await c.next({ type: 'subscribed' }), { type: 'subscribed', room: 'announcements', ref: 's' });
    const eid = await database.emit(tenant, 'payment', [`user:${id}`], { status: 'COMPLETED' });
    const e = await c.next({ type: 'event', where: (x) => x.id === eid });
    assert.equal(e.room, `user:${id}`);
    c.close();
  });

  test(`mapped roles: COMPLEX_ADMIN is admin, security is guard, OWNER is resident, with their room rules (${how})`, async () => {
    const tag = header ? 'h' : 'f';
    const admin = await backendLogin(backendClaims(`clx${tag}0cadmin`, 'COMPLEX_ADMIN'), header);
    assert.equal(admin.welcome.role, 'admin');
    assert.ok(admin.welcome.rooms.includes('role:admin'), JSON.stringify(admin.welcome));
    const guard = await backendLogin(backendClaims(`clx${tag}0guard`, 'security'), header);
    assert.equal(guard.welcome.role, 'guard');
    const owner = await backendLogin(backendClaims(`clx${tag}0owner`, 'OWNER', { unitIds: ['101'] }), header);
    assert.equal(owner.welcome.role, 'resident');

    // The roles' rules, not the backend's names, decide what each may join.
    guard.send({ type: 'subscribe', room: 'unit:302', ref: 'g1' });
    assert.equal((await guard.next({ type: 'subscribed' })).room, 'unit:302');
    guard.send({ type: 'subscribe', room: 'role:admin', ref: 'g2' });
    await expectError(guard, 'forbidden', { ref: 'g2' });
    owner.send({ type: 'subscribe', room: 'unit:302', ref: 'o1' });
    await expectError(owner, 'forbidden', { ref: 'o1' });

    // A panic reaches the mapped admin and guard through role:admin / role:guard.
    const panic = await database.emit(tenant, 'panic', ['role:guard', 'role:admin'], { message: 'test' }, { priority: 'critical' });
    assert.equal((await admin.next({ type: 'event', where: (x) => x.id === panic })).room, 'role:admin');
    assert.equal((await guard.next({ type: 'event', where: (x) => x.id === panic })).room, 'role:guard');
    await assertUsable(owner);
    for (const c of [admin, guard, owner]) c.close();
  });

  test(`refusals name the configured claim: missing userId, missing role, an unknown role (${how})`, async () => {
    const cases = [
      // A token with the default claim name is refused by the backend hub.
      [{ sub: 'clx0sub', schemaName: tenant, role: 'ADMIN' }, 'missing claim userId'],
      [{ userId: 'clx0norole', schemaName: tenant }, 'missing claim role'],
      [backendClaims('clx0bad id', 'ADMIN'), 'claim userId must be 1..90 characters of [A-Za-z0-9_.:-]'],
      [backendClaims('clx0units', 'ADMIN', { unitIds: '302' }), 'claim unitIds must be an array of strings'],
      [backendClaims('clx0super', 'SUPERVISOR'), "claim role must be resident, guard, admin or a role of the hub's role map"],
      [{ userId: 'clx0notenant', role: 'ADMIN' }, 'missing claim tenant (or schemaName)'],
    ];
    for (const [claims, reason] of cases) {
      const f = await refused(backendHub, claims, header, reason);
      assert.equal(f.message, reason);
      assert.ok(!f.message.includes('SUPERVISOR'), `the reason repeats the role value: ${f.message}`);
    }
  });

  test(`a hub with the default names refuses the same tokens as before (${how})`, async () => {
    let f = await refused(plainHub, backendClaims('clx0plain', 'ADMIN'), header, 'userId on the default hub');
    assert.equal(f.message, 'missing claim sub');
    f = await refused(plainHub, { sub: 'clx0plain', schemaName: tenant, role: 'COMPLEX_ADMIN' }, header, 'unmapped role');
    assert.equal(f.message, 'claim role must be resident, guard or admin');
    const c = await login(plainHub, { sub: `clx${header ? 'h' : 'f'}0plainok`, schemaName: tenant, role: 'ADMIN' }, { header });
    assert.equal(c.welcome.role, 'admin');
    c.close();
  });
}

test('an in-band refresh may spell the mapped role in another case; another role is refused', async () => {
  const c = await backendLogin(backendClaims('clx0refresh', 'COMPLEX_ADMIN'), false);
  c.send({ type: 'auth', token: mintToken(backendHub.secret, backendClaims('clx0refresh', 'complex_admin')), ref: 'r1' });
  const w = await c.next({ type: 'welcome', where: (x) => x.ref === 'r1' });
  assert.equal(w.role, 'admin');
  c.send({ type: 'auth', token: mintToken(backendHub.secret, backendClaims('clx0refresh', 'SECURITY')), ref: 'r2' });
  const f = await expectUnauthorized(c);
  assert.equal(f.message, 'a refreshed token must name the same sub, tenant and role');
});

// --- configuration ------------------------------------------------------------

const good = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/armonia',
  JWT_SECRET_KEY: 'claims-test-secret',
  PORT: '39998',
  HUB_BIND: '127.0.0.1',
};

/** Exit 2 and one stderr line naming name (and matching re when given). */
function assertConfigError(r, name, re) {
  const shown = `exit ${r.code} signal ${r.signal}\nstderr: ${JSON.stringify(r.stderr)}`;
  assert.equal(r.timedOut, false, `the hub kept running:\n${shown}`);
  assert.equal(r.code, 2, `expected exit status 2:\n${shown}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `expected one line on stderr:\n${shown}`);
  assert.ok(lines[0].includes(name), `the line does not name ${name}:\n${shown}`);
  if (re) assert.match(lines[0], re, shown);
}

test('a malformed HUB_JWT_ROLE_MAP stops the hub at start: exit 2 and one line naming it', async () => {
  const bad = {
    'COMPLEX_ADMIN': /no '='/,
    'COMPLEX_ADMIN=superuser': /'COMPLEX_ADMIN' maps to 'superuser'; expected resident, guard or admin/,
    'A=admin,,B=guard': /empty entry/,
    'A=admin,': /empty entry/,
    'admin=guard': /built-in role/,
    'OWNER=resident,owner=admin': /appears twice/,
    'BAD VALUE=admin': /role value 'BAD VALUE'/,
  };
  for (const [map, re] of Object.entries(bad)) {
    assertConfigError(await runHub({ env: { ...good, HUB_JWT_ROLE_MAP: map } }), 'HUB_JWT_ROLE_MAP', re);
    assertConfigError(await runHub({ env: good, args: [`--jwt-role-map=${map}`] }), 'HUB_JWT_ROLE_MAP', re);
  }
});

test('a bad claim name stops the hub at start: exit 2 naming the setting', async () => {
  assertConfigError(await runHub({ env: { ...good, HUB_JWT_CLAIM_SUB: 'user id' } }), 'HUB_JWT_CLAIM_SUB', /expected a claim name/);
  assertConfigError(await runHub({ env: { ...good, HUB_JWT_CLAIM_ROLE: 'x'.repeat(101) } }), 'HUB_JWT_CLAIM_ROLE', /expected a claim name/);
  assertConfigError(await runHub({ env: { ...good, HUB_JWT_CLAIM_TENANT: 'exp' } }), 'HUB_JWT_CLAIM_TENANT', /reads for itself/);
  assertConfigError(await runHub({ env: { ...good, HUB_JWT_CLAIM_UNITS: 'role' } }), 'HUB_JWT_CLAIM_UNITS', /already the claim of HUB_JWT_CLAIM_ROLE/);
});

test('--check-config shows the claim names and the role map; --help lists them', async () => {
  const r = await runHub({ env: { ...good, HUB_JWT_CLAIM_SUB: 'userId', HUB_JWT_ROLE_MAP: ROLE_MAP }, args: ['--check-config'] });
  assert.equal(r.code, 0, r.stderr);
  for (const line of ['HUB_JWT_CLAIM_SUB=userId', 'HUB_JWT_CLAIM_TENANT=tenant', 'HUB_JWT_CLAIM_ROLE=role', 'HUB_JWT_CLAIM_UNITS=units', `HUB_JWT_ROLE_MAP=${ROLE_MAP}`])
    assert.ok(r.stdout.split('\n').includes(line), `--check-config lacks ${line}:\n${r.stdout}`);
  const h = await runHub({ args: ['--help'] });
  for (const flag of ['--jwt-claim-sub', '--jwt-claim-tenant', '--jwt-claim-role', '--jwt-claim-units', '--jwt-role-map'])
    assert.ok(h.stdout.includes(flag), `--help lacks ${flag}`);
});
