// db.mjs - the PostgreSQL side of the integration tests.
//
// pgUrl() finds (or starts, through scripts/pg.sh) the private cluster named
// by HUB_PGDIR. A Db wraps one pg Pool on one cluster with the few things
// the tests do to it: create a demo tenant, insert the rows whose triggers
// emit events, and call hub.emit() directly. The module-level functions use
// one shared Db on HUB_PGDIR; a test that needs its own cluster (the health
// test stops it) makes its own Db.

import { existsSync, readFileSync, readdirSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, resolve, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root: HUB_SOURCE_DIR, else three levels up from here. */
export const sourceDir = process.env.HUB_SOURCE_DIR ?? resolve(here, '..', '..', '..');
export const pgScript = join(sourceDir, 'scripts', 'pg.sh');

/** psql of the newest server install (Debian keeps it off PATH), else PATH's. */
export function psqlBinary() {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const v = readdirSync(root).filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => b - a)
      .find((d) => existsSync(join(root, String(d), 'bin', 'psql')));
    if (v !== undefined) return join(root, String(v), 'bin', 'psql');
  }
  return 'psql';
}

/**
 * The SQL scripts/pg.sh applies, in its order, as paths relative to
 * schema/: the steps of schema hub (NNN_name.sql, in name order), then the
 * demo tenant's (demo/*.sql).
 */
export function schemaFiles() {
  const dir = join(sourceDir, 'schema');
  const steps = readdirSync(dir).filter((f) => /^\d{3}_.*\.sql$/.test(f)).sort();
  const demo = readdirSync(join(dir, 'demo')).filter((f) => f.endsWith('.sql')).sort().map((f) => `demo/${f}`);
  return [...steps, ...demo];
}

/** Runs scripts/pg.sh with args; resolves with its output, rejects with it on failure. */
export function pgScriptRun(...args) {
  return new Promise((resolvePromise, reject) => {
    execFile(pgScript, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) {
        err.message = `scripts/pg.sh ${args.join(' ')} failed (${err.code ?? err.signal}): ${stderr || stdout}`;
        reject(err);
      } else resolvePromise(stdout + stderr);
    });
  });
}

async function answers(url) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Takes a directory lock so parallel test files start a cluster only once. */
async function withLock(path, fn) {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(path);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(path).mtimeMs > 150_000) rmSync(path, { recursive: true, force: true });
      } catch {}
      if (Date.now() > deadline) throw new Error(`could not take ${path} within 180 s`);
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Resolves with the URL of the cluster in dir (HUB_PGDIR by default),
 * starting it with `scripts/pg.sh start dir` when dir/url is missing or the
 * server does not answer.
 */
export async function pgUrl(dir = process.env.HUB_PGDIR) {
  if (!dir) throw new Error('HUB_PGDIR is not set: it names the directory of the test cluster');
  const urlFile = join(dir, 'url');
  const read = () => readFileSync(urlFile, 'utf8').trim();
  if (existsSync(urlFile) && (await answers(read()))) return read();
  return withLock(`${dir.replace(/\/+$/, '')}.start-lock`, async () => {
    if (existsSync(urlFile) && (await answers(read()))) return read();
    await pgScriptRun('start', dir);
    if (!existsSync(urlFile)) throw new Error(`scripts/pg.sh start ${dir} did not write ${urlFile}`);
    const url = read();
    if (!(await answers(url))) throw new Error(`the cluster in ${dir} does not answer at ${url}`);
    return url;
  });
}

/**
 * The LOGIN role hubs under test connect as: scripts/pg.sh makes it a member
 * of armonia_hub (schema/080_roles.sql) and nothing else, so a right the hub
 * needs and the schema does not grant fails a test. Tests' own setup keeps
 * the superuser of the cluster's URL.
 */
export const HUB_LOGIN_ROLE = 'armonia_hub_login';

/**
 * The URL a hub gets for the cluster at url: the superuser (postgres)
 * replaced by HUB_LOGIN_ROLE. Anything else (another user, a URL that does
 * not parse, e.g. a configuration test's) is returned as it is.
 */
export function hubDatabaseUrl(url) {
  if (typeof url !== 'string') return url;
  let u;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (!/^postgres(ql)?:$/.test(u.protocol) || u.username !== 'postgres' || u.password) return url;
  u.username = HUB_LOGIN_ROLE;
  return u.toString();
}

/** Quotes an SQL identifier. */
export function ident(name) {
  return `"${String(name).replace(/"/g, '""')}"`;
}

export class Db {
  constructor(url) {
    this.url = url;
    this.pool = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 10_000 });
    // Idle clients fail when a test stops the server; the pool replaces them.
    this.pool.on('error', () => {});
  }

  /** Runs one statement; resolves with its rows. */
  async sql(text, params = []) {
    try {
      const r = await this.pool.query(text, params);
      return r.rows;
    } catch (err) {
      err.message = `SQL failed: ${err.message}\n  in: ${text}\n  with: ${JSON.stringify(params)}`;
      throw err;
    }
  }

  /** A dedicated client for a transaction; the caller calls release(). */
  async client() {
    const c = await this.pool.connect();
    c.on('error', () => {});
    return c;
  }

  /** Creates a fresh demo tenant t_<prefix>_<random> and resolves with its name. */
  async newTenant(prefix = 'x') {
    const clean = String(prefix).toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 20);
    const name = `t_${clean}_${randomBytes(4).toString('hex')}`;
    await this.sql('select hub.create_demo_tenant($1)', [name]);
    return name;
  }

  async #insert(tenant, table, row) {
    const cols = Object.keys(row).filter((k) => row[k] !== undefined);
    const text = `insert into ${ident(tenant)}.${ident(table)} (${cols.map(ident).join(', ')}) values (${cols.map((_, i) => `$${i + 1}`).join(', ')}) returning id`;
    const rows = await this.sql(text, cols.map((k) => row[k]));
    return rows[0].id;
  }

  /** Inserts a "User"; role is RESIDENT, GUARD or ADMIN. Resolves with its id. */
  insertUser(tenant, { name = 'Usuario de prueba', role = 'RESIDENT', unitId, deviceToken, phoneNumber, email, locale } = {}) {
    return this.#insert(tenant, 'User', { name, role, unitId, deviceToken, phoneNumber, email, locale });
  }

  /** Inserts a "PanicAlert" (emits panic to guards and admins). */
  insertPanic(tenant, { userId, unitId, message = 'Ayuda' } = {}) {
    return this.#insert(tenant, 'PanicAlert', { userId, unitId, message });
  }

  /** Inserts a "Visitor" (emits visitor to unit:<unitId>). */
  insertVisitor(tenant, { unitId, name = 'Visitante' } = {}) {
    return this.#insert(tenant, 'Visitor', { unitId, name });
  }

  /** Inserts a "Payment" (its status changes emit payment to user:<userId>). */
  insertPayment(tenant, { userId, amount = 150000, currency, status = 'PENDING' } = {}) {
    return this.#insert(tenant, 'Payment', { userId, amount, currency, status });
  }

  async setPaymentStatus(tenant, id, status) {
    await this.sql(`update ${ident(tenant)}."Payment" set status = $2 where id = $1`, [id, status]);
  }

  /** Inserts an "Announcement" ('emergency' ones emit announcement to all). */
  insertAnnouncement(tenant, { title = 'Comunicado', body = 'Texto', type = 'general' } = {}) {
    return this.#insert(tenant, 'Announcement', { title, body, type });
  }

  /**
   * Calls hub.emit(); resolves with the event id as a number. `on` may be a
   * client inside a transaction; the pool is used otherwise.
   */
  async emit(tenant, kind, rooms, data = {}, { priority = 'normal', ack = false, on } = {}) {
    const text = 'select hub.emit($1, $2, $3::text[], $4::jsonb, $5, $6) as id';
    const params = [tenant, kind, rooms, JSON.stringify(data), priority, ack];
    const r = on ? (await on.query(text, params)).rows : await this.sql(text, params);
    return Number(r[0].id);
  }

  async close() {
    await this.pool.end().catch(() => {});
  }
}

let shared;
/** The shared Db on HUB_PGDIR (started when needed). */
export async function db() {
  shared ??= pgUrl().then((url) => new Db(url));
  return shared;
}

export async function sql(text, params) {
  return (await db()).sql(text, params);
}
export async function newTenant(prefix) {
  return (await db()).newTenant(prefix);
}

/** Ends the shared pool (the file's `after` hook calls this). */
export async function closeDb() {
  if (!shared) return;
  const d = await shared.catch(() => null);
  shared = undefined;
  if (d) await d.close();
}
