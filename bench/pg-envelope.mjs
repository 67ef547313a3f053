#!/usr/bin/env node
// pg-envelope.mjs - the envelope of one PostgreSQL under many hubs: how many
// hub.emit() commits per second it sustains while 1, 4 and 16 armonia-hub
// processes listen on it, and what limits it (bench/README.md, "PostgreSQL
// envelope").
//
//   node bench/pg-envelope.mjs [--hubs 0,1,4,16] [--seconds 20] [--producers 8]
//                              [--fsync-hubs 4] [--no-build]
//
// Every hub is a real armonia-hub process (HUB_WORKERS=1, its own three
// database sessions, LISTEN on the outbox channel) with no client: what is
// measured is the database side every hub of a deployment adds, not
// delivery to sockets. Zero hubs is the commit path alone (the commit-order
// lock, the outbox insert, NOTIFY with nobody listening). For each number
// of hubs:
//
//  1. the hubs start and report healthy; their events counters are read;
//  2. pgbench runs --producers sessions for --seconds, each a loop of
//     `SELECT hub.emit(...)` (one event per transaction, as an application
//     trigger makes them), as fast as the database answers;
//  3. meanwhile every 200 ms pg_stat_activity is sampled: what each
//     producer's backend waits on (the commit-order lock is an advisory
//     lock, "Lock:advisory"; WAL flushes "IO:WALSync"/"LWLock:WALWrite";
//     the NOTIFY queue "LWLock:NotifyQueue"/"NotifySLRU"), and
//     pg_notification_queue_usage();
//  4. after pgbench, the time until every hub has read every event (its
//     armonia_outbox_cursor reaches the newest seq), and each hub's count
//     of events read, which must equal the commits;
//  5. CPU of the cluster, of all hubs and of pgbench over the run.
//
// The cluster is scripts/pg.sh's (fsync off, synchronous_commit on: a
// commit waits for its WAL write, not for the disk). With --fsync-hubs N
// (default 4; 0 = skip) one more row runs N hubs with fsync on, so a
// commit waits for the disk's flush as on a production primary.
//
// Prints the machine, the command and a markdown table; writes
// bench/results/pg-envelope.json. With the defaults (five rows of 20 s, plus
// starting PostgreSQL and the hubs) it takes about 2.5 minutes.

import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { procCpuUs, clusterCpuUs } from './proc.mjs';
import { freePort, httpGet } from './net.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const HUBS = arg('hubs', '0,1,4,16').split(',').map(Number);
const SECONDS = Number(arg('seconds', '20'));
const PRODUCERS = Number(arg('producers', '8'));
const FSYNC_HUBS = Number(arg('fsync-hubs', '4'));
const NO_BUILD = process.argv.includes('--no-build');
/** Longest wait for the hubs to read every event after the producers stop. */
const CATCH_UP_MS = 30_000;
const SAMPLE_MS = 200;

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
  return r.stdout;
}

/** The hub binary: HUB_BIN, or build/bench-hub (built here unless --no-build). */
function hubBinary() {
  if (process.env.HUB_BIN) return process.env.HUB_BIN;
  const dir = join(root, 'build/bench-hub');
  if (!NO_BUILD) {
    log('building the hub (build/bench-hub)');
    run('cmake', ['-S', root, '-B', dir, '-DCMAKE_BUILD_TYPE=RelWithDebInfo']);
    run('cmake', ['--build', dir, '-j2', '--target', 'armonia-hub']);
  }
  return join(dir, 'armonia-hub');
}

/** The pg module, from the integration tests' or the ws peer's node_modules (npm ci there when neither has it). */
function pgModule() {
  for (const d of [join(root, 'tests/integration'), join(here, 'peers/ws')]) {
    if (existsSync(join(d, 'node_modules/pg'))) return createRequire(join(d, 'package.json'))('pg');
  }
  const d = join(root, 'tests/integration');
  log('npm ci in tests/integration');
  run('npm', ['ci', '--no-audit', '--no-fund', '--silent'], { cwd: d });
  return createRequire(join(d, 'package.json'))('pg');
}

/** The unlabelled series of a hub's /metrics: {name: value}. */
async function metrics(port) {
  const r = await httpGet(port, '/metrics');
  const out = {};
  for (const l of r.body.split('\n')) {
    const m = l.match(/^(armonia_[a-z_]+) (-?[0-9]+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Starts n hubs on free ports and resolves once each answers /healthz 200. */
async function startHubs(bin, hubUrl, n) {
  const secret = randomBytes(24).toString('hex');
  const hubs = [];
  for (let i = 0; i < n; i++) {
    const port = await freePort();
    const env = { ...process.env, DATABASE_URL: hubUrl, JWT_SECRET_KEY: secret, PORT: String(port), HUB_BIND: '127.0.0.1', HUB_LOG_LEVEL: 'error', HUB_WORKERS: '1' };
    const proc = spawn(bin, [], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    hubs.push({ port, proc });
  }
  const deadline = Date.now() + 30_000;
  for (const h of hubs) {
    while ((await httpGet(h.port, '/healthz')).status !== 200) {
      if (Date.now() > deadline || h.proc.exitCode !== null) throw new Error(`hub on port ${h.port} did not become healthy`);
      await sleep(100);
    }
  }
  return hubs;
}

async function stopHubs(hubs) {
  await Promise.all(hubs.map((h) => new Promise((resolve) => {
    if (h.proc.exitCode !== null) return resolve();
    h.proc.once('exit', resolve);
    h.proc.kill('SIGTERM');
  })));
}

/**
 * What the producers' backends are doing right now: one of 'cpu' (active,
 * waiting on nothing), '<wait_event_type>:<wait_event>', or 'client' (idle:
 * pgbench has not sent the next statement yet). And the NOTIFY queue's use,
 * and how many of the hubs' sessions are running a query (outbox reads).
 */
async function sample(admin) {
  const r = await admin.query(`
    SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'cpu') ELSE 'client' END AS what,
           count(*)::int AS n, pg_notification_queue_usage() AS q
      FROM pg_stat_activity WHERE application_name = 'pgbench' GROUP BY 1`);
  const h = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'armonia-hub%' AND state = 'active'");
  return { states: Object.fromEntries(r.rows.map((x) => [x.what, x.n])), queue: r.rows[0]?.q ?? 0, hubActive: h.rows[0].n };
}

/** CPU µs so far of the backends serving the hubs' sessions (application_name armonia-hub …). */
async function hubBackendsCpuUs(admin) {
  const r = await admin.query("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'armonia-hub%'");
  return Object.fromEntries(r.rows.map((x) => [x.pid, procCpuUs(x.pid)]));
}

/** Runs pgbench for SECONDS; resolves with {tps, commits, cpuUs} from its report. */
function pgbench(url, script) {
  return new Promise((resolve, reject) => {
    const p = spawn('pgbench', ['-n', '-M', 'prepared', '-f', script, '-c', String(PRODUCERS), '-j', '2', '-T', String(SECONDS), url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let cpu = 0;
    const timer = setInterval(() => {
      const c = procCpuUs(p.pid);
      if (Number.isFinite(c)) cpu = c;
    }, 500);
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.once('exit', (code) => {
      clearInterval(timer);
      const tps = out.match(/tps = ([0-9.]+) \(without initial connection time\)/);
      const n = out.match(/number of transactions actually processed: (\d+)/);
      const failed = out.match(/number of failed transactions: (\d+)/);
      if (code !== 0 || !tps || !n) return reject(new Error(`pgbench failed (${code}):\n${out}`));
      resolve({ tps: Number(tps[1]), commits: Number(n[1]), failed: failed ? Number(failed[1]) : 0, cpuUs: cpu });
    });
  });
}

/** One row of the table: n hubs, the producers at full speed for SECONDS. */
async function row(ctx, n, label) {
  const { admin, bin, hubUrl, url, dataDir, script } = ctx;
  log(`${label}: starting ${n} hub(s)`);
  const hubs = await startHubs(bin, hubUrl, n);
  try {
    const before = await Promise.all(hubs.map((h) => metrics(h.port)));
    const seq0 = Number((await admin.query('SELECT coalesce(max(seq), 0)::bigint AS s FROM hub.outbox')).rows[0].s);
    const cpu0 = { db: clusterCpuUs(dataDir), hubs: hubs.map((h) => procCpuUs(h.proc.pid)), sessions: await hubBackendsCpuUs(admin) };
    const t0 = Date.now();
    const bench = pgbench(url, script);
    const samples = [];
    let done = false;
    bench.finally(() => (done = true)).catch(() => {});
    await sleep(1000); // connections made, steady state
    while (!done) {
      samples.push(await sample(admin));
      await sleep(SAMPLE_MS);
    }
    const b = await bench;
    const seconds = (Date.now() - t0) / 1000;
    const cpu1 = { db: clusterCpuUs(dataDir), hubs: hubs.map((h) => procCpuUs(h.proc.pid)), sessions: await hubBackendsCpuUs(admin) };
    const sessionsCpu = Object.entries(cpu1.sessions).reduce((a, [pid, v]) => a + (v - (cpu0.sessions[pid] ?? v)), 0);
    const last = Number((await admin.query('SELECT coalesce(max(seq), 0)::bigint AS s FROM hub.outbox')).rows[0].s);
    const rows = Number((await admin.query('SELECT count(*)::bigint AS n FROM hub.outbox WHERE seq > $1', [seq0])).rows[0].n);
    // Every hub must read every event: wait for each cursor to reach the newest seq.
    const tc = Date.now();
    let after;
    for (;;) {
      after = await Promise.all(hubs.map((h) => metrics(h.port)));
      if (after.every((m) => m.armonia_outbox_cursor >= last)) break;
      if (Date.now() - tc > CATCH_UP_MS) break;
      await sleep(20);
    }
    const catchUpMs = Date.now() - tc;
    const read = after.map((m, i) => m.armonia_events_total - before[i].armonia_events_total);
    const reads = after.reduce((a, m, i) => a + m.armonia_outbox_reads_total - before[i].armonia_outbox_reads_total, 0);
    const states = {};
    let queueMax = 0;
    let hubActive = 0;
    for (const s of samples) {
      hubActive += s.hubActive;
      for (const [k, v] of Object.entries(s.states)) states[k] = (states[k] ?? 0) + v;
      queueMax = Math.max(queueMax, s.queue);
    }
    const total = Object.values(states).reduce((a, v) => a + v, 0) || 1;
    const share = Object.fromEntries(Object.entries(states).sort((a, b2) => b2[1] - a[1]).map(([k, v]) => [k, Math.round((1000 * v) / total) / 10]));
    const hubCpu = cpu1.hubs.reduce((a, v, i) => a + (v - cpu0.hubs[i]), 0);
    const r = {
      label, hubs: n, producers: PRODUCERS, seconds: Math.round(seconds * 10) / 10,
      commits_s: Math.round(b.tps), commits: b.commits, failed: b.failed, outbox_rows: rows,
      hubs_read_min: n ? Math.min(...read) : null, hubs_read_max: n ? Math.max(...read) : null, every_hub_read_all: n ? read.every((x) => x === rows) : null,
      catch_up_ms: catchUpMs,
      db_cores: Math.round(((cpu1.db - cpu0.db) / 1e6 / seconds) * 100) / 100,
      hubs_cores: Math.round((hubCpu / 1e6 / seconds) * 100) / 100,
      pgbench_cores: Math.round((b.cpuUs / 1e6 / seconds) * 100) / 100,
      db_cpu_us_per_commit: Math.round((cpu1.db - cpu0.db) / Math.max(1, rows)),
      hub_sessions_cpu_us_per_commit: Math.round(sessionsCpu / Math.max(1, rows)),
      producer_backends: share, notify_queue_max: queueMax,
      outbox_reads_s: Math.round(reads / seconds), hub_sessions_active: Math.round((10 * hubActive) / Math.max(1, samples.length)) / 10,
    };
    log(`${label}: ${r.commits_s} commits/s, every hub read all: ${r.every_hub_read_all} (${r.hubs_read_min}..${r.hubs_read_max} of ${rows}), ` +
      `db ${r.db_cores} cores, hubs ${r.hubs_cores}, pgbench ${r.pgbench_cores}; producers: ${JSON.stringify(share)}`);
    return r;
  } finally {
    await stopHubs(hubs);
  }
}

function table(rows) {
  const top = (s) => Object.entries(s).slice(0, 3).map(([k, v]) => `${k} ${v} %`).join(', ');
  const lines = [
    '| hubs | fsync | commits/s | every hub read every event | catch-up after stop (ms) | PostgreSQL CPU (cores) | hubs CPU (cores) | pgbench CPU (cores) | PostgreSQL CPU µs per commit | of which in the hubs\' sessions | outbox reads/s (all hubs) | hub sessions in a query (mean) | producers\' backends (share of samples) | NOTIFY queue max |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.hubs} | ${r.fsync} | ${r.commits_s} | ${r.every_hub_read_all === null ? '—' : r.every_hub_read_all ? 'yes' : `no (${r.hubs_read_min}..${r.hubs_read_max} of ${r.outbox_rows})`} | ${r.catch_up_ms} | ${r.db_cores} | ${r.hubs_cores} | ${r.pgbench_cores} | ${r.db_cpu_us_per_commit} | ${r.hub_sessions_cpu_us_per_commit} | ${r.outbox_reads_s} | ${r.hub_sessions_active} | ${top(r.producer_backends)} | ${(r.notify_queue_max * 100).toFixed(3)} % |`);
  }
  return lines.join('\n');
}

async function main() {
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const bin = hubBinary();
  const pg = pgModule();
  const dir = mkdtempSync(join(tmpdir(), 'armonia-envelope-'));
  const pgdir = join(dir, 'pg');
  log('starting a private PostgreSQL (scripts/pg.sh)');
  run(join(root, 'scripts/pg.sh'), ['start', pgdir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = readFileSync(join(pgdir, 'url'), 'utf8').trim();
  const hubUrl = run(join(root, 'scripts/pg.sh'), ['hub-url', pgdir], { stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const admin = new pg.Client({ connectionString: url, application_name: 'envelope' });
  await admin.connect();
  const rows = [];
  try {
    await admin.query("SELECT hub.create_demo_tenant('bench')");
    const script = join(dir, 'emit.sql');
    writeFileSync(script, "SELECT hub.emit('bench', 'tick', ARRAY['all'], '{\"msg\":\"Visitante en porteria: Juan Perez, torre 3, apartamento 302\"}'::jsonb, 'normal', false);\n");
    const settings = Object.fromEntries((await admin.query("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'max_connections', 'shared_buffers', 'server_version')")).rows.map((x) => [x.name, x.setting]));
    const ctx = { admin, bin, hubUrl, url, dataDir: join(pgdir, 'data'), script };
    for (const n of HUBS) rows.push({ ...(await row(ctx, n, `${n} hub(s)`)), fsync: settings.fsync });
    if (FSYNC_HUBS > 0) {
      await admin.query('ALTER SYSTEM SET fsync = on');
      await admin.query('SELECT pg_reload_conf()');
      await sleep(500);
      rows.push({ ...(await row(ctx, FSYNC_HUBS, `${FSYNC_HUBS} hub(s), fsync on`)), fsync: 'on' });
    }
    const machine = {
      date: new Date().toISOString(), cpus: cpus().length, cpu_model: cpus()[0]?.model, mem_gib: Math.round(totalmem() / 2 ** 30),
      kernel: release(), loadavg_before: loadBefore, loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), postgresql: settings,
    };
    const command = `node bench/pg-envelope.mjs ${process.argv.slice(2).join(' ')}`.trim();
    console.log(`\n${machine.date}, ${machine.cpus} cores (${machine.cpu_model}), ${machine.mem_gib} GiB, Linux ${machine.kernel}; load average before ${machine.loadavg_before}, after ${machine.loadavg}`);
    console.log(`PostgreSQL ${settings.server_version}: synchronous_commit ${settings.synchronous_commit}, fsync ${settings.fsync} (the last row: on), wal_sync_method ${settings.wal_sync_method}`);
    console.log(`command: ${command}; ${PRODUCERS} producer sessions, ${SECONDS} s per row\n`);
    console.log(table(rows));
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(join(here, 'results', 'pg-envelope.json'), `${JSON.stringify({ machine, command, rows }, null, 2)}\n`);
  } finally {
    await admin.end().catch(() => {});
    run(join(root, 'scripts/pg.sh'), ['stop', pgdir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
