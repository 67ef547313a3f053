// hub_tenants.test.mjs - which schemas a token may name (README,
// "Tenants and database roles") and the role the hub runs as (schema/080_roles.sql).
//
// A schema of the backend's own (an audit or auth schema) exists in the
// database but is no tenant: a token naming it must be refused exactly like
// a forged token. Registering it (hub.register_tenant) makes it one;
// unregistering takes that back. The hub under test connects as
// armonia_hub_login (tests/integration/lib/hub.mjs), like every hub of the
// suite, and this file checks that it really does.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  useLifecycle, startHub, db, connect, login, mintToken, nowS, randomSecret,
  expectUnauthorized, assertUsable, pgUrl, HUB_LOGIN_ROLE,
} from './lib/harness.mjs';

useLifecycle();

let hub, database, tenant;
// Unique per run, so the file can run again on the same cluster.
const APP = `armonia-hub-tenants-${randomBytes(3).toString('hex')}`;

/** A schema that exists but is no tenant (the backend's audit schema, say). */
async function auditSchema(prefix) {
  const name = `a_${prefix}_${randomBytes(4).toString('hex')}`;
  await database.sql(`CREATE SCHEMA "${name}"`);
  await database.sql(`CREATE TABLE "${name}"."User" (id text PRIMARY KEY, name text, role text)`);
  return name;
}

before(async () => {
  database = await db();
  tenant = await database.newTenant('tenants');
  // No tenant cache: an unregistered tenant is refused on the next connection.
  // application_name set in the URL names this hub's sessions.
  const url = new URL(await pgUrl());
  url.searchParams.set('application_name', APP);
  hub = await startHub({ databaseUrl: url.toString(), env: { HUB_TENANT_CACHE_MS: 0 } });
});

test(`the hub connects as ${HUB_LOGIN_ROLE}, not as a superuser`, async () => {
  // A session of this hub is open once /healthz is 200 (the listener).
  const rows = await database.sql(
    `SELECT usename, (SELECT rolsuper FROM pg_roles WHERE rolname = usename) AS su
       FROM pg_stat_activity WHERE application_name = $1`, [APP]);
  assert.ok(rows.length > 0, `no session with application_name ${APP}`);
  for (const r of rows) assert.deepEqual(r, { usename: HUB_LOGIN_ROLE, su: false });
});

for (const header of [true, false]) {
  test(`a token naming an existing schema that is not a registered tenant is refused like a forged one (${header ? 'header' : 'first frame'})`, async () => {
    const audit = await auditSchema(header ? 'h' : 'f');
    const claims = { sub: 'intruder', tenant: audit, role: 'admin', exp: nowS() + 600 };
    const c = await connect(hub.wsUrl, { token: mintToken(hub.secret, claims), header, label: `tenant ${audit}` });
    const refused = await expectUnauthorized(c);
    const forged = await connect(hub.wsUrl, { token: mintToken(randomSecret(), { ...claims, tenant }), header, label: 'forged' });
    const bad = await expectUnauthorized(forged);
    assert.equal(refused.message, bad.message, 'an unregistered schema is told apart from a forged token');
    assert.ok(!c.seen.some((f) => f.type === 'welcome'), `welcomed into ${audit}: ${JSON.stringify(c.seen)}`);
  });
}

test('a schema registered with hub.register_tenant is a tenant; after hub.unregister_tenant it is refused again', async () => {
  const schema = await auditSchema('reg');
  await database.sql('SELECT hub.register_tenant($1)', [schema]);
  const c = await login(hub, { sub: 'res-1', tenant: schema, role: 'resident', exp: nowS() + 600 });
  assert.equal(c.welcome.tenant, schema);
  await assertUsable(c);
  const id = await database.emit(schema, 'marker', ['all'], { n: 1 });
  const ev = await c.next({ type: 'event', where: (e) => e.id === id });
  assert.equal(ev.kind, 'marker');

  await database.sql('SELECT hub.unregister_tenant($1)', [schema]);
  const late = await connect(hub.wsUrl, { token: mintToken(hub.secret, { sub: 'res-2', tenant: schema, role: 'resident', exp: nowS() + 600 }), label: 'after unregister' });
  await expectUnauthorized(late);
});

test('a demo tenant (hub.create_demo_tenant) is a tenant', async () => {
  const c = await login(hub, { sub: 'guard-1', tenant, role: 'guard', exp: nowS() + 600 });
  await assertUsable(c);
});
