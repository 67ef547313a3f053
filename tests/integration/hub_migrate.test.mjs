// hub_migrate.test.mjs - `armonia-hub migrate` and the check at start
// (docs/operations.md "Schema steps"): a fresh database gets every step,
// each recorded with the SHA-256 of its file; a second run changes nothing;
// two at once apply each step once; a step that fails is rolled back whole
// and the next run goes on from it; an edited step or a database ahead of
// the binary is refused; and the hub refuses to start on a database
// without the schema, behind it, ahead of it or with an edited step, with
// one line saying what to run (exit 2).
//
// Each test makes databases of its own in the shared cluster (roles are
// cluster-wide and already there); the demo tenant's SQL is never applied
// to them, as in production.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, execFile } from 'node:child_process';
import { useLifecycle, startHub, runHub, hubBin, pgUrl, Db, sourceDir, psqlBinary, freePort } from './lib/harness.mjs';

useLifecycle();

const schemaDir = join(sourceDir, 'schema');
const steps = readdirSync(schemaDir).filter((f) => /^\d{3}_.*\.sql$/.test(f)).sort().map((f) => ({
  step: f.replace(/\.sql$/, ''),
  checksum: createHash('sha256').update(readFileSync(join(schemaDir, f))).digest('hex'),
}));
const last = steps.at(-1).step;

let admin;
const made = [];
after(async () => {
  if (!admin) return;
  for (const name of made) await admin.sql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  await admin.close();
});

/** A new empty database; resolves with its superuser URL. */
async function freshDatabase() {
  const url = await pgUrl();
  admin ??= new Db(url);
  const name = `armonia_mig_${randomBytes(4).toString('hex')}`;
  await admin.sql(`CREATE DATABASE ${name}`);
  made.push(name);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.href;
}

/** Runs `armonia-hub migrate ...args`; resolves with {code, stdout, stderr}. */
function migrate(url, ...args) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, DATABASE_URL: url };
    const p = spawn(hubBin, ['migrate', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('error', reject);
    p.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function record(url) {
  const db = new Db(url);
  try {
    return await db.sql('SELECT step, checksum, applied_at FROM hub.schema_migrations ORDER BY step');
  } finally {
    await db.close();
  }
}

async function sqlOn(url, text, params) {
  const db = new Db(url);
  try {
    return await db.sql(text, params);
  } finally {
    await db.close();
  }
}

/** The hub run against url (as its restricted role) until it exits; its one error line. */
async function refusedStart(url) {
  const r = await runHub({
    env: { DATABASE_URL: url, JWT_SECRET_KEY: 'migrate-test', PORT: String(await freePort()), HUB_BIND: '127.0.0.1' },
    timeout: 30_000,
  });
  assert.equal(r.timedOut, false, `the hub kept running:\n${r.stderr}`);
  assert.equal(r.code, 2, `expected exit 2:\n${r.stderr}`);
  const errors = r.stderr.split('\n').filter((l) => / error /.test(l));
  assert.equal(errors.length, 1, `expected one error line:\n${r.stderr}`);
  return errors[0].replace(/^\S+ error schema: /, '');
}

test('fresh database: --status lists every step pending (exit 3); migrate applies them in order with the files\' SHA-256; the hub starts on it', async () => {
  const url = await freshDatabase();
  const st = await migrate(url, '--status');
  assert.equal(st.code, 3, st.stderr);
  assert.deepEqual(st.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2)), steps.map((s) => ['pending', s.step]));

  const r = await migrate(url);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(lines.slice(0, -1).map((l) => l.split(' ')[1]), steps.map((s) => s.step));
  assert.equal(lines.at(-1), `schema hub is at step ${last}: ${steps.length} steps applied`);
  assert.deepEqual((await record(url)).map(({ step, checksum }) => ({ step, checksum })), steps);

  const hub = await startHub({ databaseUrl: url });
  const stopped = await hub.stop();
  assert.equal(stopped.code, 0, hub.logs());
  assert.doesNotMatch(hub.logs(), / error /);
});

test('migrate again: nothing applied, nothing changed; two runs at once apply each step once', async () => {
  const url = await freshDatabase();
  const [a, b] = await Promise.all([migrate(url), migrate(url)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const applied = [a, b].flatMap((r) => r.stdout.split('\n').filter((l) => l.startsWith('applied ')));
  assert.equal(applied.length, steps.length, `${a.stdout}\n${b.stdout}`);
  const before = await record(url);
  const again = await migrate(url);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `schema hub is up to date at step ${last} (${steps.length} steps)\n`);
  assert.deepEqual(await record(url), before);
  const st = await migrate(url, '--status');
  assert.equal(st.code, 0);
  assert.ok(st.stdout.trim().split('\n').every((l) => l.startsWith('applied ')), st.stdout);
});

test('roles/hub_login.sql makes the hub\'s LOGIN role (twice is fine); the hub runs as it with only armonia_hub\'s rights', async () => {
  const url = await freshDatabase();
  assert.equal((await migrate(url)).code, 0);
  const role = `hub_app_${randomBytes(3).toString('hex')}`;
  const psql = (password) => new Promise((resolve, reject) => {
    execFile(psqlBinary(), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `role=${role}`, '-v', `password=${password}`,
      '-d', url, '-f', join(schemaDir, 'roles', 'hub_login.sql')], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stderr)));
  });
  await psql("first 'secret");
  await psql('second');
  const [r] = await sqlOn(url, `SELECT r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolcreatedb,
      array(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of
      FROM pg_roles r WHERE r.rolname = $1`, [role]);
  assert.deepEqual({ ...r }, { rolcanlogin: true, rolsuper: false, rolcreaterole: false, rolcreatedb: false, member_of: ['armonia_hub'] });
  const u = new URL(url);
  u.username = role;
  u.password = 'second';
  const hub = await startHub({ databaseUrl: u.href });
  assert.equal((await hub.stop()).code, 0, hub.logs());
  await admin.sql(`DROP ROLE ${role}`); // it owns nothing and holds no grant but the membership
});

test('a step that fails is rolled back whole and recorded nowhere; the next run goes on from it', async () => {
  const url = await freshDatabase();
  // Something in the way of 060_retention's table: its step fails.
  await sqlOn(url, 'CREATE SCHEMA hub; CREATE VIEW hub.outbox_horizon AS SELECT 1 AS x');
  const r = await migrate(url);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^armonia-hub migrate: step 060_retention failed, nothing of it applied: /);
  const got = (await record(url)).map((x) => x.step);
  assert.deepEqual(got, steps.map((s) => s.step).filter((s) => s < '060_retention'));
  assert.equal((await sqlOn(url, "SELECT to_regproc('hub.purge_outbox') AS f"))[0].f, null, 'part of the failed step stayed');

  await sqlOn(url, 'DROP VIEW hub.outbox_horizon');
  const again = await migrate(url);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.stdout.split('\n').filter((l) => l.startsWith('applied ')).map((l) => l.split(' ')[1]),
    steps.map((s) => s.step).filter((s) => s >= '060_retention'));
  assert.deepEqual((await record(url)).map(({ step, checksum }) => ({ step, checksum })), steps);
});

test('the hub refuses a database without the schema, behind it, ahead of it or with an edited step: exit 2 and one line saying what to run; migrate refuses the last two', async () => {
  const url = await freshDatabase();
  assert.equal(await refusedStart(url),
    'the database has no schema hub (no step recorded in hub.schema_migrations): run "armonia-hub migrate" as the schema\'s owner');

  assert.equal((await migrate(url)).code, 0);
  await sqlOn(url, 'DELETE FROM hub.schema_migrations WHERE step = $1', [last]);
  assert.equal(await refusedStart(url),
    `schema hub is behind this armonia-hub: step ${last} is not applied (${steps.length - 1} of ${steps.length} steps are): run "armonia-hub migrate" as the schema's owner`);
  const behind = await migrate(url, '--status');
  assert.equal(behind.code, 3);
  assert.match(behind.stdout, new RegExp(`^pending +${last} `, 'm'));
  assert.equal((await migrate(url)).code, 0);

  await sqlOn(url, "INSERT INTO hub.schema_migrations (step, checksum) VALUES ('999_future', repeat('b', 64))");
  const ahead = `schema hub is ahead of this armonia-hub: step 999_future was applied by another version, which this one does not know; run the armonia-hub that applied it`;
  assert.equal(await refusedStart(url), ahead);
  const m1 = await migrate(url);
  assert.equal(m1.code, 2);
  assert.equal(m1.stderr, `armonia-hub migrate: refused: ${ahead}\n`);
  await sqlOn(url, "DELETE FROM hub.schema_migrations WHERE step = '999_future'");

  const edited = steps[1];
  await sqlOn(url, "UPDATE hub.schema_migrations SET checksum = repeat('a', 64) WHERE step = $1", [edited.step]);
  const why = `schema hub step ${edited.step} was applied from another text (checksum aaaaaaaaaaaa... in the database, ${edited.checksum.slice(0, 12)}... in this armonia-hub): a released step is never edited; run the armonia-hub whose step it is, or restore the step's text`;
  assert.equal(await refusedStart(url), why);
  const m2 = await migrate(url);
  assert.equal(m2.code, 2);
  assert.equal(m2.stderr, `armonia-hub migrate: refused: ${why}\n`);
});

test('migrate without a database: exit 2 naming DATABASE_URL; --help documents the exit statuses', async () => {
  const r = await new Promise((resolve) => {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    const p = spawn(hubBin, ['migrate'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    p.once('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /DATABASE_URL/);
  const h = await migrate('postgresql://nobody@127.0.0.1:1/x', '--help');
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Exit status: 0 done/);
});
