// fallback_sql.test.mjs - the database side of fallback delivery
// (docs/fallback.md, schema/070_fallback.sql) against a real
// PostgreSQL: jobs written with each event, planning due jobs into delivery
// rows, claiming rows under a lease, results and the next channel, acks,
// "sent" marks and the single claim of a panic, several hubs at once.
//
// The cluster is HUB_PGDIR's (scripts/pg.sh start, idempotent, re-applies
// schema/*.sql), or a private one in a temporary directory when HUB_PGDIR is
// unset. Policies are global per kind, so every test makes kinds of its own
// (tfb_<random>, ack_timeout_ms 0 unless it needs otherwise) and tenants of
// its own; everything is removed at the end, so the file passes again on the
// same cluster. hub.fallback_plan() and hub.delivery_claim() serve the whole
// database, so a test may also handle rows that are not its own: assertions
// look only at the test's own events.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { schemaFiles, psqlBinary } from './lib/db.mjs';

const sourceDir = process.env.HUB_SOURCE_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pgScript = join(sourceDir, 'scripts', 'pg.sh');
const schemaDir = join(sourceDir, 'schema');

let pgdir;
let ownCluster = false;
let url;
let pool;
const clients = new Set();
const tenants = new Set();
const kinds = new Set();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = () => randomBytes(4).toString('hex');

function run(file, args, timeout = 180_000) {
  return new Promise((res, rej) => {
    execFile(file, args, { timeout }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${file} ${args.join(' ')} failed (${err.code ?? err.signal}):\n${stderr}${stdout}`;
        rej(err);
      } else res({ stdout, stderr });
    });
  });
}
const pgsh = (...args) => run(pgScript, args);

async function connect() {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  clients.add(c);
  return c;
}

async function disconnect(c) {
  clients.delete(c);
  await c.end().catch(() => {});
}

async function q(text, params = [], on = pool) {
  return (await on.query(text, params)).rows;
}

/** A demo tenant of this file, removed by `after`. */
async function newTenant(prefix) {
  const name = `t_fb_${prefix}_${hex()}`;
  tenants.add(name);
  await q('SELECT hub.create_demo_tenant($1)', [name]);
  return name;
}

/** A policy of a kind of its own; resolves with the kind. */
async function newKind({ timeout = 0, fallback = [], always = [], maxAge = 3_600_000, all = false } = {}) {
  const kind = `tfb_${hex()}`;
  kinds.add(kind);
  await q('INSERT INTO hub.policies (kind, ack_timeout_ms, fallback, always, max_age_ms, fallback_all) VALUES ($1, $2, $3, $4, $5, $6)',
    [kind, timeout, fallback, always, maxAge, all]);
  return kind;
}

/** A kind with no policy row at all (still removed by `after`, in case). */
function bareKind() {
  const kind = `tfb_${hex()}`;
  kinds.add(kind);
  return kind;
}

async function addUser(tenant, { id, name = 'Usuario', role = 'RESIDENT', unitId = null, token = null, phone = null, email = null, locale }) {
  const cols = ['id', 'name', 'role', '"unitId"', '"deviceToken"', '"phoneNumber"', 'email'];
  const vals = [id, name, role, unitId, token, phone, email];
  if (locale) {
    cols.push('locale');
    vals.push(locale);
  }
  await q(`INSERT INTO "${tenant}"."User" (${cols.join(', ')}) VALUES (${vals.map((_, i) => `$${i + 1}`).join(', ')})`, vals);
  return id;
}

async function emit(tenant, kind, rooms, { data = {}, priority = 'normal', ack = false, on = pool } = {}) {
  const r = await on.query('SELECT hub.emit($1, $2, $3::text[], $4::jsonb, $5, $6) AS id', [tenant, kind, rooms, JSON.stringify(data), priority, ack]);
  return Number(r.rows[0].id);
}

async function jobsOf(ids) {
  const rows = await q('SELECT event_id, phase, tenant, due_at, done_at FROM hub.fallback_jobs WHERE event_id = ANY ($1) ORDER BY event_id, phase', [ids]);
  return rows.map((r) => ({ ...r, event_id: Number(r.event_id) }));
}

/**
 * Calls hub.fallback_plan() until every job of `ids` is done; resolves with
 * this file's view of what was returned: [{event_id, phase, planned}] for `ids`.
 */
async function planOwn(ids, { on = pool, limit = 1000, timeoutMs = 20_000 } = {}) {
  const mine = new Set(ids.map(Number));
  const got = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await q('SELECT event_id, phase, planned FROM hub.fallback_plan($1)', [limit], on);
    for (const r of rows) if (mine.has(Number(r.event_id))) got.push({ event_id: Number(r.event_id), phase: r.phase, planned: r.planned });
    const [{ open }] = await q('SELECT count(*)::int AS open FROM hub.fallback_jobs WHERE event_id = ANY ($1) AND done_at IS NULL', [ids]);
    if (open === 0) return got;
    if (Date.now() > deadline) throw new Error(`${open} jobs of ${ids.length} events still open`);
    if (rows.length < limit) await sleep(20);
  }
}

async function deliveriesOf(id) {
  return q(`SELECT user_id, channel, status, detail, origin, address, locale, attempts
              FROM hub.deliveries WHERE event_id = $1 ORDER BY user_id, channel`, [id]);
}

/** Deliveries of event id as "user channel status[ detail]" lines, ws rows left out. */
async function summary(id) {
  return (await deliveriesOf(id)).filter((d) => d.channel !== 'ws')
    .map((d) => `${d.user_id} ${d.channel} ${d.status}${d.detail ? ` (${d.detail})` : ''}`);
}

/** hub.delivery_claim() filtered to this file's events `ids`. */
async function claimOwn(ids, channel, { limit = 1000, leaseMs = 60_000, hub = 'test-hub', on = pool } = {}) {
  const mine = new Set(ids.map(Number));
  const rows = await q('SELECT * FROM hub.delivery_claim($1, $2, $3, $4)', [channel, limit, leaseMs, hub], on);
  return rows.filter((r) => mine.has(Number(r.event_id))).map((r) => ({ ...r, event_id: Number(r.event_id) }));
}

async function result(id, user, channel, outcome, detail = null, retryMs = 0, on = pool) {
  const [r] = await q('SELECT hub.delivery_result($1, $2, $3, $4, $5, $6) AS next', [id, user, channel, outcome, detail, retryMs], on);
  return r.next;
}

// roles: the ackers' roles (hub.record_acks' fourth argument); guards by
// default, null to call the function without roles.
async function acks(ids, tenantsOf, users, on = pool, roles = ids.map(() => 'guard')) {
  const [r] = roles === null
    ? await q('SELECT hub.record_acks($1::bigint[], $2::text[], $3::text[]) AS n', [ids, tenantsOf, users], on)
    : await q('SELECT hub.record_acks($1::bigint[], $2::text[], $3::text[], $4::text[]) AS n', [ids, tenantsOf, users, roles], on);
  return r.n;
}

async function sent(ids, tenantsOf, users, on = pool) {
  const [r] = await q('SELECT hub.record_sent($1::bigint[], $2::text[], $3::text[]) AS n', [ids, tenantsOf, users], on);
  return r.n;
}

/** Resolves once backend pid waits on a lock (a row or a transaction). */
async function waitUntilLocked(pid, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await q('SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (r?.wait_event_type === 'Lock') return;
    if (Date.now() > deadline) throw new Error(`backend ${pid} never waited on a lock`);
    await sleep(10);
  }
}

/** A listener on channel; got() is the number of notifications so far. */
async function listen(channel) {
  const c = await connect();
  let n = 0;
  c.on('notification', (m) => { if (m.channel === channel) n++; });
  await c.query(`LISTEN ${channel}`);
  return {
    got: () => n,
    async waitFor(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (n < count) {
        if (Date.now() > deadline) throw new Error(`no NOTIFY ${channel} within ${timeoutMs} ms`);
        await sleep(10);
      }
    },
    close: () => disconnect(c),
  };
}

async function rejects22023(fn, re, what) {
  await assert.rejects(fn, (err) => {
    assert.equal(err.code, '22023', `${what}: expected SQLSTATE 22023, got ${err.code} ${err.message}`);
    assert.match(err.message, re, what);
    return true;
  }, `${what}: accepted`);
}

/** Removes every row this file made for tenant list ts (events, jobs, deliveries, claims). */
async function purgeTenants(ts) {
  if (ts.length === 0) return;
  await q('DELETE FROM hub.fallback_jobs WHERE tenant = ANY ($1)', [ts]);
  await q('DELETE FROM hub.deliveries WHERE tenant = ANY ($1)', [ts]);
  await q('DELETE FROM hub.claims WHERE tenant = ANY ($1)', [ts]);
  await q('DELETE FROM hub.outbox WHERE tenant = ANY ($1)', [ts]);
}

/**
 * test() that removes the rows of the tenants it made when it ends, pass or
 * fail: pending rows left behind would be claimed ahead of the next test's
 * (hub.delivery_claim serves the oldest first).
 */
function ftest(name, fn) {
  test(name, async (t) => {
    const had = new Set(tenants);
    try {
      await fn(t);
    } finally {
      await purgeTenants([...tenants].filter((x) => !had.has(x)));
    }
  });
}

before(async () => {
  pgdir = process.env.HUB_PGDIR;
  if (!pgdir) {
    pgdir = join(mkdtempSync(join(tmpdir(), 'armonia-fallback-')), 'pg');
    ownCluster = true;
  }
  await pgsh('start', pgdir);
  url = readFileSync(join(pgdir, 'url'), 'utf8').trim();
  pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on('error', () => {});
});

after(async () => {
  for (const c of [...clients]) await disconnect(c);
  if (pool) {
    try {
      const ts = [...tenants];
      await purgeTenants(ts);
      for (const t of ts) await q(`DROP SCHEMA IF EXISTS "${t}" CASCADE`);
      await q('DELETE FROM hub.policies WHERE kind = ANY ($1)', [[...kinds]]);
    } catch (err) {
      process.stderr.write(`cleanup failed: ${err.message}\n`);
    }
    await pool.end().catch(() => {});
  }
  if (ownCluster) {
    await pgsh('stop', pgdir).catch((err) => process.stderr.write(`${err.message}\n`));
    rmSync(dirname(pgdir), { recursive: true, force: true });
  }
});

ftest('schema/*.sql in a fresh database, twice: fallback_all true for panic only when the column is born, one trigger each', async () => {
  const dbName = `fb_fresh_${hex()}`;
  await q(`CREATE DATABASE ${dbName}`);
  const fresh = new URL(url);
  fresh.pathname = `/${dbName}`;
  const files = schemaFiles();
  assert.ok(files.includes('070_fallback.sql'));
  const apply = async (list) => {
    const r = await run(psqlBinary(), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', fresh.href, ...list.flatMap((f) => ['-f', join(schemaDir, f)])]);
    assert.doesNotMatch(r.stderr, /ERROR/);
  };
  const c = new pg.Client({ connectionString: fresh.href });
  c.on('error', () => {});
  try {
    await apply(files);
    await apply(files);
    await c.connect();
    const pol = await q('SELECT kind, fallback_all FROM hub.policies ORDER BY kind', [], c);
    assert.deepEqual(pol, [
      { kind: 'announcement', fallback_all: false },
      { kind: 'panic', fallback_all: true },
      { kind: 'payment', fallback_all: false },
      { kind: 'visitor', fallback_all: false },
    ]);
    assert.ok(!pol.some((p) => p.kind === 'panic_claimed'), 'panic_claimed needs no policy');

    // An operator turns escalation off; re-applying must keep the edit.
    await q("UPDATE hub.policies SET fallback_all = false WHERE kind = 'panic'", [], c);
    await apply(['070_fallback.sql']);
    const [p] = await q("SELECT fallback_all FROM hub.policies WHERE kind = 'panic'", [], c);
    assert.equal(p.fallback_all, false, 're-applying 070 overrode an operator edit');

    const trig = await q(`SELECT tgrelid::regclass::text AS rel, tgname FROM pg_trigger
                           WHERE tgrelid IN ('hub.outbox'::regclass, 'hub.policies'::regclass) AND NOT tgisinternal
                           ORDER BY 1, 2`, [], c);
    assert.deepEqual(trig.map((t) => `${t.rel} ${t.tgname}`),
      ['hub.outbox outbox_assign_seq', 'hub.outbox outbox_fallback_jobs', 'hub.policies policies_notify']);
    const idx = await q(`SELECT indexname FROM pg_indexes WHERE schemaname = 'hub'
                          AND indexname IN ('deliveries_pending_due', 'fallback_jobs_due') ORDER BY 1`, [], c);
    assert.deepEqual(idx.map((i) => i.indexname), ['deliveries_pending_due', 'fallback_jobs_due']);
    const cols = await q(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'hub' AND table_name = 'deliveries'
                           AND column_name IN ('origin', 'address', 'locale', 'lease_until', 'leased_by') ORDER BY 1`, [], c);
    assert.equal(cols.length, 5);
  } finally {
    await c.end().catch(() => {});
    await q(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  }
});

ftest('hub.policies: any insert, update or delete sends NOTIFY hub_policies', async () => {
  const l = await listen('hub_policies');
  try {
    const kind = await newKind({ fallback: ['push'] });
    await l.waitFor(1);
    await q('UPDATE hub.policies SET ack_timeout_ms = 5 WHERE kind = $1', [kind]);
    await l.waitFor(2);
    await q('DELETE FROM hub.policies WHERE kind = $1', [kind]);
    await l.waitFor(3);
  } finally {
    await l.close();
  }
});

ftest('outbox trigger: jobs for a kind with always and/or fallback channels, due at created_at (+ ack timeout); none without a policy', async () => {
  const t = await newTenant('jobs');
  const both = await newKind({ timeout: 5000, fallback: ['push', 'sms'], always: ['email'] });
  const onlyFb = await newKind({ timeout: 1500, fallback: ['sms'] });
  const onlyAlways = await newKind({ timeout: 1500, always: ['push'] });
  const neither = await newKind({ timeout: 1500 });
  const none = bareKind();
  const ids = {};
  for (const [name, kind] of Object.entries({ both, onlyFb, onlyAlways, neither, none })) ids[name] = await emit(t, kind, ['all']);

  const rows = await q(`SELECT j.event_id, j.phase, j.tenant, j.done_at,
                               extract(epoch FROM j.due_at - o.created_at) * 1000 AS after_ms
                          FROM hub.fallback_jobs j JOIN hub.outbox o ON o.id = j.event_id
                         WHERE o.tenant = $1 ORDER BY j.event_id, j.phase`, [t]);
  const seen = rows.map((r) => `${Number(r.event_id)} ${r.phase} ${Number(r.after_ms)}`);
  assert.deepEqual(seen, [
    `${ids.both} always 0`,
    `${ids.both} fallback 5000`,
    `${ids.onlyFb} fallback 1500`,
    `${ids.onlyAlways} always 0`,
  ]);
  assert.ok(rows.every((r) => r.tenant === t && r.done_at === null));

  // A rolled-back emit leaves no job behind.
  const c = await connect();
  await c.query('BEGIN');
  const gone = await emit(t, both, ['all'], { on: c });
  await c.query('ROLLBACK');
  await disconnect(c);
  assert.deepEqual(await jobsOf([gone]), []);
});

ftest('plan (ordered): unreached users get the first channel they have an address for; earlier ones skipped with the right detail; reached users nothing', async () => {
  const t = await newTenant('plan');
  const kind = await newKind({ fallback: ['push', 'sms', 'email'] });
  await addUser(t, { id: 'acked', role: 'GUARD', token: 'tok-acked' });
  await addUser(t, { id: 'sentonly', role: 'GUARD', token: 'tok-sent', locale: 'en-US' });
  await addUser(t, { id: 'push', role: 'GUARD', token: 'tok-1', phone: '+573001112233', email: 'p@example.co' });
  await addUser(t, { id: 'sms', role: 'GUARD', token: '  ', phone: '+573004445566' });
  await addUser(t, { id: 'mail', role: 'ADMIN', email: 'admin@example.co' });
  await addUser(t, { id: 'nothing', role: 'GUARD' });
  await addUser(t, { id: 'resident', role: 'RESIDENT', token: 'tok-r' }); // not in the rooms

  const id = await emit(t, kind, ['role:guard', 'role:admin'], { ack: true, priority: 'critical' });
  assert.equal(await acks([id], [t], ['acked']), 1);
  assert.equal(await sent([id], [t], ['sentonly']), 1); // sent is not reached for an ack event

  const l = await listen('hub_deliveries');
  try {
    const got = await planOwn([id]);
    assert.deepEqual(got, [{ event_id: id, phase: 'fallback', planned: 4 }]);
    await l.waitFor(1);
  } finally {
    await l.close();
  }
  assert.deepEqual(await summary(id), [
    'mail email pending',
    'mail push skipped (no device token)',
    'mail sms skipped (no phone number)',
    'nothing email skipped (no e-mail address)',
    'nothing push skipped (no device token)',
    'nothing sms skipped (no phone number)',
    'push push pending',
    'sentonly push pending',
    'sms push skipped (no device token)',
    'sms sms pending',
  ]);
  const rows = await deliveriesOf(id);
  const byKey = Object.fromEntries(rows.map((r) => [`${r.user_id} ${r.channel}`, r]));
  assert.equal(byKey['push push'].address, 'tok-1');
  assert.equal(byKey['sms sms'].address, '+573004445566');
  assert.equal(byKey['mail email'].address, 'admin@example.co');
  assert.equal(byKey['sentonly push'].locale, 'en-US');
  assert.equal(byKey['push push'].locale, 'es-CO');
  assert.ok(rows.filter((r) => r.channel !== 'ws').every((r) => r.origin === 'fallback' && r.attempts === 0));
  const [due] = await q("SELECT bool_and(next_attempt_at <= now()) AS ok FROM hub.deliveries WHERE event_id = $1 AND status = 'pending'", [id]);
  assert.equal(due.ok, true);

  const [job] = await jobsOf([id]);
  assert.ok(job.done_at !== null, 'the job is done');
  // Planning again finds nothing of this event.
  const again = await q('SELECT event_id FROM hub.fallback_plan(1000)');
  assert.ok(!again.some((r) => Number(r.event_id) === id));
  assert.equal((await summary(id)).length, 10);
});

ftest('plan: for events without ack a ws "sent" mark counts as reached', async () => {
  const t = await newTenant('plansent');
  const kind = await newKind({ fallback: ['push'] });
  await addUser(t, { id: 'a', unitId: '101', token: 'tok-a' });
  await addUser(t, { id: 'b', unitId: '101', token: 'tok-b' });
  await addUser(t, { id: 'c', unitId: '101', token: 'tok-c' });
  const id = await emit(t, kind, ['unit:101']);
  assert.equal(await sent([id], [t], ['a']), 1);
  assert.equal(await acks([id], [t], ['b']), 1);
  const got = await planOwn([id]);
  assert.deepEqual(got, [{ event_id: id, phase: 'fallback', planned: 1 }]);
  assert.deepEqual(await summary(id), ['c push pending']);
});

ftest('plan: fallback_all gives every fallback channel; always reaches everyone at once; one row per channel when both phases name it', async () => {
  const t = await newTenant('planall');
  const escalate = await newKind({ fallback: ['push', 'sms'], all: true });
  await addUser(t, { id: 'g1', role: 'GUARD', token: 'tok-1', phone: '+573001' });
  await addUser(t, { id: 'g2', role: 'GUARD', phone: '+573002' });
  await addUser(t, { id: 'g3', role: 'GUARD', token: 'tok-3', phone: '+573003' });
  const e1 = await emit(t, escalate, ['role:guard'], { ack: true });
  await acks([e1], [t], ['g3']);
  assert.deepEqual(await planOwn([e1]), [{ event_id: e1, phase: 'fallback', planned: 3 }]);
  assert.deepEqual(await summary(e1), [
    'g1 push pending', 'g1 sms pending',
    'g2 push skipped (no device token)', 'g2 sms pending',
  ]);

  // always {push}, fallback {push, sms} all at once: the unreached get push
  // once (from the always phase) and sms; the reached get the always push.
  const mixed = await newKind({ always: ['push'], fallback: ['push', 'sms'], all: true });
  const e2 = await emit(t, mixed, ['role:guard'], { ack: true });
  await acks([e2], [t], ['g3']);
  const got = await planOwn([e2]);
  assert.deepEqual(got.sort((a, b) => a.phase.localeCompare(b.phase)), [
    { event_id: e2, phase: 'always', planned: 2 },
    { event_id: e2, phase: 'fallback', planned: 2 },
  ]);
  assert.deepEqual(await summary(e2), [
    'g1 push pending', 'g1 sms pending',
    'g2 push skipped (no device token)', 'g2 sms pending',
    'g3 push pending',
  ]);
  const origins = await q("SELECT user_id, channel, origin FROM hub.deliveries WHERE event_id = $1 AND channel <> 'ws' ORDER BY 1, 2", [e2]);
  assert.deepEqual(origins.map((o) => `${o.user_id} ${o.channel} ${o.origin}`), [
    'g1 push always', 'g1 sms fallback', 'g2 push always', 'g2 sms fallback', 'g3 push always',
  ]);

  // An announcement-like kind: always only, everyone, reached or not.
  const ann = await newKind({ always: ['push', 'sms'] });
  const e3 = await emit(t, ann, ['all'], { priority: 'critical' });
  await sent([e3], [t], ['g1']);
  assert.deepEqual(await planOwn([e3]), [{ event_id: e3, phase: 'always', planned: 5 }]);
  assert.deepEqual(await summary(e3), [
    'g1 push pending', 'g1 sms pending',
    'g2 push skipped (no device token)', 'g2 sms pending',
    'g3 push pending', 'g3 sms pending',
  ]);
});

ftest('plan: max age, purged events, deleted policies close jobs without rows; policy edits apply to events not yet planned', async () => {
  const t = await newTenant('planage');
  await addUser(t, { id: 'u', token: 'tok', phone: '+573001' });
  const old = await newKind({ fallback: ['push'], maxAge: 1 });
  const eOld = await emit(t, old, ['all']);
  const purgedKind = await newKind({ fallback: ['push'] });
  const ePurged = await emit(t, purgedKind, ['all']);
  await q('DELETE FROM hub.outbox WHERE id = $1', [ePurged]);
  const dropped = await newKind({ fallback: ['push'] });
  const eDropped = await emit(t, dropped, ['all']);
  await q('DELETE FROM hub.policies WHERE kind = $1', [dropped]);
  const edited = await newKind({ fallback: ['push'] });
  const eEdited = await emit(t, edited, ['all']);
  await q("UPDATE hub.policies SET fallback = '{sms}' WHERE kind = $1", [edited]);
  await sleep(20);

  const got = await planOwn([eOld, ePurged, eDropped, eEdited]);
  assert.deepEqual(got.sort((a, b) => a.event_id - b.event_id), [
    { event_id: eOld, phase: 'fallback', planned: 0 },
    { event_id: ePurged, phase: 'fallback', planned: 0 },
    { event_id: eDropped, phase: 'fallback', planned: 0 },
    { event_id: eEdited, phase: 'fallback', planned: 1 },
  ]);
  for (const e of [eOld, ePurged, eDropped]) assert.deepEqual(await summary(e), []);
  assert.deepEqual(await summary(eEdited), ['u sms pending']);
  // The purged event's job is deleted (nothing will ever purge it later);
  // the others are closed and go when retention purges their events.
  const left = await jobsOf([eOld, ePurged, eDropped, eEdited]);
  assert.deepEqual(left.map((j) => j.event_id), [eOld, eDropped, eEdited]);
  assert.ok(left.every((j) => j.done_at !== null));
});

ftest('retention: hub.purge_outbox() takes the events\' finished jobs and panic claims with them; open jobs wait to be planned, the delivery log stays', async (t) => {
  // Purging is database-wide and moves the resume horizon for everyone:
  // only on this file's own cluster (as CTest runs it), never a shared one.
  if (!ownCluster) return t.skip('HUB_PGDIR is shared: purging would move its resume horizon');
  const tn = await newTenant('retention');
  await addUser(tn, { id: 'res', role: 'RESIDENT', unitId: '302', token: 'tok-res' });
  await addUser(tn, { id: 'g1', name: 'Carlos Pérez', role: 'GUARD' });
  const now = await newKind({ always: ['push'], fallback: ['push'] });
  const eDone = await emit(tn, now, ['user:res']);
  const later = await newKind({ timeout: 3_600_000, fallback: ['push'] });
  const eOpen = await emit(tn, later, ['user:res']);
  await q(`INSERT INTO "${tn}"."PanicAlert" ("userId", "unitId", message) VALUES ('res', '302', 'Ayuda')`);
  const [{ id: panicId }] = await q("SELECT id::int AS id FROM hub.outbox WHERE tenant = $1 AND kind = 'panic'", [tn]);
  assert.equal(await acks([panicId], [tn], ['g1']), 1);
  await planOwn([eDone]);
  assert.deepEqual((await jobsOf([eDone])).map((j) => [j.phase, j.done_at !== null]), [['always', true], ['fallback', true]]);
  assert.equal((await jobsOf([eOpen]))[0].done_at, null, 'not due for an hour');
  assert.equal((await q('SELECT count(*)::int AS n FROM hub.claims WHERE event_id = $1', [panicId]))[0].n, 1);
  const logged = (await deliveriesOf(eDone)).length;
  assert.ok(logged > 0, 'the plan wrote delivery rows');

  // Everything of this tenant (the three events and panic_claimed) is
  // older than the retention; nothing else in this cluster is.
  const mine = (await q('SELECT id::int AS id FROM hub.outbox WHERE tenant = $1', [tn])).map((r) => r.id);
  await q("UPDATE hub.outbox SET committed_at = now() - interval '10 days' WHERE id = ANY ($1)", [mine]);
  const [{ n }] = await q("SELECT hub.purge_outbox(interval '9 days', 1000) AS n");
  assert.equal(n, mine.length);
  assert.equal((await q('SELECT count(*)::int AS n FROM hub.outbox WHERE id = ANY ($1)', [mine]))[0].n, 0);
  assert.deepEqual(await jobsOf([eDone]), [], 'finished jobs go with their event');
  assert.equal((await q('SELECT count(*)::int AS n FROM hub.claims WHERE event_id = $1', [panicId]))[0].n, 0, 'the claim goes with its panic');
  assert.equal((await deliveriesOf(eDone)).length, logged, 'the delivery log is kept');
  const open = await jobsOf([eOpen]);
  assert.equal(open.length, 1, 'an open job stays until it is due');

  // When it comes due, planning finds the event gone and deletes the job.
  await q("UPDATE hub.fallback_jobs SET due_at = now() - interval '1 second' WHERE event_id = $1", [eOpen]);
  assert.deepEqual(await planOwn([eOpen]), [{ event_id: eOpen, phase: 'fallback', planned: 0 }]);
  assert.deepEqual(await jobsOf([eOpen]), []);
});

ftest('plan: a job whose audience cannot be read is retried a minute later and holds nobody back', async () => {
  // A schema that is a tenant for hub.emit but has no "User" table, so
  // hub.audience() fails for it (as a broken custom layout would).
  const broken = `t_fb_broken_${hex()}`;
  tenants.add(broken);
  await q(`CREATE SCHEMA "${broken}"`);
  await q('SELECT hub.register_tenant($1)', [broken]);
  const t = await newTenant('planok');
  await addUser(t, { id: 'u', token: 'tok' });
  const kind = await newKind({ fallback: ['push'] });
  const bad = await emit(broken, kind, ['all']);
  const good = await emit(t, kind, ['all']);
  const c = await connect();
  const warnings = [];
  c.on('notice', (n) => warnings.push(n.message));
  try {
    const got = await planOwn([good], { on: c });
    assert.deepEqual(got, [{ event_id: good, phase: 'fallback', planned: 1 }]);
  } finally {
    await disconnect(c);
  }
  const [job] = await q(`SELECT done_at, due_at > now() + interval '50 seconds' AS later
                           FROM hub.fallback_jobs WHERE event_id = $1`, [bad]);
  assert.deepEqual(job, { done_at: null, later: true });
  assert.ok(warnings.some((w) => w.includes(`event ${bad}`)), `no warning about event ${bad}: ${JSON.stringify(warnings)}`);
  assert.deepEqual(await summary(good), ['u push pending']);
});

ftest('plan: an event committed late gets its full ack timeout from the commit, not from its creation', async () => {
  const t = await newTenant('planlate');
  await addUser(t, { id: 'u', token: 'tok' });
  const kind = await newKind({ timeout: 1500, fallback: ['push'] });
  const c = await connect();
  await c.query('BEGIN');
  const id = await emit(t, kind, ['all'], { ack: true, on: c });
  await sleep(1700); // the producer's transaction outlives the ack timeout
  await c.query('COMMIT');
  await disconnect(c);

  // Due by created_at, but the recipients only just could get it.
  const first = (await q('SELECT event_id, planned FROM hub.fallback_plan(1000)')).filter((r) => Number(r.event_id) === id);
  assert.deepEqual(first.map((r) => r.planned), [0]);
  const [job] = await q(`SELECT j.done_at, j.due_at = o.committed_at + interval '1500 ms' AS moved
                           FROM hub.fallback_jobs j JOIN hub.outbox o ON o.id = j.event_id WHERE j.event_id = $1`, [id]);
  assert.equal(job.done_at, null, 'the job must wait for ack_timeout_ms after the commit');
  assert.equal(job.moved, true);
  assert.deepEqual(await summary(id), []);

  const got = await planOwn([id], { timeoutMs: 10_000 });
  assert.deepEqual(got, [{ event_id: id, phase: 'fallback', planned: 1 }]);
  assert.deepEqual(await summary(id), ['u push pending']);
});

ftest('plan: two connections planning 400 due jobs at once never plan a job twice', async () => {
  const t = await newTenant('planrace');
  const kind = await newKind({ fallback: ['push'] });
  for (const u of ['a', 'b', 'c']) await addUser(t, { id: u, token: `tok-${u}` });
  const emitMany = async (n) => {
    const r = await q('SELECT hub.emit($1, $2, ARRAY[\'all\'], jsonb_build_object(\'i\', g)) AS id FROM generate_series(1, $3) g', [t, kind, n]);
    return r.map((x) => Number(x.id));
  };

  // Held open: a second planner skips the jobs the first has locked.
  const batch1 = await emitMany(200);
  const A = await connect();
  const B = await connect();
  const mine = new Set(batch1);
  await A.query('BEGIN');
  const fromA = (await q('SELECT event_id FROM hub.fallback_plan(100)', [], A)).map((r) => Number(r.event_id)).filter((e) => mine.has(e));
  const fromB = (await q('SELECT event_id FROM hub.fallback_plan(1000)', [], B)).map((r) => Number(r.event_id)).filter((e) => mine.has(e));
  await A.query('COMMIT');
  assert.ok(fromA.length > 0 && fromB.length > 0);
  assert.deepEqual(fromA.filter((e) => fromB.includes(e)), [], 'B planned jobs A held');
  assert.equal(new Set([...fromA, ...fromB]).size, fromA.length + fromB.length);
  assert.equal(fromA.length + fromB.length, 200);

  // Free-running: both loop with small batches until nothing of ours is left.
  const batch2 = await emitMany(200);
  const ours = new Set(batch2);
  const loop = async (c) => {
    const got = [];
    for (;;) {
      const rows = await q('SELECT event_id, phase, planned FROM hub.fallback_plan(7)', [], c);
      for (const r of rows) if (ours.has(Number(r.event_id))) got.push(r);
      if (rows.length === 0) {
        const [{ open }] = await q('SELECT count(*)::int AS open FROM hub.fallback_jobs WHERE event_id = ANY ($1) AND done_at IS NULL', [batch2], c);
        if (open === 0) return got;
        await sleep(5);
      }
    }
  };
  const [ra, rb] = await Promise.all([loop(A), loop(B)]);
  await disconnect(A);
  await disconnect(B);
  const all = [...ra, ...rb];
  const keys = all.map((r) => `${r.event_id} ${r.phase}`);
  assert.equal(new Set(keys).size, keys.length, 'a job was planned twice');
  assert.equal(keys.length, 200);
  assert.ok(ra.length > 0 && rb.length > 0, `both planners should get work (A ${ra.length}, B ${rb.length})`);
  const plannedSum = all.reduce((s, r) => s + r.planned, 0);
  const [{ n }] = await q("SELECT count(*)::int AS n FROM hub.deliveries WHERE event_id = ANY ($1) AND status = 'pending'", [batch2]);
  assert.equal(plannedSum, 600);
  assert.equal(n, 600);
  process.stdout.write(`# plan race: planner A ${ra.length} jobs, planner B ${rb.length} jobs\n`);
});

ftest('claim: leases a due row to one hub; nothing until the lease runs out, then again; returns the event with it', async () => {
  const t = await newTenant('claim');
  const kind = await newKind({ fallback: ['push'] });
  await addUser(t, { id: 'u1', token: 'tok-1', locale: 'en-US' });
  await addUser(t, { id: 'u2', token: 'tok-2' });
  const id = await emit(t, kind, ['all'], { data: { alertId: 'x1' }, priority: 'high', ack: true });
  await planOwn([id]);

  const first = await claimOwn([id], 'push', { leaseMs: 400, hub: 'hub-a' });
  assert.deepEqual(first.map((r) => r.user_id).sort(), ['u1', 'u2']);
  const [r1] = first.filter((r) => r.user_id === 'u1');
  const [ev] = await q('SELECT created_at FROM hub.outbox WHERE id = $1', [id]);
  assert.deepEqual({ ...r1, created_at: r1.created_at.getTime() }, {
    event_id: id, user_id: 'u1', channel: 'push', tenant: t, address: 'tok-1', locale: 'en-US',
    kind, priority: 'high', data: { alertId: 'x1' }, attempts: 0, created_at: ev.created_at.getTime(),
  });
  const lease = await q('SELECT user_id, leased_by, lease_until > now() AS live FROM hub.deliveries WHERE event_id = $1 AND channel = $2 ORDER BY 1', [id, 'push']);
  assert.deepEqual(lease, [{ user_id: 'u1', leased_by: 'hub-a', live: true }, { user_id: 'u2', leased_by: 'hub-a', live: true }]);

  assert.deepEqual(await claimOwn([id], 'push', { hub: 'hub-b' }), [], 'a leased row was claimed again before its lease ran out');
  assert.deepEqual(await claimOwn([id], 'sms', { hub: 'hub-b' }), []);
  await sleep(500);
  const again = await claimOwn([id], 'push', { hub: 'hub-b', limit: 1000 });
  assert.deepEqual(again.map((r) => r.user_id).sort(), ['u1', 'u2'], 'an expired lease must make the row due again');
  const [l2] = await q('SELECT leased_by FROM hub.deliveries WHERE event_id = $1 AND user_id = $2 AND channel = $3', [id, 'u1', 'push']);
  assert.equal(l2.leased_by, 'hub-b');

  // The limit is honoured.
  const id2 = await emit(t, kind, ['all']);
  await planOwn([id2]);
  const one = await q('SELECT event_id FROM hub.delivery_claim($1, 1, 60000, $2)', ['push', 'hub-c']);
  assert.ok(one.length <= 1);

  await rejects22023(() => q("SELECT * FROM hub.delivery_claim('ws', 1, 1000, 'h')"), /channel/, 'channel ws');
  await rejects22023(() => q("SELECT * FROM hub.delivery_claim('fax', 1, 1000, 'h')"), /channel/, 'channel fax');
  await rejects22023(() => q("SELECT * FROM hub.delivery_claim('push', -1, 1000, 'h')"), /limit/, 'negative limit');
  await rejects22023(() => q("SELECT * FROM hub.delivery_claim('push', 1, 0, 'h')"), /lease/, 'zero lease');
});

ftest('claim: rows of events older than max age or purged are skipped, never returned; rows due later wait', async () => {
  const t = await newTenant('claimstale');
  await addUser(t, { id: 'u', token: 'tok' });
  const aging = await newKind({ fallback: ['push'] });
  const eOld = await emit(t, aging, ['all']);
  const purging = await newKind({ fallback: ['push'] });
  const ePurged = await emit(t, purging, ['all']);
  const later = await newKind({ fallback: ['push'] });
  const eLater = await emit(t, later, ['all']);
  await planOwn([eOld, ePurged, eLater]);
  await q('UPDATE hub.policies SET max_age_ms = 1 WHERE kind = $1', [aging]);
  await q('DELETE FROM hub.outbox WHERE id = $1', [ePurged]);
  await q("UPDATE hub.deliveries SET next_attempt_at = now() + interval '1 hour' WHERE event_id = $1", [eLater]);

  assert.deepEqual(await claimOwn([eOld, ePurged, eLater], 'push'), []);
  assert.deepEqual(await summary(eOld), ['u push skipped (older than max age)']);
  assert.deepEqual(await summary(ePurged), ['u push skipped (event purged)']);
  assert.deepEqual(await summary(eLater), ['u push pending']);
  const [a] = await q('SELECT attempts FROM hub.deliveries WHERE event_id = $1 AND channel = $2', [eOld, 'push']);
  assert.equal(a.attempts, 0);
});

ftest('claim: two connections claiming at once never get the same row', async () => {
  const t = await newTenant('claimrace');
  const kind = await newKind({ fallback: ['sms'] });
  await q(`INSERT INTO "${t}"."User" (id, name, role, "phoneNumber")
           SELECT 'u' || g, 'U ' || g, 'RESIDENT', '+57300' || lpad(g::text, 7, '0') FROM generate_series(1, 150) g`);
  const e1 = await emit(t, kind, ['all']);
  await planOwn([e1]);

  // Held open: the second claimer skips what the first has locked.
  const A = await connect();
  const B = await connect();
  await A.query('BEGIN');
  const a1 = await claimOwn([e1], 'sms', { limit: 100, on: A, hub: 'A' });
  const b1 = await claimOwn([e1], 'sms', { limit: 1000, on: B, hub: 'B' });
  await A.query('COMMIT');
  const k = (r) => `${r.event_id} ${r.user_id}`;
  assert.deepEqual(a1.map(k).filter((x) => b1.map(k).includes(x)), []);
  assert.equal(a1.length + b1.length, 150);

  // Free-running: both loop with small batches until nothing of ours is left.
  const e2 = await emit(t, kind, ['all']);
  const e3 = await emit(t, kind, ['all']);
  await planOwn([e2, e3]);
  const ids = [e2, e3];
  const loop = async (c, hub) => {
    const got = [];
    for (let empty = 0; empty < 3;) {
      const rows = await claimOwn(ids, 'sms', { limit: 13, on: c, hub });
      got.push(...rows);
      empty = rows.length === 0 ? empty + 1 : 0;
    }
    return got;
  };
  const [ra, rb] = await Promise.all([loop(A, 'A'), loop(B, 'B')]);
  await disconnect(A);
  await disconnect(B);
  const keys = [...ra, ...rb].map(k);
  assert.equal(new Set(keys).size, keys.length, 'a row was claimed by both');
  assert.equal(keys.length, 300);
  process.stdout.write(`# claim race: claimer A ${ra.length} rows, claimer B ${rb.length} rows\n`);
});

ftest('result: sent, retry, failed, skipped; only a pending row changes; a repeat changes nothing', async () => {
  const t = await newTenant('result');
  const kind = await newKind({ fallback: ['push'] });
  for (const u of ['s', 'r', 'f', 'k']) await addUser(t, { id: u, token: `tok-${u}` });
  const id = await emit(t, kind, ['all']);
  await planOwn([id]);
  assert.equal((await claimOwn([id], 'push', { hub: 'h' })).length, 4);
  const row = async (u) => (await q(`SELECT status, attempts, detail, lease_until, leased_by,
                                            extract(epoch FROM next_attempt_at - now()) * 1000 AS due_in_ms
                                       FROM hub.deliveries WHERE event_id = $1 AND user_id = $2 AND channel = 'push'`, [id, u]))[0];

  assert.equal(await result(id, 's', 'push', 'sent', 'projects/p/messages/1'), null);
  let s = await row('s');
  assert.deepEqual([s.status, s.attempts, s.detail, s.lease_until], ['sent', 1, 'projects/p/messages/1', null]);
  // Idempotent: a second report (a hub retrying its write) changes nothing.
  assert.equal(await result(id, 's', 'push', 'sent', 'other'), null);
  assert.equal(await result(id, 's', 'push', 'failed', 'late'), null);
  s = await row('s');
  assert.deepEqual([s.status, s.attempts, s.detail], ['sent', 1, 'projects/p/messages/1']);

  assert.equal(await result(id, 'r', 'push', 'retry', 'HTTP 503', 60_000), null);
  const r = await row('r');
  assert.deepEqual([r.status, r.attempts, r.detail, r.lease_until], ['pending', 1, 'HTTP 503', null]);
  assert.ok(Number(r.due_in_ms) > 55_000 && Number(r.due_in_ms) <= 60_000, `due in ${r.due_in_ms} ms`);
  assert.deepEqual(await claimOwn([id], 'push'), [], 'a row waiting for its retry was claimed');
  assert.equal(await result(id, 'r', 'push', 'retry', 'HTTP 429', 0), null);
  const [again] = await claimOwn([id], 'push');
  assert.deepEqual([again.user_id, again.attempts], ['r', 2]);
  assert.equal(await result(id, 'r', 'push', 'sent', 'ok'), null);
  assert.deepEqual([(await row('r')).status, (await row('r')).attempts], ['sent', 3]);

  assert.equal(await result(id, 'f', 'push', 'failed', 'UNREGISTERED'), null); // last channel: no next
  const f = await row('f');
  assert.deepEqual([f.status, f.attempts, f.detail], ['failed', 1, 'UNREGISTERED']);

  assert.equal(await result(id, 'k', 'push', 'skipped', 'channel not configured'), null);
  const k = await row('k');
  assert.deepEqual([k.status, k.attempts, k.detail], ['skipped', 0, 'channel not configured']);

  // Unknown rows and bad outcomes.
  assert.equal(await result(id, 'nobody', 'push', 'sent'), null);
  await rejects22023(() => result(id, 'k', 'push', 'delivered'), /outcome/, 'outcome delivered');
  await rejects22023(() => result(id, 'k', 'push', null), /outcome/, 'outcome NULL');
});

ftest('result: deferred (open circuit, critical event) keeps the row pending without an attempt, due after retry_ms, and queues the next channel once', async () => {
  const t = await newTenant('deferred');
  const kind = await newKind({ fallback: ['push', 'sms'] });
  await addUser(t, { id: 'g', token: 'tok-g', phone: '+573001112233' });
  const id = await emit(t, kind, ['all'], { priority: 'critical', ack: true });
  await planOwn([id]);
  assert.deepEqual(await claimOwn([id], 'push').then((r) => r.map((x) => [x.user_id, x.priority])), [['g', 'critical']]);
  const push = async () => (await q(`SELECT status, attempts, detail, lease_until,
                                            extract(epoch FROM next_attempt_at - now()) * 1000 AS due_in_ms
                                       FROM hub.deliveries WHERE event_id = $1 AND user_id = 'g' AND channel = 'push'`, [id]))[0];

  const wait = 'provider unavailable (circuit open): waits for it to half-open';
  assert.equal(await result(id, 'g', 'push', 'deferred', wait, 30_000), 'sms', 'the next channel goes at once');
  let p = await push();
  assert.deepEqual([p.status, p.attempts, p.detail, p.lease_until], ['pending', 0, wait, null]);
  assert.ok(Number(p.due_in_ms) > 25_000 && Number(p.due_in_ms) <= 30_000, `due in ${p.due_in_ms} ms`);
  assert.deepEqual(await claimOwn([id], 'push'), [], 'a deferred row was claimed before it was due');
  assert.deepEqual(await summary(id), [`g push pending (${wait})`, 'g sms pending']);

  // Due again (the circuit half-opened) and still refused: deferred again,
  // no second SMS row, still no attempt counted.
  await q(`UPDATE hub.deliveries SET next_attempt_at = now() WHERE event_id = $1 AND channel = 'push'`, [id]);
  assert.equal((await claimOwn([id], 'push')).length, 1);
  assert.equal(await result(id, 'g', 'push', 'deferred', wait, 0), null, 'the SMS is queued already');
  assert.equal((await push()).attempts, 0);
  // The probe goes and works.
  assert.equal((await claimOwn([id], 'push')).length, 1);
  assert.equal(await result(id, 'g', 'push', 'sent', 'projects/p/messages/9'), null);
  p = await push();
  assert.deepEqual([p.status, p.attempts], ['sent', 1]);
  assert.equal(await result(id, 'g', 'push', 'deferred', wait, 0), null, 'a late deferral changes nothing');
  assert.equal((await push()).status, 'sent');
});

ftest('result: a failed or skipped fallback row queues the next channel, through missing addresses, to exhaustion; always and fallback_all rows do not', async () => {
  const t = await newTenant('chain');
  const kind = await newKind({ fallback: ['push', 'sms', 'email'] });
  await addUser(t, { id: 'a', token: 'tok-a', email: 'a@example.co' }); // no phone
  await addUser(t, { id: 'b', token: 'tok-b' }); // push only
  await addUser(t, { id: 'c', token: 'tok-c' }); // gets a phone later
  await addUser(t, { id: 'd', token: 'tok-d', phone: '+573009', locale: 'en-US' });
  const id = await emit(t, kind, ['all'], { ack: true });
  await planOwn([id]);
  assert.deepEqual(await summary(id), ['a push pending', 'b push pending', 'c push pending', 'd push pending']);

  const l = await listen('hub_deliveries');
  try {
    assert.equal(await result(id, 'a', 'push', 'failed', 'UNREGISTERED'), 'email');
    await l.waitFor(1);
  } finally {
    await l.close();
  }
  assert.equal(await result(id, 'a', 'push', 'failed', 'UNREGISTERED'), null, 'a repeat must not queue again');
  assert.equal(await result(id, 'b', 'push', 'failed', 'UNREGISTERED'), null);
  await q(`UPDATE "${t}"."User" SET "phoneNumber" = '+573005551234' WHERE id = 'c'`);
  assert.equal(await result(id, 'c', 'push', 'skipped', 'provider unavailable (circuit open)'), 'sms');
  assert.equal(await result(id, 'd', 'push', 'failed', 'INVALID_ARGUMENT'), 'sms');

  assert.deepEqual(await summary(id), [
    'a email pending', 'a push failed (UNREGISTERED)', 'a sms skipped (no phone number)',
    'b email skipped (no e-mail address)', 'b push failed (UNREGISTERED)', 'b sms skipped (no phone number)',
    'c push skipped (provider unavailable (circuit open))', 'c sms pending',
    'd push failed (INVALID_ARGUMENT)', 'd sms pending',
  ]);
  const rows = await deliveriesOf(id);
  const by = Object.fromEntries(rows.map((r) => [`${r.user_id} ${r.channel}`, r]));
  assert.equal(by['a email'].address, 'a@example.co');
  assert.equal(by['c sms'].address, '+573005551234', 'the address is read when the next channel is queued');
  assert.equal(by['d sms'].locale, 'en-US');
  assert.ok(['a email', 'c sms', 'd sms', 'a sms'].every((x) => by[x].origin === 'fallback'));

  // The queued channels are claimable at once; the chain runs to its end.
  const sms = await claimOwn([id], 'sms');
  assert.deepEqual(sms.map((r) => r.user_id).sort(), ['c', 'd']);
  assert.equal(await result(id, 'd', 'sms', 'failed', 'Twilio 21211'), null, 'd has no e-mail: exhausted');
  assert.equal(await result(id, 'c', 'sms', 'failed', 'Twilio 21614'), null);
  assert.deepEqual((await summary(id)).filter((x) => x.startsWith('c ') || x.startsWith('d ')), [
    'c email skipped (no e-mail address)', 'c push skipped (provider unavailable (circuit open))', 'c sms failed (Twilio 21614)',
    'd email skipped (no e-mail address)', 'd push failed (INVALID_ARGUMENT)', 'd sms failed (Twilio 21211)',
  ]);
  assert.equal(await result(id, 'a', 'email', 'sent', '250 OK'), null);

  // fallback_all and always rows do not chain.
  const all = await newKind({ fallback: ['push', 'sms'], all: true });
  const eAll = await emit(t, all, ['user:b']);
  await planOwn([eAll]);
  assert.equal(await result(eAll, 'b', 'push', 'failed', 'UNREGISTERED'), null);
  const alw = await newKind({ always: ['push'], fallback: ['sms'] });
  const eAlw = await emit(t, alw, ['user:d']);
  await sent([eAlw], [t], ['d']);
  await planOwn([eAlw]);
  assert.equal(await result(eAlw, 'd', 'push', 'failed', 'UNREGISTERED'), null);
  assert.deepEqual(await summary(eAlw), ['d push failed (UNREGISTERED)']);

  // The chain stops at a channel the always phase is already sending, and
  // passes over one it skipped.
  const both = await newKind({ always: ['sms'], fallback: ['push', 'sms', 'email'] });
  await addUser(t, { id: 'e', token: 'tok-e', phone: '+573007' });
  await addUser(t, { id: 'f', token: 'tok-f', email: 'f@example.co' });
  const eBoth = await emit(t, both, ['user:e', 'user:f'], { ack: true });
  await planOwn([eBoth]);
  assert.equal(await result(eBoth, 'e', 'push', 'failed', 'UNREGISTERED'), null, 'e sms is pending from the always phase');
  assert.equal(await result(eBoth, 'f', 'push', 'failed', 'UNREGISTERED'), 'email', 'f sms was skipped: go on to email');
  assert.deepEqual(await summary(eBoth), [
    'e push failed (UNREGISTERED)', 'e sms pending',
    'f email pending', 'f push failed (UNREGISTERED)', 'f sms skipped (no phone number)',
  ]);
});

ftest('record_acks / record_sent: unknown ids and another tenant\'s events write nothing; duplicates count once; acked is never downgraded', async () => {
  const t1 = await newTenant('acks1');
  const t2 = await newTenant('acks2');
  const kind = bareKind();
  const e = await emit(t1, kind, ['all'], { ack: true });
  const [{ top }] = await q('SELECT coalesce(max(id), 0) + 1000000 AS top FROM hub.outbox');

  assert.equal(await acks([e], [t2], ['u']), 0, 'an ack naming another tenant was written');
  assert.equal(await acks([Number(top)], [t1], ['u']), 0, 'an ack of an unknown event was written');
  assert.equal(await sent([e], [t2], ['u']), 0);
  assert.equal(await sent([Number(top)], [t1], ['u']), 0);
  assert.equal(await acks([e], [t1], [null]), 0);
  assert.equal(await acks([], [], []), 0);
  assert.deepEqual(await deliveriesOf(e), []);

  assert.equal(await sent([e, e], [t1, t1], ['u', 'u']), 1);
  assert.equal(await sent([e], [t1], ['u']), 0, 'a second sent mark is no new row');
  assert.equal(await acks([e, e, e], [t1, t1, t2], ['u', 'u', 'v']), 1, 'duplicates count once, the foreign one not at all');
  assert.equal(await sent([e], [t1], ['u']), 0);
  assert.equal(await acks([e], [t1], ['v']), 1);
  assert.equal(await sent([e, e], [t1, t1], ['v', 'w']), 1, 'only w is new');
  const rows = await deliveriesOf(e);
  assert.deepEqual(rows.map((r) => `${r.user_id} ${r.channel} ${r.status}`), ['u ws acked', 'v ws acked', 'w ws sent']);
  assert.ok(rows.every((r) => r.origin === null));
  const [{ n }] = await q('SELECT count(*)::int AS n FROM hub.deliveries WHERE tenant = $1', [t2]);
  assert.equal(n, 0);
});

ftest('record_acks: a panic is claimed once, by the first ack, also when two hubs ack it at once; panic_claimed names the guard', async () => {
  const t = await newTenant('claimpanic');
  const T = `"${t}"`;
  await addUser(t, { id: 'res', name: 'Ana Gómez', role: 'RESIDENT', unitId: '302' });
  await addUser(t, { id: 'g1', name: 'Carlos Pérez', role: 'GUARD' });
  await addUser(t, { id: 'g2', name: 'Luisa Martínez', role: 'GUARD' });
  await addUser(t, { id: 'adm', name: 'Administración', role: 'ADMIN' });
  const panic = async () => {
    const [a] = await q(`INSERT INTO ${T}."PanicAlert" ("userId", "unitId", message) VALUES ('res', '302', 'Ayuda') RETURNING id`);
    const [o] = await q("SELECT id FROM hub.outbox WHERE tenant = $1 AND kind = 'panic' AND data->>'alertId' = $2", [t, a.id]);
    return { alertId: a.id, id: Number(o.id) };
  };
  const claimedEvents = async () => (await q(`SELECT rooms, priority, ack, data FROM hub.outbox
                                               WHERE tenant = $1 AND kind = 'panic_claimed' ORDER BY id`, [t]));

  // Deterministic: hub A's ack is in flight (not committed) when hub B's comes.
  const p1 = await panic();
  const A = await connect();
  const B = await connect();
  await A.query('BEGIN');
  assert.equal(await acks([p1.id], [t], ['g1'], A), 1);
  const [{ pid }] = await q('SELECT pg_backend_pid() AS pid', [], B);
  const fromB = acks([p1.id], [t], ['g2'], B);
  await waitUntilLocked(pid);
  await A.query('COMMIT');
  assert.equal(await fromB, 1, 'B still records its ack');
  let ev = await claimedEvents();
  assert.equal(ev.length, 1, 'exactly one panic_claimed');
  assert.deepEqual(ev[0].rooms, ['role:guard', 'role:admin']);
  assert.equal(ev[0].priority, 'high');
  assert.equal(ev[0].ack, false);
  const { claimedAt, ...rest } = ev[0].data;
  assert.deepEqual(rest, { eventId: p1.id, alertId: p1.alertId, unitId: '302', guardId: 'g1', guardName: 'Carlos Pérez' });
  assert.ok(!Number.isNaN(Date.parse(claimedAt)));
  const [claim] = await q('SELECT tenant, user_id FROM hub.claims WHERE event_id = $1', [p1.id]);
  assert.deepEqual(claim, { tenant: t, user_id: 'g1' });
  const ws = await deliveriesOf(p1.id);
  assert.deepEqual(ws.map((r) => `${r.user_id} ${r.channel} ${r.status}`), ['g1 ws acked', 'g2 ws acked']);

  // Free-running: 20 panics, each acked by two hubs at the same moment.
  const many = [];
  for (let i = 0; i < 20; i++) many.push(await panic());
  const ackAll = async (c, first, second) => {
    for (const [i, p] of many.entries()) await acks([p.id], [t], [i % 2 ? first : second], c);
  };
  await Promise.all([ackAll(A, 'g1', 'g2'), ackAll(B, 'g2', 'g1')]);
  ev = await claimedEvents();
  assert.equal(ev.length, 21);
  const perEvent = new Map();
  for (const e of ev) perEvent.set(e.data.eventId, (perEvent.get(e.data.eventId) ?? 0) + 1);
  for (const p of many) assert.equal(perEvent.get(p.id), 1, `panic ${p.id} claimed ${perEvent.get(p.id) ?? 0} times`);
  const claims = await q('SELECT c.event_id, c.user_id, o.data->>\'guardId\' AS announced FROM hub.claims c JOIN hub.outbox o ON o.tenant = c.tenant AND o.kind = \'panic_claimed\' AND (o.data->>\'eventId\')::bigint = c.event_id WHERE c.tenant = $1', [t]);
  assert.equal(claims.length, 21);
  assert.ok(claims.every((c) => c.user_id === c.announced), 'the claim and the announcement name the same guard');

  // A resident's ack, or one without a role, is recorded but claims nothing;
  // in a batch the first guard's or admin's ack wins.
  const p2 = await panic();
  assert.equal(await acks([p2.id], [t], ['res'], pool, ['resident']), 1);
  assert.equal(await acks([p2.id], [t], ['someone'], pool, null), 1);
  assert.equal(await acks([p2.id], [t], ['g9'], pool, [null]), 1);
  assert.deepEqual(await q('SELECT user_id FROM hub.claims WHERE event_id = $1', [p2.id]), []);
  assert.equal((await claimedEvents()).length, 21, 'an ack without a staff role emitted panic_claimed');
  assert.equal(await acks([p2.id, p2.id, p2.id], [t, t, t], ['res', 'adm', 'g1'], pool, ['resident', 'admin', 'guard']), 3);
  assert.deepEqual(await q('SELECT user_id FROM hub.claims WHERE event_id = $1', [p2.id]), [{ user_id: 'adm' }]);
  ev = await claimedEvents();
  assert.equal(ev.length, 22);
  assert.equal(ev.at(-1).data.guardId, 'adm');

  // One batch with two acks of one panic: the first in the batch wins; a
  // later ack changes nothing.
  const p3 = await panic();
  assert.equal(await acks([p3.id, p3.id], [t, t], ['g2', 'g1']), 2);
  assert.equal(await acks([p3.id], [t], ['adm']), 1);
  ev = await claimedEvents();
  assert.equal(ev.length, 23);
  assert.deepEqual([ev.at(-1).data.guardId, ev.at(-1).data.guardName], ['g2', 'Luisa Martínez']);
  await disconnect(A);
  await disconnect(B);

  // Other kinds are not claimed; panic_claimed has no policy, hence no jobs.
  const other = await emit(t, bareKind(), ['role:guard'], { ack: true });
  await acks([other], [t], ['g1']);
  assert.deepEqual(await q('SELECT event_id FROM hub.claims WHERE event_id = $1', [other]), []);
  const [{ jobs }] = await q("SELECT count(*)::int AS jobs FROM hub.fallback_jobs j JOIN hub.outbox o ON o.id = j.event_id WHERE o.tenant = $1 AND o.kind = 'panic_claimed'", [t]);
  assert.equal(jobs, 0);

  // A tenant without a "User" table: the claim is announced without a name.
  const bare = `t_fb_bare_${hex()}`;
  tenants.add(bare);
  await q(`CREATE SCHEMA "${bare}"`);
  await q('SELECT hub.register_tenant($1)', [bare]);
  const bp = await emit(bare, 'panic', ['role:guard'], { data: { alertId: 'b1', unitId: '1' }, ack: true, priority: 'critical' });
  assert.equal(await acks([bp], [bare], ['someone']), 1);
  const [bev] = await q("SELECT data FROM hub.outbox WHERE tenant = $1 AND kind = 'panic_claimed'", [bare]);
  assert.equal(bev.data.guardName, null);
  assert.equal(bev.data.guardId, 'someone');
  assert.equal(bev.data.alertId, 'b1');
});

ftest('outbox trigger cost: a 100,000-event emit transaction stays fast (with 2 jobs per event, and for a kind without policy)', async () => {
  const t = await newTenant('bulk');
  const withJobs = await newKind({ timeout: 3_600_000, always: ['push'], fallback: ['sms'] });
  const noPolicy = bareKind();
  const N = 100_000;
  const c = await connect();
  const timeEmit = async (kind) => {
    const t0 = performance.now();
    await c.query('BEGIN');
    await c.query("SELECT count(hub.emit($1, $2, ARRAY['all'], jsonb_build_object('i', g))) FROM generate_series(1, $3) g", [t, kind, N]);
    const t1 = performance.now();
    await c.query('COMMIT');
    const t2 = performance.now();
    return { emit: (t1 - t0) / 1000, commit: (t2 - t1) / 1000, total: (t2 - t0) / 1000 };
  };
  try {
    const a = await timeEmit(withJobs);
    // The always jobs are due at once; nobody is in the tenant, but take
    // them out of every planner's way now.
    await q('DELETE FROM hub.fallback_jobs WHERE tenant = $1', [t]);
    const b = await timeEmit(noPolicy);
    const [{ jobs }] = await q('SELECT count(*)::int AS jobs FROM hub.fallback_jobs WHERE tenant = $1', [t]);
    assert.equal(jobs, 0, 'a kind without policy got jobs');
    const fmt = (x) => `emit ${x.emit.toFixed(2)} s + commit ${x.commit.toFixed(2)} s = ${x.total.toFixed(2)} s (${(x.total * 1e6 / N).toFixed(0)} µs/event)`;
    process.stdout.write(`# 100,000 events, policy with always+fallback (200,000 jobs): ${fmt(a)}\n`);
    process.stdout.write(`# 100,000 events, kind without policy:                      ${fmt(b)}\n`);
    assert.ok(a.total < 120, `100,000 events with jobs took ${a.total.toFixed(1)} s`);
    assert.ok(b.total < 120, `100,000 events without policy took ${b.total.toFixed(1)} s`);
  } finally {
    await c.query('ROLLBACK').catch(() => {});
    await disconnect(c);
    await purgeTenants([t]);
  }
});
