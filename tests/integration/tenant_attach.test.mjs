// tenant_attach.test.mjs - the hub attached to a backend's existing tenant
// schema (schema/090_tenants.sql, docs/tenants.md): hub.attach_tenant puts
// the event triggers on tables laid out like a Prisma migration (quoted
// PascalCase tables, cuid text ids, enums as PostgreSQL enum types, a
// "Device" table), a mapping renames tables and columns, bad mappings are
// refused naming the key and attach nothing, attaching twice changes
// nothing, hub.detach_tenant stops the events, hub.audience reads the
// mapping (one row per device token, role and unit mapping), only
// administrators may attach, and auto-attach picks up a tenant whose
// migration runs after it was enabled.
//
// Every schema is made here, without hub.create_demo_tenant, with a name of
// its own, so the file runs again on the same cluster and beside the others.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  useLifecycle, startHub, db, login, nowS, pgUrl, hubDatabaseUrl, ident,
} from './lib/harness.mjs';

let database, url;
const schemas = new Set();
const hex = (n = 4) => randomBytes(n).toString('hex');

/** A cuid-like id, as Prisma's @default(cuid()) makes them (client side). */
const cuid = () => `cl${Date.now().toString(36)}${hex(8)}`;

/**
 * The statements of a Prisma migration for the Armonía models, unqualified
 * (Prisma runs them with the tenant schema first on search_path). `names`
 * renames tables and columns, as another backend's layout would.
 */
function prismaMigration(names = {}) {
  const T = (t) => ident(names[t] ?? t);
  const C = (t, c) => ident(names[`${t}.${c}`] ?? c);
  return [
    `CREATE TYPE "Role" AS ENUM ('RESIDENT', 'GUARD', 'ADMIN', 'COMPLEX_ADMIN')`,
    `CREATE TYPE "PaymentStatus" AS ENUM ('PENDING', 'COMPLETED', 'FAILED', 'CANCELLED', 'REFUNDED')`,
    `CREATE TYPE "AnnouncementType" AS ENUM ('GENERAL', 'EMERGENCY')`,
    `CREATE TABLE ${T('User')} (
        "id" TEXT NOT NULL,
        "name" TEXT NOT NULL,
        "role" "Role" NOT NULL DEFAULT 'RESIDENT',
        "phoneNumber" TEXT,
        "email" TEXT,
        "locale" TEXT NOT NULL DEFAULT 'es-CO',
        "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT "User_pkey" PRIMARY KEY ("id"))`,
    `CREATE TABLE "UnitResident" (
        "userId" TEXT NOT NULL,
        "unitId" TEXT NOT NULL,
        CONSTRAINT "UnitResident_pkey" PRIMARY KEY ("userId", "unitId"))`,
    `CREATE TABLE "Device" (
        "id" TEXT NOT NULL,
        "userId" TEXT NOT NULL,
        "token" TEXT NOT NULL,
        "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT "Device_pkey" PRIMARY KEY ("id"))`,
    `CREATE TABLE ${T('PanicAlert')} (
        "id" TEXT NOT NULL,
        ${C('PanicAlert', 'userId')} TEXT NOT NULL,
        "unitId" TEXT,
        "message" TEXT,
        "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT ${ident(`${names.PanicAlert ?? 'PanicAlert'}_pkey`)} PRIMARY KEY ("id"))`,
    `CREATE TABLE "Visitor" (
        "id" TEXT NOT NULL,
        "unitId" TEXT NOT NULL,
        "name" TEXT NOT NULL,
        "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT "Visitor_pkey" PRIMARY KEY ("id"))`,
    `CREATE TABLE "Payment" (
        "id" TEXT NOT NULL,
        "userId" TEXT NOT NULL,
        "amount" DECIMAL(65,30) NOT NULL,
        "currency" TEXT NOT NULL DEFAULT 'COP',
        "status" "PaymentStatus" NOT NULL DEFAULT 'PENDING',
        "updatedAt" TIMESTAMP(3) NOT NULL,
        CONSTRAINT "Payment_pkey" PRIMARY KEY ("id"))`,
    `CREATE TABLE "Announcement" (
        "id" TEXT NOT NULL,
        "title" TEXT NOT NULL,
        "body" TEXT NOT NULL,
        "type" "AnnouncementType" NOT NULL DEFAULT 'GENERAL',
        "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT "Announcement_pkey" PRIMARY KEY ("id"))`,
    `CREATE UNIQUE INDEX "Device_token_key" ON "Device"("token")`,
    `ALTER TABLE "Device" ADD CONSTRAINT "Device_userId_fkey" FOREIGN KEY ("userId")
        REFERENCES ${T('User')}("id") ON DELETE CASCADE ON UPDATE CASCADE`,
  ];
}

/** A fresh schema with a name of its own, created and migrated as Prisma would. */
async function prismaTenant(prefix, names) {
  const s = `p_${prefix}_${hex()}`;
  schemas.add(s);
  const c = await database.client();
  try {
    await c.query(`CREATE SCHEMA ${ident(s)}`);
    await c.query(`SET search_path TO ${ident(s)}`);
    for (const stmt of prismaMigration(names)) await c.query(stmt);
  } finally {
    await c.query('RESET search_path').catch(() => {});
    c.release();
  }
  return s;
}

/** The tenant's outbox rows, in id order, as the hub reads them. */
async function outbox(s) {
  return database.sql(
    'SELECT kind, rooms, priority, ack, data FROM hub.outbox WHERE tenant = $1 ORDER BY id', [s]);
}

/** Our triggers on the schema's tables, as 'table/trigger'. */
async function triggersOf(s) {
  const rows = await database.sql(
    `SELECT c.relname || '/' || g.tgname AS t
       FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
      WHERE c.relnamespace = to_regnamespace($1) AND NOT g.tgisinternal`, [ident(s)]);
  return rows.map((r) => r.t).sort();
}

const q = (s, t) => `${ident(s)}.${ident(t)}`;

async function insertUser(s, { id = cuid(), name = 'Usuario', role = 'RESIDENT', phoneNumber = null, email = null, table = 'User' } = {}) {
  await database.sql(`INSERT INTO ${q(s, table)} (id, name, role, "phoneNumber", email) VALUES ($1, $2, $3, $4, $5)`,
    [id, name, role, phoneNumber, email]);
  return id;
}

/** Asserts that p rejects with SQLSTATE code and a message matching re. */
async function rejectsWith(p, code, re, what) {
  await assert.rejects(p, (err) => {
    assert.equal(err.code, code, `${what}: expected SQLSTATE ${code}, got ${err.code}: ${err.message}`);
    assert.match(err.message, re, `${what}: the message does not name the problem`);
    return true;
  }, `${what}: accepted`);
}

before(async () => {
  database = await db();
  url = await pgUrl();
});

// Registered before useLifecycle's hooks, so it runs while the shared pool
// is still open.
after(async () => {
  if (!database) return;
  await database.sql('SELECT hub.disable_auto_attach()').catch(() => {});
  for (const s of schemas) {
    await database.sql('SELECT hub.detach_tenant($1)', [s]).catch(() => {});
    await database.sql(`DROP SCHEMA IF EXISTS ${ident(s)} CASCADE`).catch(() => {});
  }
});

useLifecycle();

test('attached with the default mapping, each of the four triggers writes the right outbox row', async () => {
  const s = await prismaTenant('dflt');
  const res = (await database.sql(`SELECT hub.attach_tenant($1, '{"devices": {"table": "Device"}}') AS r`, [s]))[0].r;
  assert.equal(res.tables.PanicAlert, 'PanicAlert');
  assert.equal(res.columns.User.deviceToken, null, 'the User table has no device column: absent');
  assert.deepEqual(res.devices, { table: 'Device', user: 'userId', token: 'token' });
  assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [s]))[0].ok, true);
  assert.deepEqual(await triggersOf(s), ['Announcement/hub_announcement', 'PanicAlert/hub_panic', 'Payment/hub_payment', 'Visitor/hub_visitor']);

  const ana = await insertUser(s, { name: 'Ana Residente' });
  const alert = cuid();
  await database.sql(`INSERT INTO ${q(s, 'PanicAlert')} (id, "userId", "unitId", message) VALUES ($1, $2, '302', 'Ayuda')`, [alert, ana]);
  const visitor = cuid();
  await database.sql(`INSERT INTO ${q(s, 'Visitor')} (id, "unitId", name) VALUES ($1, '302', 'Mensajero')`, [visitor]);
  const pay = cuid();
  await database.sql(`INSERT INTO ${q(s, 'Payment')} (id, "userId", amount, "updatedAt") VALUES ($1, $2, 150000, now())`, [pay, ana]);
  await database.sql(`UPDATE ${q(s, 'Payment')} SET "updatedAt" = now() WHERE id = $1`, [pay]);
  await database.sql(`UPDATE ${q(s, 'Payment')} SET status = 'COMPLETED' WHERE id = $1`, [pay]);
  await database.sql(`UPDATE ${q(s, 'Payment')} SET status = 'COMPLETED' WHERE id = $1`, [pay]);
  await database.sql(`INSERT INTO ${q(s, 'Announcement')} (id, title, body) VALUES ($1, 'Asamblea', 'El martes')`, [cuid()]);
  const ann = cuid();
  await database.sql(`INSERT INTO ${q(s, 'Announcement')} (id, title, body, type) VALUES ($1, 'Evacuar', 'Torre 3', 'EMERGENCY')`, [ann]);

  const rows = await outbox(s);
  assert.deepEqual(rows.map((r) => [r.kind, r.rooms, r.priority, r.ack]), [
    ['panic', ['role:guard', 'role:admin'], 'critical', true],
    ['visitor', ['unit:302'], 'high', true],
    ['payment', [`user:${ana}`], 'normal', false],
    ['announcement', ['all'], 'critical', false],
  ]);
  const [panic, vis, payment, announcement] = rows.map((r) => r.data);
  assert.match(panic.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  assert.deepEqual({ ...panic, createdAt: undefined }, {
    alertId: alert, userId: ana, userName: 'Ana Residente', unitId: '302', message: 'Ayuda', createdAt: undefined,
  });
  assert.deepEqual({ ...vis, createdAt: undefined }, { visitorId: visitor, unitId: '302', name: 'Mensajero', createdAt: undefined });
  assert.ok(vis.createdAt, 'visitor createdAt');
  assert.deepEqual({ ...payment, amount: Number(payment.amount) }, {
    paymentId: pay, userId: ana, amount: 150000, currency: 'COP', status: 'COMPLETED',
  });
  assert.deepEqual(announcement, { announcementId: ann, title: 'Evacuar', body: 'Torre 3', type: 'EMERGENCY' });
});

test('a live guard receives the panic of an attached tenant, and its ack claims it by the mapped name', async () => {
  const s = await prismaTenant('live');
  await database.sql('SELECT hub.attach_tenant($1)', [s]);
  const guard = await insertUser(s, { name: 'Guarda Norte', role: 'GUARD' });
  const hub = await startHub();
  const g = await login(hub, { sub: guard, tenant: s, role: 'guard', exp: nowS() + 600 });
  const alert = cuid();
  await database.sql(`INSERT INTO ${q(s, 'PanicAlert')} (id, "userId", "unitId", message) VALUES ($1, $2, '101', 'Intruso')`, [alert, guard]);
  const ev = await g.next({ type: 'event', where: (e) => e.kind === 'panic' });
  assert.equal(ev.priority, 'critical');
  assert.equal(ev.ack, true);
  assert.equal(ev.room, 'role:guard');
  assert.equal(ev.data.alertId, alert);
  assert.equal(ev.data.userName, 'Guarda Norte');
  g.send({ type: 'ack', id: ev.id });
  const claimed = await g.next({ type: 'event', where: (e) => e.kind === 'panic_claimed' });
  assert.equal(claimed.data.guardId, guard);
  assert.equal(claimed.data.guardName, 'Guarda Norte', 'hub.tenant_user_name reads the attached tenant');
});

test('a mapping renames tables and columns; a kind mapped to null gets no trigger', async () => {
  const s = await prismaTenant('ren', { PanicAlert: 'Alerta', 'PanicAlert.userId': 'residentId', User: 'Usuario' });
  const mapping = {
    tables: { PanicAlert: 'Alerta', User: 'Usuario', Visitor: null },
    columns: { PanicAlert: { userId: 'residentId' } },
  };
  const res = (await database.sql('SELECT hub.attach_tenant($1, $2) AS r', [s, mapping]))[0].r;
  assert.equal(res.tables.Visitor, null);
  assert.equal(res.columns.PanicAlert.userId, 'residentId');
  assert.deepEqual(await triggersOf(s), ['Alerta/hub_panic', 'Announcement/hub_announcement', 'Payment/hub_payment']);
  const u = await insertUser(s, { name: 'Berta', table: 'Usuario' });
  await database.sql(`INSERT INTO ${q(s, 'Alerta')} (id, "residentId", "unitId") VALUES ($1, $2, '7')`, [cuid(), u]);
  await database.sql(`INSERT INTO ${q(s, 'Visitor')} (id, "unitId", name) VALUES ($1, '7', 'Nadie')`, [cuid()]);
  const rows = await outbox(s);
  assert.deepEqual(rows.map((r) => r.kind), ['panic']);
  assert.equal(rows[0].data.userId, u);
  assert.equal(rows[0].data.userName, 'Berta');
  const [{ mapping: stored }] = await database.sql('SELECT mapping FROM hub.tenant_mappings WHERE tenant = $1', [s]);
  assert.deepEqual(stored, mapping);
});

test('bad mappings and missing tables or columns are refused naming the key, and attach nothing', async () => {
  const s = await prismaTenant('bad');
  const cases = [
    [{ tabels: {} }, '22023', /unknown key 'tabels' in mapping \(expected one of tables, columns, devices, units, roles\)/],
    [{ tables: { Panic: 'X' } }, '22023', /unknown key 'Panic' in mapping tables/],
    [{ columns: { PanicAlert: { user: 'x' } } }, '22023', /unknown key 'user' in mapping columns\.PanicAlert/],
    [{ tables: { User: null } }, '22023', /mapping tables\.User must be a table or column name/],
    [{ columns: { Payment: { status: null } } }, '22023', /mapping columns\.Payment\.status must be/],
    [{ roles: { admin: 'COMPLEX_ADMIN' } }, '22023', /mapping roles\.admin must be an array/],
    [{ roles: { owner: [] } }, '22023', /unknown key 'owner' in mapping roles/],
    [{ devices: { table: 'Device', column: 'token' } }, '22023', /unknown key 'column' in mapping devices/],
    [[], '22023', /mapping must be a JSON object/],
    [{ tables: { PanicAlert: 'Alerta' } }, '42P01', new RegExp(`table "${s}"\\."Alerta" does not exist \\(mapping tables\\.PanicAlert\\)`)],
    [{ columns: { PanicAlert: { userId: 'residentId' } } }, '42703', new RegExp(`column "${s}"\\."PanicAlert"\\."residentId" does not exist \\(mapping columns\\.PanicAlert\\.userId\\)`)],
    [{ devices: { table: 'Devices' } }, '42P01', /table .*"Devices" does not exist \(mapping devices\.table\)/],
    [{ units: { table: 'UnitResident', unit: 'unit' } }, '42703', /column .*"UnitResident"\."unit" does not exist \(mapping units\.unit\)/],
  ];
  for (const [mapping, code, re] of cases) {
    await rejectsWith(database.sql('SELECT hub.attach_tenant($1, $2)', [s, JSON.stringify(mapping)]), code, re, JSON.stringify(mapping));
  }
  // A default-named table the schema lacks: named, with the way out.
  await database.sql(`DROP TABLE ${q(s, 'Visitor')}`);
  await rejectsWith(database.sql('SELECT hub.attach_tenant($1)', [s]), '42P01',
    /table "[^"]+"\."Visitor" does not exist \(mapping tables\.Visitor\), the default; map it to null/, 'no Visitor table');
  await rejectsWith(database.sql('SELECT hub.attach_tenant($1)', [`${s}_missing`]), '22023', /no schema named/, 'no schema');

  assert.deepEqual(await triggersOf(s), [], 'a refused attach left triggers');
  assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [s]))[0].ok, false, 'a refused attach registered the tenant');
  assert.deepEqual(await database.sql('SELECT 1 FROM hub.tenant_mappings WHERE tenant = $1', [s]), []);
  // With the missing kind left out it attaches.
  await database.sql(`SELECT hub.attach_tenant($1, '{"tables": {"Visitor": null}}')`, [s]);
  assert.equal((await triggersOf(s)).length, 3);
});

test('attaching twice gives the same triggers and one event per row; a new mapping replaces the old', async () => {
  const s = await prismaTenant('twice');
  await database.sql('SELECT hub.attach_tenant($1)', [s]);
  const first = await triggersOf(s);
  await database.sql('SELECT hub.attach_tenant($1)', [s]);
  assert.deepEqual(await triggersOf(s), first);
  await database.sql(`INSERT INTO ${q(s, 'PanicAlert')} (id, "userId") VALUES ($1, 'u1')`, [cuid()]);
  await database.sql(`INSERT INTO ${q(s, 'Visitor')} (id, "unitId", name) VALUES ($1, '1', 'V')`, [cuid()]);
  assert.deepEqual((await outbox(s)).map((r) => r.kind), ['panic', 'visitor']);

  await database.sql(`SELECT hub.attach_tenant($1, '{"tables": {"Visitor": null}}')`, [s]);
  assert.ok(!(await triggersOf(s)).includes('Visitor/hub_visitor'), 'the old mapping\'s visitor trigger stayed');
  await database.sql(`INSERT INTO ${q(s, 'Visitor')} (id, "unitId", name) VALUES ($1, '1', 'V2')`, [cuid()]);
  assert.deepEqual((await outbox(s)).map((r) => r.kind), ['panic', 'visitor']);
  const [{ mapping }] = await database.sql('SELECT mapping FROM hub.tenant_mappings WHERE tenant = $1', [s]);
  assert.deepEqual(mapping, { tables: { Visitor: null } });
});

test('hub.detach_tenant stops the events and unregisters; the events already written stay', async () => {
  const s = await prismaTenant('det');
  await database.sql('SELECT hub.attach_tenant($1)', [s]);
  await database.sql(`INSERT INTO ${q(s, 'PanicAlert')} (id, "userId") VALUES ($1, 'u1')`, [cuid()]);
  assert.deepEqual(await database.sql('SELECT hub.detach_tenant($1) AS was', [s]), [{ was: true }]);
  assert.deepEqual(await triggersOf(s), []);
  assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [s]))[0].ok, false);
  assert.deepEqual(await database.sql('SELECT 1 FROM hub.tenant_mappings WHERE tenant = $1', [s]), []);
  await database.sql(`INSERT INTO ${q(s, 'PanicAlert')} (id, "userId") VALUES ($1, 'u1')`, [cuid()]);
  assert.deepEqual((await outbox(s)).map((r) => r.kind), ['panic']);
  assert.deepEqual(await database.sql('SELECT hub.detach_tenant($1) AS was', [s]), [{ was: false }]);
  // Schema hub's own triggers are never a tenant's.
  for (const name of ['hub', 'pg_catalog', 'public', null])
    await rejectsWith(database.sql('SELECT hub.detach_tenant($1)', [name]), '22023', /must be 1-63 characters/, `detach ${name}`);
});

test('hub.audience reads the mapping: one row per device token, role values mapped, units from a join table', async () => {
  const s = await prismaTenant('aud');
  await database.sql(`SELECT hub.attach_tenant($1, $2)`, [s, {
    devices: { table: 'Device' },
    units: { table: 'UnitResident' },
    roles: { admin: ['complex_admin'] },
  }]);
  await insertUser(s, { id: 'g1', role: 'GUARD', phoneNumber: '+573001', email: 'g1@x.co' });
  await insertUser(s, { id: 'a1', role: 'ADMIN' });
  await insertUser(s, { id: 'a2', role: 'COMPLEX_ADMIN', email: 'a2@x.co' });
  await insertUser(s, { id: 'r1', phoneNumber: '+573002' });
  await insertUser(s, { id: 'r2' });
  await database.sql(`INSERT INTO ${q(s, 'Device')} (id, "userId", token) VALUES
      ('d1', 'g1', 'tok-g1-b'), ('d2', 'g1', 'tok-g1-a'), ('d3', 'r1', 'tok-r1')`);
  await database.sql(`INSERT INTO ${q(s, 'UnitResident')} ("userId", "unitId") VALUES ('r1', '101'), ('r2', '101'), ('r2', '202')`);
  const aud = async (rooms) => (await database.sql('SELECT * FROM hub.audience($1, $2::text[])', [s, rooms]));
  const ids = async (rooms) => (await aud(rooms)).map((r) => `${r.user_id}:${r.device_token}`);

  assert.deepEqual(await aud(['user:g1']), [
    { user_id: 'g1', device_token: 'tok-g1-a', phone: '+573001', email: 'g1@x.co', locale: 'es-CO' },
    { user_id: 'g1', device_token: 'tok-g1-b', phone: '+573001', email: 'g1@x.co', locale: 'es-CO' },
  ]);
  assert.deepEqual(await ids(['all']), ['a1:null', 'a2:null', 'g1:tok-g1-a', 'g1:tok-g1-b', 'r1:tok-r1', 'r2:null']);
  assert.deepEqual(await ids(['role:admin']), ['a1:null', 'a2:null']);
  assert.deepEqual(await ids(['role:guard', 'role:resident']), ['g1:tok-g1-a', 'g1:tok-g1-b', 'r1:tok-r1', 'r2:null']);
  assert.deepEqual(await ids(['unit:101']), ['r1:tok-r1', 'r2:null']);
  assert.deepEqual(await ids(['unit:202', 'user:a2', 'unit:202']), ['a2:null', 'r2:null']);
  assert.deepEqual(await ids(['custom', 'role:GUARD', 'unit:999', 'user:nobody']), []);

  // hub.audience runs as the schema's owner: a cast the backend defines for
  // its own enum is never run by it (the enum is read by its output function).
  await database.sql(`CREATE FUNCTION ${q(s, 'role_text')}(${q(s, 'Role')}) RETURNS text
                        LANGUAGE sql AS $$ SELECT 'CAST RAN AS ' || current_user $$`);
  await database.sql(`CREATE CAST (${q(s, 'Role')} AS text) WITH FUNCTION ${q(s, 'role_text')}(${q(s, 'Role')})`);
  assert.deepEqual(await ids(['role:admin']), ['a1:null', 'a2:null']);
});

test('hub.audience: device tokens in a text[] column of the User table, beside a Device table', async () => {
  const s = await prismaTenant('arr');
  await database.sql(`ALTER TABLE ${q(s, 'User')} ADD COLUMN "pushTokens" text[], ADD COLUMN "unitId" text`);
  await database.sql('SELECT hub.attach_tenant($1, $2)', [s, {
    columns: { User: { deviceToken: 'pushTokens' } }, devices: { table: 'Device' },
  }]);
  await database.sql(`INSERT INTO ${q(s, 'User')} (id, name, role, "pushTokens", "unitId") VALUES
      ('u1', 'A', 'RESIDENT', '{t1,t2,""}', '5'), ('u2', 'B', 'RESIDENT', NULL, '5'), ('u3', 'C', 'GUARD', '{t3}', NULL)`);
  await database.sql(`INSERT INTO ${q(s, 'Device')} (id, "userId", token) VALUES ('d1', 'u1', 't1'), ('d2', 'u2', 't4')`);
  const rows = await database.sql("SELECT user_id, device_token FROM hub.audience($1, '{unit:5}')", [s]);
  assert.deepEqual(rows.map((r) => `${r.user_id}:${r.device_token}`), ['u1:t1', 'u1:t2', 'u2:t4']);
});

test('only administrators attach: the hub\'s role and producers may not call attach, detach or auto-attach', async () => {
  const s = await prismaTenant('role');
  for (const role of ['hub', 'armonia_producer']) {
    const c = new pg.Client({ connectionString: role === 'hub' ? hubDatabaseUrl(url) : url });
    c.on('error', () => {});
    await c.connect();
    try {
      if (role !== 'hub') await c.query(`SET ROLE ${role}`);
      for (const call of [
        ['SELECT hub.attach_tenant($1)', [s]],
        ['SELECT hub.detach_tenant($1)', [s]],
        ["SELECT hub.enable_auto_attach('^x')", []],
        ['SELECT hub.disable_auto_attach()', []],
        ['SELECT * FROM hub.tenant_mappings', []],
      ]) {
        await rejectsWith(c.query(...call), '42501', /permission denied/, `${role}: ${call[0]}`);
      }
    } finally {
      await c.end().catch(() => {});
    }
  }
  assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [s]))[0].ok, false);
});

test('auto-attach: a tenant whose Prisma migration runs after it was enabled is attached once its tables exist', async () => {
  const tag = hex(3);
  const mapping = { devices: { table: 'Device' } };
  await database.sql('SELECT hub.enable_auto_attach($1, $2)', [`^p_auto${tag}_`, mapping]);
  try {
    await rejectsWith(database.sql("SELECT hub.enable_auto_attach('(', '{}')"), '22023', /no valid regular expression/, 'bad pattern');
    await rejectsWith(database.sql(`SELECT hub.enable_auto_attach('^x', '{"tabels": {}}')`), '22023', /unknown key 'tabels'/, 'bad mapping');
    const [{ pattern }] = await database.sql('SELECT pattern FROM hub.auto_attach');
    assert.equal(pattern, `^p_auto${tag}_`, 'a refused call changed the setting');

    const s = await prismaTenant(`auto${tag}`);
    const [{ resolved }] = await database.sql('SELECT resolved FROM hub.tenant_mappings WHERE tenant = $1', [s]);
    assert.deepEqual(resolved.devices, { table: 'Device', user: 'userId', token: 'token' });
    assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [s]))[0].ok, true);
    const u = await insertUser(s, { name: 'Nuevo' });
    await database.sql(`INSERT INTO ${q(s, 'PanicAlert')} (id, "userId", "unitId") VALUES ($1, $2, '9')`, [cuid(), u]);
    const rows = await outbox(s);
    assert.deepEqual(rows.map((r) => [r.kind, r.data.userName]), [['panic', 'Nuevo']]);

    // A schema whose name does not match stays as it is.
    const other = await prismaTenant('other');
    assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [other]))[0].ok, false);
    assert.deepEqual(await triggersOf(other), []);

    // A matching schema the mapping does not fit is not attached, and its
    // migration is not broken: a warning, nothing more.
    await database.sql('SELECT hub.enable_auto_attach($1, $2)', [`^p_auto${tag}_`, { columns: { User: { email: 'mail' } } }]);
    const misfit = await prismaTenant(`auto${tag}`);
    assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [misfit]))[0].ok, false);
  } finally {
    assert.deepEqual(await database.sql('SELECT hub.disable_auto_attach() AS was'), [{ was: true }]);
  }
  assert.deepEqual(await database.sql("SELECT 1 FROM pg_event_trigger WHERE evtname = 'hub_auto_attach'"), []);
  const later = await prismaTenant(`auto${tag}`);
  assert.equal((await database.sql('SELECT hub.is_tenant($1) AS ok', [later]))[0].ok, false, 'attached after disable');
});
