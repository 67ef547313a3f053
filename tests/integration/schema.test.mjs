// schema.test.mjs - the database side of the contract (README "How an event
// travels", docs/fallback.md) against a real PostgreSQL: schema/*.sql
// applies twice, hub.emit() validates and writes, the demo tenant's triggers emit the right events, seq follows
// commit order (docs/design-seq.md), NOTIFY wakes listeners only on commit,
// hub.audience() and hub.is_tenant() mean what they say, only registered
// schemas are tenants (hub.tenants), and the roles of schema/080_roles.sql
// can do what they need and nothing else.
//
// The cluster is HUB_PGDIR's (started with scripts/pg.sh start, which is
// idempotent), or a private one in a temporary directory when HUB_PGDIR is
// unset. Every test uses tenants of its own, so the file can run again on
// the same cluster and next to other test files. Readers filter on their own
// tenant; the NOTIFY test, which cannot filter a shared channel, runs in a
// database of its own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { hubDatabaseUrl, HUB_LOGIN_ROLE, schemaFiles } from './lib/db.mjs';

const sourceDir = process.env.HUB_SOURCE_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pgScript = join(sourceDir, 'scripts', 'pg.sh');
const schemaDir = join(sourceDir, 'schema');

const MAX_DATA_BYTES = 32768;
// The advisory lock scripts/pg.sh holds while it applies schema/*.sql.
const SCHEMA_LOCK_KEY = 4242000001;

let pgdir;
let ownCluster = false;
let url;
let pool;
const clients = new Set();

/** Runs scripts/pg.sh; resolves with {stdout, stderr}, rejects naming both. */
function pgsh(...args) {
  return new Promise((res, rej) => {
    execFile(pgScript, args, { timeout: 180_000 }, (err, stdout, stderr) => {
      if (err) {
        err.message = `scripts/pg.sh ${args.join(' ')} failed (${err.code ?? err.signal}):\n${stderr}${stdout}`;
        rej(err);
      } else res({ stdout, stderr });
    });
  });
}

/** A connected pg.Client of its own (for a transaction or LISTEN); closed by `after`. */
async function connect(connectionString = url) {
  const c = new pg.Client({ connectionString });
  c.on('error', () => {});
  await c.connect();
  clients.add(c);
  return c;
}

async function disconnect(c) {
  clients.delete(c);
  await c.end().catch(() => {});
}

async function q(text, params = []) {
  return (await pool.query(text, params)).rows;
}

const uniq = (prefix) => `t_${prefix}_${randomBytes(4).toString('hex')}`;

/** Creates a demo tenant with a fresh name and resolves with the name. */
async function newTenant(prefix) {
  const name = uniq(prefix);
  await q('SELECT hub.create_demo_tenant($1)', [name]);
  return name;
}

async function emit(on, tenant, kind, rooms, data = {}, priority = 'normal', ack = false) {
  const r = await on.query('SELECT hub.emit($1, $2, $3::text[], $4::jsonb, $5, $6) AS id', [tenant, kind, rooms, JSON.stringify(data), priority, ack]);
  return Number(r.rows[0].id);
}

async function rowsOf(tenant) {
  return q('SELECT id, seq, kind, rooms, data, priority, ack, committed_at FROM hub.outbox WHERE tenant = $1 ORDER BY id', [tenant]);
}

/** What the hub's reader does: the rows after `last`, in seq order (one tenant). */
async function poll(tenant, last) {
  const r = await q('SELECT id, seq FROM hub.outbox WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT 1000', [tenant, String(last)]);
  return r.map((x) => ({ id: Number(x.id), seq: Number(x.seq) }));
}

/** Resolves once the backend `pid` waits on an advisory lock. */
async function waitUntilLockWait(pid, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await q("SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1", [pid]);
    if (r[0]?.wait_event_type === 'Lock' && r[0]?.wait_event === 'advisory') return;
    if (Date.now() > deadline) throw new Error(`backend ${pid} never waited on the advisory lock: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** Asserts that fn() rejects with SQLSTATE 22023 and a message matching re. */
async function rejects22023(fn, re, what) {
  await assert.rejects(fn, (err) => {
    assert.equal(err.code, '22023', `${what}: expected SQLSTATE 22023, got ${err.code} ${err.message}`);
    assert.match(err.message, re, `${what}: message does not name the problem`);
    return true;
  }, `${what}: hub.emit accepted it`);
}

before(async () => {
  pgdir = process.env.HUB_PGDIR;
  if (!pgdir) {
    pgdir = join(mkdtempSync(join(tmpdir(), 'armonia-schema-')), 'pg');
    ownCluster = true;
  }
  await pgsh('start', pgdir);
  url = readFileSync(join(pgdir, 'url'), 'utf8').trim();
  pool = new pg.Pool({ connectionString: url, max: 6 });
  pool.on('error', () => {});
});

after(async () => {
  for (const c of [...clients]) await disconnect(c);
  if (pool) await pool.end().catch(() => {});
  if (ownCluster) {
    await pgsh('stop', pgdir).catch((err) => process.stderr.write(`${err.message}\n`));
    rmSync(dirname(pgdir), { recursive: true, force: true });
  }
});

test('scripts/pg.sh start again and schema/*.sql applied twice more: no error, data and edits kept', async () => {
  const tenant = await newTenant('reapply');
  const id = await emit(pool, tenant, 'visitor', ['unit:1']);
  // A deployment's policy edit must survive a re-apply.
  const kind = `k_${randomBytes(4).toString('hex')}`;
  await q("INSERT INTO hub.policies (kind, ack_timeout_ms, fallback, max_age_ms) VALUES ($1, 1234, '{email}', 1000)", [kind]);

  const again = await pgsh('start', pgdir);
  assert.equal(again.stderr, '', 'a second start printed errors');
  assert.match(again.stdout, /^pg: ready at postgresql:\/\/postgres@127\.0\.0\.1:\d+\/armonia\n$/);
  assert.equal(readFileSync(join(pgdir, 'url'), 'utf8').trim(), url, 'the URL changed on a second start');

  // The contract's way: the files with psql -v ON_ERROR_STOP=1, in name
  // order, statement by statement (no wrapping transaction), twice. The
  // session lock is the one scripts/pg.sh takes, so a concurrent start
  // cannot interleave its CREATE OR REPLACE statements with these.
  const files = schemaFiles();
  assert.ok(files.length > 0);
  const lock = ['-c', `DO $$BEGIN PERFORM pg_advisory_lock(${SCHEMA_LOCK_KEY}); END$$`];
  for (let round = 0; round < 2; round++) {
    const r = await pgsh('psql', pgdir, '-v', 'ON_ERROR_STOP=1', '-q', ...lock, ...files.flatMap((f) => ['-f', join(schemaDir, f)]));
    assert.doesNotMatch(r.stderr, /ERROR/);
  }

  const rows = await rowsOf(tenant);
  assert.equal(rows.length, 1);
  assert.equal(Number(rows[0].id), id);
  assert.ok(rows[0].seq !== null);
  const [p] = await q('SELECT ack_timeout_ms, fallback FROM hub.policies WHERE kind = $1', [kind]);
  assert.deepEqual(p, { ack_timeout_ms: 1234, fallback: ['email'] });
  await q('DELETE FROM hub.policies WHERE kind = $1', [kind]);
  // The outbox has its two triggers (commit-order seq, fallback jobs) and no
  // copies, however often the schema was applied.
  const trig = await q("SELECT tgname FROM pg_trigger WHERE tgrelid = 'hub.outbox'::regclass AND NOT tgisinternal ORDER BY tgname");
  assert.deepEqual(trig.map((t) => t.tgname), ['outbox_assign_seq', 'outbox_fallback_jobs']);
});

test('shipped policies: panic, visitor, payment, announcement', async () => {
  const rows = await q("SELECT kind, ack_timeout_ms, fallback, always, max_age_ms FROM hub.policies WHERE kind IN ('panic','visitor','payment','announcement') ORDER BY kind");
  assert.deepEqual(rows, [
    { kind: 'announcement', ack_timeout_ms: 0, fallback: [], always: ['push', 'sms'], max_age_ms: 6 * 3600_000 },
    { kind: 'panic', ack_timeout_ms: 15000, fallback: ['push', 'sms'], always: [], max_age_ms: 3600_000 },
    { kind: 'payment', ack_timeout_ms: 60000, fallback: ['push', 'email'], always: [], max_age_ms: 24 * 3600_000 },
    { kind: 'visitor', ack_timeout_ms: 30000, fallback: ['push', 'sms'], always: [], max_age_ms: 1800_000 },
  ]);
  await assert.rejects(q("INSERT INTO hub.policies (kind, ack_timeout_ms, fallback, max_age_ms) VALUES ('x_bad_channel', 1, '{fax}', 1)"), /check/i);
});

test('hub.emit writes one row: defaults, duplicate rooms dropped in order, NULL data is {}', async () => {
  const tenant = await newTenant('emit');
  const r = await pool.query("SELECT hub.emit($1, 'visitor', ARRAY['unit:1','all','unit:1','all','user:x'], NULL) AS id", [tenant]);
  const id = Number(r.rows[0].id);
  const [row] = await rowsOf(tenant);
  assert.equal(Number(row.id), id);
  assert.deepEqual(row.rooms, ['unit:1', 'all', 'user:x']);
  assert.deepEqual(row.data, {});
  assert.equal(row.priority, 'normal');
  assert.equal(row.ack, false);
  assert.ok(row.seq !== null && row.committed_at !== null, 'a committed row has seq and committed_at');

  // The size limit is inclusive: data of exactly MAX_DATA_BYTES is accepted.
  const filler = 'a'.repeat(MAX_DATA_BYTES - '{"x": ""}'.length);
  const big = await emit(pool, tenant, 'big', ['all'], { x: filler });
  const [b] = await q('SELECT octet_length(data::text) AS n FROM hub.outbox WHERE id = $1', [big]);
  assert.equal(b.n, MAX_DATA_BYTES);
});

test('hub.emit rejects bad arguments with 22023 naming the argument, and writes nothing', async () => {
  const tenant = await newTenant('bad');
  const call = (t, kind, rooms, data, priority = 'normal', ack = false) =>
    pool.query('SELECT hub.emit($1, $2, $3::text[], $4::jsonb, $5, $6)', [t, kind, rooms, data, priority, ack]);
  const ok = { t: tenant, kind: 'visitor', rooms: ['unit:1'], data: '{}' };
  const cases = [
    ['kind with capitals', { kind: 'Panic' }, /kind/],
    ['kind empty', { kind: '' }, /kind/],
    ['kind starting with a digit', { kind: '1panic' }, /kind/],
    ['kind of 33 characters', { kind: 'a'.repeat(33) }, /kind/],
    ['kind NULL', { kind: null }, /kind/],
    ['priority urgent', { priority: 'urgent' }, /priority/],
    ['priority NULL', { priority: null }, /priority/],
    ['ack NULL', { ack: null }, /ack/],
    ['tenant hub', { t: 'hub' }, /tenant/],
    ['tenant public', { t: 'public' }, /tenant/],
    ['tenant pg_catalog', { t: 'pg_catalog' }, /tenant/],
    ['tenant missing', { t: `${tenant}_missing` }, /tenant/],
    ['tenant with a space', { t: 'no such' }, /tenant/],
    ['tenant NULL', { t: null }, /tenant/],
    ['room with a space', { rooms: ['unit:1', 'bad room'] }, /room.*bad room/],
    ['room of 101 characters', { rooms: ['a'.repeat(101)] }, /room/],
    ['room with a slash', { rooms: ['unit/1'] }, /room/],
    ['room NULL', { rooms: ['all', null] }, /room/],
    ['rooms empty', { rooms: [] }, /rooms/],
    ['rooms NULL', { rooms: null }, /rooms/],
    ['33 rooms', { rooms: Array.from({ length: 33 }, (_, i) => `unit:${i}`) }, /rooms.*32/],
    ['data an array', { data: '[1,2]' }, /data.*object/],
    ['data a string', { data: '"texto"' }, /data.*object/],
    ['data a number', { data: '42' }, /data.*object/],
    ['data over the limit', { data: JSON.stringify({ x: 'a'.repeat(MAX_DATA_BYTES) }) }, /data.*32768/],
  ];
  for (const [what, change, re] of cases) {
    const a = { ...ok, priority: 'normal', ack: false, ...change };
    await rejects22023(() => call(a.t, a.kind, a.rooms, a.data, a.priority, a.ack), re, what);
  }
  // A multi-dimensional array is not a list of rooms.
  await rejects22023(() => pool.query("SELECT hub.emit($1, 'visitor', ARRAY[['a','b'],['c','d']], '{}')", [tenant]), /rooms/, '2-D rooms');

  assert.deepEqual(await rowsOf(tenant), [], 'a rejected call left a row');
  const badTenants = cases.map(([, change]) => change.t).filter((t) => typeof t === 'string');
  const [{ n }] = await q('SELECT count(*)::int AS n FROM hub.outbox WHERE tenant = ANY ($1)', [badTenants]);
  assert.equal(n, 0, 'a call with a bad tenant left a row');
});

test('demo tenant: each trigger writes the right outbox row; Payment only when its status changes', async () => {
  const tenant = await newTenant('demo');
  await q('SELECT hub.create_demo_tenant($1)', [tenant]); // idempotent
  const T = `"${tenant}"`;
  const [ana] = await q(`INSERT INTO ${T}."User" (name, role, "unitId") VALUES ('Ana Gómez', 'RESIDENT', '101') RETURNING id, locale`);
  assert.equal(ana.locale, 'es-CO');

  const [panic] = await q(`INSERT INTO ${T}."PanicAlert" ("userId", "unitId", message) VALUES ($1, '101', 'Ayuda en la torre 1') RETURNING id, "createdAt"`, [ana.id]);
  const [visitor] = await q(`INSERT INTO ${T}."Visitor" ("unitId", name) VALUES ('101', 'Mensajero Rappi') RETURNING id`);
  const [payment] = await q(`INSERT INTO ${T}."Payment" ("userId", amount) VALUES ($1, 150000.50) RETURNING id, currency, status`, [ana.id]);
  assert.deepEqual([payment.currency, payment.status], ['COP', 'PENDING']);
  await q(`UPDATE ${T}."Payment" SET amount = 1 WHERE id = $1`, [payment.id]); // not the status
  await q(`UPDATE ${T}."Payment" SET status = 'PENDING' WHERE id = $1`, [payment.id]); // same status
  await q(`UPDATE ${T}."Payment" SET status = 'COMPLETED' WHERE id = $1`, [payment.id]);
  await q(`INSERT INTO ${T}."Announcement" (title, body) VALUES ('Asamblea', 'El sábado')`); // general: no event
  const [ann] = await q(`INSERT INTO ${T}."Announcement" (title, body, type) VALUES ('Corte de agua', 'Hoy de 2 a 4 pm', 'emergency') RETURNING id`);
  const [anon] = await q(`INSERT INTO ${T}."PanicAlert" ("userId", "unitId") VALUES ('nobody', '102') RETURNING id`);

  const rows = await rowsOf(tenant);
  assert.deepEqual(rows.map((r) => r.kind), ['panic', 'visitor', 'payment', 'announcement', 'panic']);
  const [p, v, pay, a, p2] = rows;

  assert.deepEqual(p.rooms, ['role:guard', 'role:admin']);
  assert.equal(p.priority, 'critical');
  assert.equal(p.ack, true);
  assert.deepEqual(Object.keys(p.data).sort(), ['alertId', 'createdAt', 'message', 'unitId', 'userId', 'userName']);
  assert.equal(p.data.alertId, panic.id);
  assert.equal(p.data.userId, ana.id);
  assert.equal(p.data.userName, 'Ana Gómez');
  assert.equal(p.data.unitId, '101');
  assert.equal(p.data.message, 'Ayuda en la torre 1');
  assert.equal(new Date(p.data.createdAt).getTime(), panic.createdAt.getTime());

  assert.deepEqual(v.rooms, ['unit:101']);
  assert.equal(v.priority, 'high');
  assert.equal(v.ack, true);
  assert.deepEqual(Object.keys(v.data).sort(), ['createdAt', 'name', 'unitId', 'visitorId']);
  assert.equal(v.data.visitorId, visitor.id);
  assert.equal(v.data.name, 'Mensajero Rappi');

  assert.deepEqual(pay.rooms, [`user:${ana.id}`]);
  assert.equal(pay.priority, 'normal');
  assert.equal(pay.ack, false);
  assert.deepEqual(pay.data, { paymentId: payment.id, userId: ana.id, amount: 1, currency: 'COP', status: 'COMPLETED' });

  assert.deepEqual(a.rooms, ['all']);
  assert.equal(a.priority, 'critical');
  assert.equal(a.ack, false);
  assert.deepEqual(a.data, { announcementId: ann.id, title: 'Corte de agua', body: 'Hoy de 2 a 4 pm', type: 'emergency' });

  assert.equal(p2.data.alertId, anon.id);
  assert.equal(p2.data.userName, null, 'an unknown user has no name');
  assert.equal(p2.data.message, null);

  // A huge panic message still saves; the event carries a bounded prefix.
  await q(`INSERT INTO ${T}."PanicAlert" ("userId", "unitId", message) VALUES ($1, '101', $2)`, [ana.id, 'ñ'.repeat(50_000)]);
  const last = (await rowsOf(tenant)).at(-1);
  assert.equal(last.data.message.length, 1000);

  await assert.rejects(q("SELECT hub.create_demo_tenant('hub')"), /name/);
  await assert.rejects(q("SELECT hub.create_demo_tenant('bad name')"), /name/);
});

test('two concurrent transactions committing out of id order get seq in commit order; a reader between the commits misses nothing', async () => {
  const tenant = await newTenant('order');
  const A = await connect();
  const B = await connect();
  await A.query('BEGIN');
  const idA = await emit(A, tenant, 'visitor', ['unit:1'], { tx: 'A' });
  await B.query('BEGIN');
  const idB = await emit(B, tenant, 'visitor', ['unit:1'], { tx: 'B' });
  assert.ok(idA < idB, 'A emitted first, so its id is lower');

  assert.deepEqual(await poll(tenant, 0), [], 'nothing is visible before a commit');
  await B.query('COMMIT');
  const first = await poll(tenant, 0);
  assert.deepEqual(first.map((r) => r.id), [idB]);
  const last = first[0].seq;

  await A.query('COMMIT');
  const second = await poll(tenant, last);
  assert.deepEqual(second.map((r) => r.id), [idA], 'the reader, resuming after B, must still see A');
  assert.ok(second[0].seq > last, 'A committed last, so its seq is higher');
  await disconnect(A);
  await disconnect(B);
});

test('a transaction numbered but not yet visible holds back a later committer, so a reader never skips it', async () => {
  // Recreates the one dangerous moment deterministically: A has drawn its
  // seq at COMMIT but is not visible yet (a later deferred trigger of A waits
  // on a gate lock the test holds), while B commits. B must wait for A;
  // otherwise a reader would see B, move past A's lower seq and lose A.
  const tenant = await newTenant('gate');
  const T = `"${tenant}"`;
  const GATE_KEY = String(700000000 + Math.floor(Math.random() * 1e8));
  await q(`CREATE TABLE ${T}.gate (id int)`);
  await q(`CREATE FUNCTION ${T}.wait_gate() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN PERFORM pg_advisory_xact_lock(${GATE_KEY}); RETURN NULL; END$$`);
  await q(`CREATE CONSTRAINT TRIGGER wait_gate AFTER INSERT ON ${T}.gate
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${T}.wait_gate()`);

  const holder = await connect();
  const A = await connect();
  const B = await connect();
  await holder.query('BEGIN');
  await holder.query(`SELECT pg_advisory_xact_lock(${GATE_KEY})`);

  await A.query('BEGIN');
  const idA = await emit(A, tenant, 'visitor', ['unit:1'], { tx: 'A' });
  await A.query(`INSERT INTO ${T}.gate VALUES (1)`); // its deferred trigger fires after A's seq step
  const pidA = (await A.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  const commitA = A.query('COMMIT');
  await waitUntilLockWait(pidA); // A has its seq and waits at the gate

  await B.query('BEGIN');
  const idB = await emit(B, tenant, 'visitor', ['unit:1'], { tx: 'B' });
  const pidB = (await B.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  let bDone = false;
  const commitB = B.query('COMMIT').then(() => { bDone = true; });
  // Either B waits for the seq lock (right) or it commits at once (wrong).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (bDone) break;
    const [w] = await q('SELECT wait_event FROM pg_stat_activity WHERE pid = $1', [pidB]);
    if (w?.wait_event === 'advisory') break;
    if (Date.now() > deadline) throw new Error('B neither committed nor waited for the seq lock');
    await new Promise((r) => setTimeout(r, 20));
  }
  const early = await poll(tenant, 0);
  const last = early.length ? early.at(-1).seq : 0;

  await holder.query('COMMIT');
  await commitA;
  await commitB;
  const late = await poll(tenant, last);
  const seenIds = [...early, ...late].map((r) => r.id);
  assert.deepEqual(early, [], `B became visible while A, numbered before it, was not: ${JSON.stringify(early)}`);
  assert.deepEqual(seenIds, [idA, idB], 'the reader must see A then B, each once');
  await disconnect(holder);
  await disconnect(A);
  await disconnect(B);
});

test('many producers committing in random order: a reader polling seq > last sees every committed event once, in seq order', async () => {
  const tenant = await newTenant('stress');
  const PRODUCERS = 6;
  const TXS = 25;
  const committed = new Set();
  let done = false;
  const seen = new Map();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // Polls without pause, as a hub woken by a stream of NOTIFYs would.
  const reader = (async () => {
    let last = 0;
    for (;;) {
      const finished = done;
      for (const r of await poll(tenant, last)) {
        if (seen.has(r.id)) throw new Error(`event ${r.id} seen twice`);
        seen.set(r.id, r.seq);
        last = r.seq;
      }
      if (finished) return null;
    }
  })().catch((err) => err);

  const producers = Array.from({ length: PRODUCERS }, async (_, p) => {
    const c = await connect();
    for (let i = 0; i < TXS; i++) {
      await c.query('BEGIN');
      const ids = [];
      const n = 1 + ((p + i) % 3);
      for (let k = 0; k < n; k++) ids.push(await emit(c, tenant, 'visitor', ['unit:1'], { p, i, k }));
      await sleep(Math.floor(Math.random() * 8));
      if ((p + i) % 7 === 3) {
        await c.query('ROLLBACK');
      } else {
        await c.query('COMMIT');
        for (const id of ids) committed.add(id);
      }
    }
    await disconnect(c);
  });
  await Promise.all(producers);
  done = true;
  const readerError = await reader;
  if (readerError) throw readerError;

  const missed = [...committed].filter((id) => !seen.has(id));
  assert.deepEqual(missed, [], `the reader skipped committed events (${missed.length} of ${committed.size})`);
  assert.equal(seen.size, committed.size, 'the reader saw events that were never committed');
  // committed_at never decreases along seq (retention deletes by it, as a prefix).
  const [{ down }] = await q(`SELECT count(*)::int AS down FROM (
                               SELECT committed_at < lag(committed_at) OVER (ORDER BY seq) AS d
                                 FROM hub.outbox WHERE tenant = $1) x WHERE d`, [tenant]);
  assert.equal(down, 0, 'committed_at went down while seq went up');
  // Within a transaction seq follows id.
  const rows = await rowsOf(tenant);
  const byTx = new Map();
  for (const r of rows) {
    const key = `${r.data.p}/${r.data.i}`;
    const prev = byTx.get(key);
    if (prev) assert.ok(BigInt(r.seq) > BigInt(prev.seq) && BigInt(r.id) > BigInt(prev.id));
    byTx.set(key, r);
  }
});

test('a rolled-back emit leaves no row and does not stall a later one, even when its seq was already drawn', async () => {
  const tenant = await newTenant('rollback');
  const c = await connect();
  const base = await emit(pool, tenant, 'visitor', ['unit:1'], { n: 0 });
  const [{ seq: baseSeq }] = await poll(tenant, 0);

  await c.query('BEGIN');
  const gone = await emit(c, tenant, 'visitor', ['unit:1'], { n: 1 });
  await c.query('ROLLBACK');

  // Drawn, then rolled back: leaves a gap in seq, never a hole that blocks.
  await c.query('BEGIN');
  await c.query('SET CONSTRAINTS ALL IMMEDIATE');
  const gone2 = await emit(c, tenant, 'visitor', ['unit:1'], { n: 2 });
  const drawn = Number((await c.query('SELECT seq FROM hub.outbox WHERE id = $1', [gone2])).rows[0].seq);
  assert.ok(drawn > baseSeq, 'IMMEDIATE numbers the row at once');
  await c.query('ROLLBACK');

  const later = await emit(pool, tenant, 'visitor', ['unit:1'], { n: 3 });
  const next = await poll(tenant, baseSeq);
  assert.deepEqual(next.map((r) => r.id), [later]);
  assert.ok(next[0].seq > drawn, 'a later event gets a seq past the gap');
  const ids = (await rowsOf(tenant)).map((r) => Number(r.id));
  assert.deepEqual(ids, [base, later]);
  assert.ok(!ids.includes(gone) && !ids.includes(gone2));
  await disconnect(c);
});

test('SET CONSTRAINTS ALL IMMEDIATE, then more emits, savepoints: every surviving row is numbered, in id order', async () => {
  const tenant = await newTenant('immediate');
  const c = await connect();
  await c.query('BEGIN');
  const ids = [];
  ids.push(await emit(c, tenant, 'visitor', ['unit:1']));
  ids.push(await emit(c, tenant, 'visitor', ['unit:1']));
  await c.query('SET CONSTRAINTS ALL IMMEDIATE');
  const mid = (await c.query('SELECT count(seq)::int AS n FROM hub.outbox WHERE id = ANY($1)', [ids])).rows[0].n;
  assert.equal(mid, 2, 'SET CONSTRAINTS ALL IMMEDIATE numbers the pending rows');
  ids.push(await emit(c, tenant, 'visitor', ['unit:1']));
  ids.push(await emit(c, tenant, 'visitor', ['unit:1']));
  await c.query('SET CONSTRAINTS ALL DEFERRED');
  ids.push(await emit(c, tenant, 'visitor', ['unit:1']));
  // Work numbered inside a savepoint that is rolled back is numbered again at commit.
  ids.push(await emit(c, tenant, 'visitor', ['unit:1']));
  await c.query('SAVEPOINT s');
  await c.query('SET CONSTRAINTS ALL IMMEDIATE');
  const dropped = await emit(c, tenant, 'visitor', ['unit:1']);
  await c.query('ROLLBACK TO SAVEPOINT s');
  ids.push(await emit(c, tenant, 'visitor', ['unit:1']));
  await c.query('COMMIT');

  const rows = await rowsOf(tenant);
  assert.deepEqual(rows.map((r) => Number(r.id)), ids);
  assert.ok(!rows.some((r) => Number(r.id) === dropped));
  assert.ok(rows.every((r) => r.seq !== null && r.committed_at !== null), `unnumbered rows: ${JSON.stringify(rows.filter((r) => r.seq === null))}`);
  for (let i = 1; i < rows.length; i++) assert.ok(BigInt(rows[i].seq) > BigInt(rows[i - 1].seq), 'seq out of id order');
  await disconnect(c);
});

test('one transaction emitting 10,000 events: all numbered, in id order, one contiguous block', async () => {
  const tenant = await newTenant('bulk');
  const c = await connect();
  await c.query('BEGIN');
  await c.query("SELECT count(hub.emit($1, 'visitor', ARRAY['all'], jsonb_build_object('i', g))) FROM generate_series(1, 10000) g", [tenant]);
  const t0 = Date.now();
  await c.query('COMMIT');
  const commitMs = Date.now() - t0;
  const [r] = await q(`SELECT count(*)::int AS n, count(seq)::int AS numbered,
                              (max(seq) - min(seq))::int AS span,
                              bool_and(committed_at IS NOT NULL) AS stamped
                         FROM hub.outbox WHERE tenant = $1`, [tenant]);
  assert.deepEqual(r, { n: 10000, numbered: 10000, span: 9999, stamped: true });
  const [o] = await q(`SELECT count(*)::int AS bad FROM (
                         SELECT seq < lag(seq) OVER (ORDER BY id) AS down FROM hub.outbox WHERE tenant = $1) x
                        WHERE down`, [tenant]);
  assert.equal(o.bad, 0, 'seq does not follow id inside the transaction');
  assert.ok(commitMs < 30_000, `COMMIT of 10,000 events took ${commitMs} ms`);
  await disconnect(c);
});

test('LISTEN hub_outbox: one notification with an empty payload after commit, none after rollback', async () => {
  // A database of its own: the channel is per database, and other test files emit on the shared one.
  const dbName = `armonia_listen_${randomBytes(4).toString('hex')}`;
  await q(`CREATE DATABASE ${dbName}`);
  const dbUrl = url.replace(/\/armonia$/, `/${dbName}`);
  try {
    const files = schemaFiles();
    const setup = await connect(dbUrl);
    await setup.query('SET client_min_messages = warning');
    for (const f of files) await setup.query(readFileSync(join(schemaDir, f), 'utf8'));
    const tenant = uniq('listen');
    await setup.query('SELECT hub.create_demo_tenant($1)', [tenant]);

    const listener = await connect(dbUrl);
    const got = [];
    listener.on('notification', (n) => got.push(n));
    await listener.query('LISTEN hub_outbox');

    await setup.query('BEGIN');
    await emit(setup, tenant, 'visitor', ['unit:1']);
    await emit(setup, tenant, 'visitor', ['unit:2']);
    await setup.query('ROLLBACK');

    await setup.query('BEGIN');
    await emit(setup, tenant, 'visitor', ['unit:1']);
    await emit(setup, tenant, 'visitor', ['unit:2']);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 0, 'a notification arrived before commit');
    await setup.query('COMMIT');

    // Notifications arrive in commit order; a round trip on the listener flushes them.
    const deadline = Date.now() + 5000;
    while (got.length === 0 && Date.now() < deadline) await listener.query('SELECT 1');
    await new Promise((r) => setTimeout(r, 100));
    await listener.query('SELECT 1');
    assert.equal(got.length, 1, `expected one notification (identical ones of a transaction fold into one), got ${JSON.stringify(got)}`);
    assert.equal(got[0].channel, 'hub_outbox');
    assert.equal(got[0].payload, '', 'the NOTIFY payload must not carry the event');

    await disconnect(listener);
    await disconnect(setup);
  } finally {
    await q(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  }
});

test('hub.audience: room semantics, distinct users, contact points', async () => {
  const tenant = await newTenant('aud');
  const T = `"${tenant}"`;
  await q(`INSERT INTO ${T}."User" (id, name, role, "unitId", "deviceToken", "phoneNumber", email, locale) VALUES
    ('g1', 'Guarda', 'GUARD', NULL, 'tok-g1', '+573001', 'g1@x.co', 'es-CO'),
    ('a1', 'Admin', 'ADMIN', NULL, NULL, NULL, 'a1@x.co', 'en'),
    ('r1', 'Res 1', 'RESIDENT', '101', 'tok-r1', '+573002', NULL, DEFAULT),
    ('r2', 'Res 2', 'RESIDENT', '101', NULL, '+573003', NULL, DEFAULT),
    ('r3', 'Res 3', 'RESIDENT', '202', NULL, NULL, NULL, DEFAULT)`);
  const aud = async (rooms) => (await q('SELECT user_id FROM hub.audience($1, $2::text[])', [tenant, rooms])).map((r) => r.user_id);

  assert.deepEqual(await aud(['all']), ['a1', 'g1', 'r1', 'r2', 'r3']);
  assert.deepEqual(await aud(['user:r2']), ['r2']);
  assert.deepEqual(await aud(['role:guard']), ['g1']);
  assert.deepEqual(await aud(['role:admin']), ['a1']);
  assert.deepEqual(await aud(['role:resident']), ['r1', 'r2', 'r3']);
  assert.deepEqual(await aud(['unit:101']), ['r1', 'r2']);
  assert.deepEqual(await aud(['unit:101', 'user:r1', 'role:admin', 'unit:101']), ['a1', 'r1', 'r2']);
  assert.deepEqual(await aud(['all', 'role:guard']), ['a1', 'g1', 'r1', 'r2', 'r3']);
  assert.deepEqual(await aud(['custom', 'role:GUARD', 'role:guards', 'unit:999', 'user:nobody']), []);
  assert.deepEqual(await aud([]), []);

  const [g] = await q("SELECT * FROM hub.audience($1, '{user:g1}')", [tenant]);
  assert.deepEqual(g, { user_id: 'g1', device_token: 'tok-g1', phone: '+573001', email: 'g1@x.co', locale: 'es-CO' });
  const [r] = await q("SELECT locale FROM hub.audience($1, '{user:r3}')", [tenant]);
  assert.equal(r.locale, 'es-CO');

  await assert.rejects(q("SELECT * FROM hub.audience('hub', '{all}')"), (err) => err.code === '22023');
  await assert.rejects(q("SELECT * FROM hub.audience($1, '{all}')", [`${tenant}_missing`]), (err) => err.code === '22023');
});

test('hub.is_tenant: a created tenant yes; hub, public, information_schema, pg_*, missing, malformed, NULL no', async () => {
  const tenant = await newTenant('ist');
  const is = async (name) => (await q('SELECT hub.is_tenant($1) AS ok', [name]))[0].ok;
  assert.equal(await is(tenant), true);
  for (const name of ['hub', 'public', 'information_schema', 'pg_catalog', 'pg_toast', `${tenant}_missing`, 'a b', 'x'.repeat(64), '', null]) {
    assert.equal(await is(name), false, `hub.is_tenant(${JSON.stringify(name)})`);
  }
  // A hyphenated schema (allowed by the claim syntax) counts when it exists.
  const hyphen = `${uniq('h')}-x`;
  await q('SELECT hub.create_demo_tenant($1)', [hyphen]);
  assert.equal(await is(hyphen), true);
  assert.equal(await is(hyphen.toUpperCase()), false, 'names are case-sensitive');
});

/** Asserts that fn() rejects with SQLSTATE 42501 (insufficient privilege). */
async function denied(fn, what) {
  await assert.rejects(fn, (err) => {
    assert.equal(err.code, '42501', `${what}: expected SQLSTATE 42501, got ${err.code} ${err.message}`);
    return true;
  }, `${what}: the role was allowed to do it`);
}

/** A schema that is not a tenant, with a table of secrets (the backend's audit schema, say). */
async function newAuditSchema(prefix) {
  const name = uniq(prefix);
  await q(`CREATE SCHEMA "${name}"`);
  await q(`CREATE TABLE "${name}".secrets (id int PRIMARY KEY, secret text)`);
  await q(`INSERT INTO "${name}".secrets VALUES (1, 'hunter2')`);
  return name;
}

test('hub.is_tenant: an existing schema that is not registered is no tenant; registered it is, unregistered again it is not', async () => {
  const audit = await newAuditSchema('isreg');
  const is = async (name) => (await q('SELECT hub.is_tenant($1) AS ok', [name]))[0].ok;
  assert.equal(await is(audit), false, 'an unregistered schema counted as a tenant');
  assert.deepEqual(await q('SELECT hub.register_tenant($1) AS added', [audit]), [{ added: true }]);
  assert.equal(await is(audit), true);
  assert.deepEqual(await q('SELECT hub.unregister_tenant($1) AS gone', [audit]), [{ gone: true }]);
  assert.equal(await is(audit), false);
  // A registered schema that is dropped stops being a tenant at once.
  const dropped = await newAuditSchema('isdrop');
  await q('SELECT hub.register_tenant($1)', [dropped]);
  await q(`DROP SCHEMA "${dropped}" CASCADE`);
  assert.equal(await is(dropped), false);
  await q('SELECT hub.unregister_tenant($1)', [dropped]);
});

test('hub.register_tenant / hub.unregister_tenant: idempotent, names and schemas checked (22023), create_demo_tenant registers', async () => {
  const tenant = await newTenant('reg');
  assert.deepEqual(await q('SELECT name FROM hub.tenants WHERE name = $1', [tenant]), [{ name: tenant }], 'create_demo_tenant did not register its tenant');
  assert.deepEqual(await q('SELECT hub.register_tenant($1) AS added', [tenant]), [{ added: false }], 'a second registration');
  await q('SELECT hub.create_demo_tenant($1)', [tenant]);
  assert.deepEqual(await q('SELECT count(*)::int AS n FROM hub.tenants WHERE name = $1', [tenant]), [{ n: 1 }]);

  const reg = (name) => q('SELECT hub.register_tenant($1)', [name]);
  for (const bad of ['hub', 'public', 'information_schema', 'pg_catalog', 'pg_toast', 'a b', 'x'.repeat(64), '', null, 'Robert"); DROP TABLE hub.outbox; --']) {
    await rejects22023(() => reg(bad), /hub\.register_tenant: name must be 1-63 characters/, `register_tenant(${JSON.stringify(bad)})`);
  }
  await rejects22023(() => reg(`${tenant}_missing`), /hub\.register_tenant: no schema named/, 'register_tenant of a missing schema');
  assert.deepEqual(await q('SELECT count(*)::int AS n FROM hub.tenants WHERE name = $1', [`${tenant}_missing`]), [{ n: 0 }]);
  await assert.rejects(q('SELECT hub.unregister_tenant(NULL)'), (err) => err.code === '22023');
  assert.deepEqual(await q('SELECT hub.unregister_tenant($1) AS gone', [`${tenant}_never`]), [{ gone: false }]);
  // The table admits nothing that is not a tenant name, whoever writes it.
  await assert.rejects(q("INSERT INTO hub.tenants (name) VALUES ('hub')"), (err) => err.code === '23514');
  await assert.rejects(q("INSERT INTO hub.tenants (name) VALUES ('pg_catalog')"), (err) => err.code === '23514');
});

test('hub.emit refuses a real schema that is not a registered tenant (22023) and writes nothing; registered it accepts it', async () => {
  const audit = await newAuditSchema('emitreg');
  await rejects22023(() => emit(pool, audit, 'visitor', ['all']), /hub\.emit: tenant must name an existing tenant schema registered with hub\.register_tenant/, 'emit to an unregistered schema');
  assert.deepEqual(await rowsOf(audit), []);
  await q('SELECT hub.register_tenant($1)', [audit]);
  const id = await emit(pool, audit, 'visitor', ['all']);
  await q('SELECT hub.unregister_tenant($1)', [audit]);
  await rejects22023(() => emit(pool, audit, 'visitor', ['all']), /registered with hub\.register_tenant/, 'emit after unregistering');
  assert.deepEqual((await rowsOf(audit)).map((r) => Number(r.id)), [id]);
  await rejects22023(() => q("SELECT * FROM hub.audience($1, '{all}')", [audit]), /hub\.audience: tenant must name an existing registered tenant schema/, 'audience of an unregistered schema');
});

test(`the hub's role (${HUB_LOGIN_ROLE}, member of armonia_hub): reads the outbox and the registry, calls its functions, and nothing more`, async () => {
  const tenant = await newTenant('role');
  await q(`INSERT INTO "${tenant}"."User" (id, name, role, "phoneNumber") VALUES ('g1', 'Guardia', 'GUARD', '+573001112233')`);
  const audit = await newAuditSchema('rolea');
  const id = await emit(pool, tenant, 'visitor', ['all']);
  const hubUrl = hubDatabaseUrl(url);
  assert.notEqual(hubUrl, url);
  const h = await connect(hubUrl);
  try {
    const [who] = (await h.query('SELECT current_user AS u, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su')).rows;
    assert.deepEqual(who, { u: HUB_LOGIN_ROLE, su: false });
    const [{ member }] = (await h.query("SELECT pg_has_role(current_user, 'armonia_hub', 'MEMBER') AS member")).rows;
    assert.equal(member, true);

    // What the hub does (hub/outbox.c, replay.c, session.c, acks.c, fallback.c, purge.c).
    assert.equal((await h.query('SELECT id FROM hub.outbox WHERE tenant = $1', [tenant])).rows.length, 1);
    await h.query('SELECT purged_through FROM hub.outbox_horizon');
    await h.query('SELECT kind FROM hub.policies WHERE cardinality(fallback) > 0');
    assert.deepEqual((await h.query('SELECT hub.is_tenant($1) AS a, hub.is_tenant($2) AS b', [tenant, audit])).rows, [{ a: true, b: false }]);
    await h.query('BEGIN');
    try {
      assert.deepEqual((await h.query("SELECT hub.record_acks($1::bigint[], $2::text[], $3::text[], $4::text[]) AS n", [[id], [tenant], ['g1'], ['guard']])).rows, [{ n: 1 }]);
      await h.query("SELECT hub.record_sent($1::bigint[], $2::text[], $3::text[])", [[id], [tenant], ['g2']]);
      await h.query('SELECT * FROM hub.fallback_plan(0)');
      await h.query("SELECT * FROM hub.delivery_claim('sms', 0, 1000, 'test')");
      await h.query("SELECT * FROM hub.delivery_results('{}', '{}', '{}', '{}', '{}', '{}')");
      await h.query("SELECT hub.purge_outbox('100 years', 1)");
    } finally {
      await h.query('ROLLBACK');
    }

    // Nothing else: no tenant's tables, no other schema, no direct writes,
    // no events, no tenants, no contact data.
    const no = async (text, params, what) => denied(() => h.query(text, params), what);
    await no(`SELECT * FROM "${tenant}"."User"`, [], "reading a tenant's User table");
    await no(`SELECT * FROM "${audit}".secrets`, [], 'reading a schema that is not a tenant');
    await no("INSERT INTO hub.outbox (tenant, kind, rooms) VALUES ($1, 'panic', '{all}')", [tenant], 'inserting into hub.outbox');
    await no("UPDATE hub.outbox SET data = '{}' WHERE id = $1", [id], 'updating hub.outbox');
    await no('DELETE FROM hub.outbox WHERE id = $1', [id], 'deleting from hub.outbox');
    await no("INSERT INTO hub.tenants (name) VALUES ($1)", [audit], 'registering by writing hub.tenants');
    await no('DELETE FROM hub.tenants', [], 'unregistering by writing hub.tenants');
    await no('UPDATE hub.policies SET max_age_ms = 1', [], 'editing hub.policies');
    await no('SELECT * FROM hub.deliveries', [], 'reading hub.deliveries (contact addresses)');
    await no("INSERT INTO hub.deliveries (event_id, tenant, user_id, channel) VALUES ($1, $2, 'x', 'ws')", [id, tenant], 'writing hub.deliveries directly');
    await no('DELETE FROM hub.claims', [], 'writing hub.claims directly');
    await no("SELECT hub.emit($1, 'panic', '{all}', '{}')", [tenant], 'emitting an event');
    await no('SELECT hub.create_demo_tenant($1)', [uniq('byhub')], 'creating a tenant');
    await no('SELECT hub.register_tenant($1)', [audit], 'registering a tenant');
    await no('SELECT hub.unregister_tenant($1)', [tenant], 'unregistering a tenant');
    await no("SELECT * FROM hub.audience($1, '{all}')", [tenant], 'reading contact data through hub.audience');
    await no("SELECT hub.tenant_user_name($1, 'g1')", [tenant], 'reading names through hub.tenant_user_name');
    await no('SELECT hub.attach_tenant($1)', [audit], 'attaching a tenant (schema/090_tenants.sql)');
    await no('SELECT hub.detach_tenant($1)', [tenant], 'detaching a tenant');
    await no("SELECT hub.enable_auto_attach('^x')", [], 'turning auto-attach on');
    await no('SELECT hub.disable_auto_attach()', [], 'turning auto-attach off');
    await no('SELECT * FROM hub.tenant_mappings', [], 'reading the tenants\' mappings');
    await no("SELECT hub.delivery_result($1, 'g1', 'sms', 'sent', NULL, 0)", [id], 'hub.delivery_result (only through hub.delivery_results)');
    await no("SELECT hub.fallback_next($1, 'g1', 'push')", [id], 'hub.fallback_next');
    await no('CREATE TABLE hub.mine (x int)', [], 'creating a table in schema hub');
    await no('CREATE SCHEMA mine', [], 'creating a schema');
    assert.equal((await h.query('SELECT hub.is_tenant($1) AS ok', [audit])).rows[0].ok, false);
  } finally {
    await disconnect(h);
  }
  const [{ n }] = await q('SELECT count(*)::int AS n FROM hub.outbox WHERE tenant = $1', [tenant]);
  assert.equal(n, 1, 'the hub role changed the outbox');
});

test('armonia_producer may call hub.emit (through the demo triggers too) and nothing else; hub.outbox stays closed to it', async () => {
  const tenant = await newTenant('prod');
  const audit = await newAuditSchema('prodaudit');
  const c = await connect();
  try {
    // The backend owns its tenant's tables; here a superuser session takes
    // the producer role, which has no table rights of its own.
    await c.query(`GRANT USAGE ON SCHEMA "${tenant}" TO armonia_producer`);
    await c.query(`GRANT INSERT, SELECT ON "${tenant}"."Visitor", "${tenant}"."User" TO armonia_producer`);
    await c.query('SET ROLE armonia_producer');
    const id = await emit(c, tenant, 'visitor', ['unit:1']);
    await c.query(`INSERT INTO "${tenant}"."Visitor" ("unitId", name) VALUES ('7', 'Mensajero')`);
    await rejects22023(() => emit(c, audit, 'visitor', ['all']), /registered with hub\.register_tenant/, 'a producer emitting to an unregistered schema');
    const no = async (text, params, what) => denied(() => c.query(text, params), what);
    await no('SELECT id FROM hub.outbox WHERE id = $1', [id], 'a producer reading hub.outbox');
    await no("INSERT INTO hub.outbox (tenant, kind, rooms) VALUES ($1, 'panic', '{all}')", [tenant], 'a producer inserting into hub.outbox');
    await no('UPDATE hub.outbox SET seq = NULL WHERE id = $1', [id], 'a producer updating hub.outbox');
    await no('SELECT hub.register_tenant($1)', [audit], 'a producer registering a tenant');
    await no('SELECT hub.create_demo_tenant($1)', [uniq('byprod')], 'a producer creating a tenant');
    await no("SELECT * FROM hub.audience($1, '{all}')", [tenant], 'a producer calling hub.audience');
    await no("SELECT hub.record_acks('{}', '{}', '{}', '{}')", [], 'a producer recording acks');
  } finally {
    await c.query('RESET ROLE').catch(() => {});
    await disconnect(c);
  }
  const rows = await rowsOf(tenant);
  assert.deepEqual(rows.map((r) => r.kind), ['visitor', 'visitor']);
  assert.ok(rows.every((r) => r.seq !== null), 'the commit-time numbering ran for the producer');
});

test('every SECURITY DEFINER function of schema hub has a fixed search_path; no function of schema hub is executable by PUBLIC', async () => {
  const definers = await q(`SELECT p.oid::regprocedure::text AS fn, p.proconfig
                              FROM pg_proc p WHERE p.pronamespace = 'hub'::regnamespace AND p.prosecdef ORDER BY 1`);
  const names = definers.map((d) => d.fn.replace(/\(.*/, ''));
  for (const must of ['hub.emit', 'hub.outbox_assign_seq', 'hub.audience', 'hub.tenant_user_name', 'hub.register_tenant',
    'hub.unregister_tenant', 'hub.record_acks', 'hub.record_sent', 'hub.fallback_plan', 'hub.delivery_claim',
    'hub.delivery_results', 'hub.purge_outbox', 'hub.on_tenant_ddl']) {
    assert.ok(names.includes(must), `${must} is not SECURITY DEFINER (have: ${names.join(', ')})`);
  }
  assert.ok(!names.includes('hub.create_demo_tenant'), 'hub.create_demo_tenant must run with its caller\'s rights');
  for (const fn of ['hub.attach_tenant', 'hub.detach_tenant', 'hub.enable_auto_attach', 'hub.disable_auto_attach'])
    assert.ok(!names.includes(fn), `${fn} must run with its caller's rights`);
  for (const d of definers) assert.deepEqual(d.proconfig, ['search_path=pg_catalog, hub, pg_temp'], `${d.fn}: search_path`);
  const open = await q(`SELECT p.oid::regprocedure::text AS fn FROM pg_proc p
                         WHERE p.pronamespace = 'hub'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')`);
  assert.deepEqual(open, [], 'functions PUBLIC may execute');
});

test('upgrade: the schema applied to a database without the registry registers the tenants it already had, once', async () => {
  const dbName = `armonia_upgrade_${randomBytes(4).toString('hex')}`;
  await q(`CREATE DATABASE ${dbName}`);
  const dbUrl = url.replace(/\/armonia$/, `/${dbName}`);
  const files = schemaFiles();
  const apply = async (c) => {
    for (const f of files) await c.query(readFileSync(join(schemaDir, f), 'utf8'));
  };
  let c;
  try {
    c = await connect(dbUrl);
    await c.query('SET client_min_messages = warning');
    await apply(c);
    // Before the registry: a demo tenant (its triggers), a tenant with events
    // only, and the backend's own schema, which has neither.
    await c.query("SELECT hub.create_demo_tenant('demo_old')");
    await c.query("CREATE SCHEMA events_only");
    await c.query("CREATE SCHEMA audit");
    await c.query('DROP TABLE hub.tenants');
    await c.query("INSERT INTO hub.outbox (tenant, kind, rooms) VALUES ('events_only', 'visitor', '{all}')");
    await apply(c);
    const names = async () => (await c.query('SELECT name FROM hub.tenants ORDER BY name')).rows.map((r) => r.name);
    assert.deepEqual(await names(), ['demo_old', 'events_only']);
    // Applying again registers nothing more: an unregistered tenant stays out.
    await c.query("SELECT hub.unregister_tenant('demo_old')");
    await apply(c);
    assert.deepEqual(await names(), ['events_only']);
  } finally {
    if (c) await disconnect(c);
    await q(`DROP DATABASE IF EXISTS ${dbName}`).catch((err) => process.stderr.write(`drop ${dbName}: ${err.message}\n`));
  }
});
