#!/usr/bin/env node
// bench/run.mjs - the fan-out benchmark of issue 6, in one command:
//
//   node bench/run.mjs --quick     (< 5 min, smaller sizes, same scenarios)
//   node bench/run.mjs --full
//
// (--smoke: tiny sizes, to check the machinery only.)
// Options: --systems hub,limit,ws,socketio (which to run, in that order)
//          --out DIR (default bench/results) --no-build
//          --scenarios capacity: 100,000 connections over 6 hub workers and
//          over 6 limit servers on one port (--cap-conns, --cap-workers,
//          --cap-broadcasts, --cap-rounds, --cap-loadgen-nice; bench/README.md)
//          --systems hub,hub-sio --scenarios endpoints: the hub's cost per
//          connection and per message on /ws beside /socket.io/ (hub-sio:
//          the same hub, its load generated over Socket.IO)
//
// It builds what is missing (the hub with cmake into build/bench-hub unless
// HUB_BIN names one; armonia-loadgen, armonia-limit and armonia-producer into
// build/bench-tools;
// npm ci in bench/peers/*), starts a private PostgreSQL (scripts/pg.sh start
// in a temp dir), then for each system in turn: starts it, runs the
// scenarios with armonia-loadgen processes, stops it. Then it prints the
// markdown table, writes DIR/latest.json and DIR/latency-vs-rate.png
// (gnuplot; installed with apt-get as gnuplot-nox when missing).
//
// Latency is receipt time minus the producer's timestamp in the event data:
//   hub, ws, socketio: SELECT hub.emit(tenant, kind, rooms,
//       jsonb_build_object('t_us', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint, 'msg', …),
//       priority, false)  -- one autocommit statement per event, so t_us is
//       taken in the producing transaction just before its commit; sent by
//       armonia-producer (C, libpq pipeline mode on one connection: a few
//       µs of client CPU per event, no round trip between events; one
//       connection because commits take the outbox's seq lock one at a time
//       anyway, and one database session woken per burst costs the shared
//       cores less than two);
//   limit: the driver sends the event's JSON (same shape and size as the
//       hub's) in one UDP datagram; armonia-limit overwrites t_us with the
//       time the datagram reached its socket (SO_TIMESTAMPNS: the moment it
//       has the event, as commit is for the others, even when it is read
//       only after the run being written), then frames it once and writes
//       it to everyone, with the events that arrived meanwhile.
// The loadgen reads CLOCK_REALTIME on receipt: same machine, same clock.
//
// Every number printed is measured in this run; nothing is carried over.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createSocket } from 'node:dgram';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { procCpuUs, clusterCpuUs, childPids, schedUs } from './proc.mjs';
import { freePort, httpGet } from './net.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const FULL = argv.includes('--full');
const SMOKE = argv.includes('--smoke'); // tiny sizes: checks the machinery, measures nothing
const MODE = FULL ? 'full' : SMOKE ? 'smoke' : 'quick';
const SYSTEMS = opt('--systems', 'hub,limit,ws,socketio').split(',');
const OUT = opt('--out', join(here, 'results'));
const NO_BUILD = argv.includes('--no-build');
// --profile: record the hub (and the limit server) with perf during one
// extra broadcast step at 50 % of saturation; writes DIR/profile-<system>.txt.
const PROFILE = argv.includes('--profile');
// --scenarios idle,broadcast,targeted: run only these (default: all three);
// capacity (100,000 connections over several processes) and endpoints (the
// hub's cost on /ws beside /socket.io/) run only when named.
const SCENARIOS = opt('--scenarios', 'idle,broadcast,targeted').split(',');

// Sizes and times of each mode. Quick keeps every scenario at smaller sizes.
const CFG = SMOKE
  ? {
      idleSizes: [200, 500], connectN: 500, bcastSizes: [300],
      step_s: 1, startMsgs: 3000, factor: 2, maxSteps: 3, refine: 1, pairs: 1, fracs: [0.25, 0.5, 0.9],
      commonMsgs: 3000, tenants: 5, perTenant: 20, targetedRate: 50, targeted_s: 1,
      panicRate: 10, panic_s: 2, slow_s: 2, connectRepeats: 1,
    }
  : FULL
  ? {
      idleSizes: [1000, 10000, 19000], connectN: 10000, bcastSizes: [5000, 10000],
      step_s: 5, startMsgs: 25000, factor: 1.5, maxSteps: 15, refine: 2, pairs: 2, fracs: [0.25, 0.5, 0.9],
      commonMsgs: 50000, tenants: 100, perTenant: 100, targetedRate: 1000, targeted_s: 10,
      panicRate: 20, panic_s: 15, slow_s: 15, connectRepeats: 4,
    }
  : {
      idleSizes: [10000], connectN: 10000, bcastSizes: [5000],
      step_s: 1.5, startMsgs: 25000, factor: 2, maxSteps: 10, refine: 2, pairs: 1, fracs: [0.25, 0.5, 0.9],
      commonMsgs: 25000, tenants: 100, perTenant: 20, targetedRate: 500, targeted_s: 3,
      panicRate: 20, panic_s: 5, slow_s: 4, connectRepeats: 1,
    };
// --pairs N: repeats of the saturation search, hub and limit alternating
// (default: quick 1, full 2; 0 = none; only when both systems run).
const PAIRS = SCENARIOS.includes('broadcast') ? Number(opt('--pairs', String(CFG.pairs))) : 0;
// --connect-repeats N: the connect+auth measurement again on fresh hub and
// limit processes, alternating which goes first (default: quick 1, full 4;
// only when both systems run the idle scenario). One measurement lasts
// about a second, less than the machine's slow and fast stretches.
const CONNECT_REPEATS = SCENARIOS.includes('idle') ? Number(opt('--connect-repeats', String(CFG.connectRepeats))) : 0;
// The capacity scenario: connections, processes of the system (the hub's
// HUB_WORKERS; as many limit servers on one port) and broadcasts, each to
// every connection (at most 6: each is an event kind of its own, and the
// load generator tells 8 kinds apart).
const CAP = {
  conns: Number(opt('--cap-conns', SMOKE ? '2000' : '100000')),
  workers: Number(opt('--cap-workers', SMOKE ? '2' : '6')),
  broadcasts: Math.min(6, Number(opt('--cap-broadcasts', SMOKE ? '2' : '5'))),
  // Rounds of hub and limit server, alternating which goes first: on a
  // shared machine one system's minute can be quiet and the other's not.
  rounds: Number(opt('--cap-rounds', '1')),
  // nice value of the broadcast load generators (not the guards' process):
  // an experiment on how much of a latency is their sharing the cores.
  nice: opt('--cap-loadgen-nice', null),
};
// The capacity scenario's targets (issue 18): RSS per connection over all
// the system's processes, time until every connection is welcomed, last
// receipt of a broadcast against the limit server's, panic p99 meanwhile.
const CAP_TARGETS = { bytes_per_conn: 2560, connect_ms: 15000, last_vs_limit: 1.5, panic_p99_us: 20000 };
const LOADGEN_MAX_PER_PROC = 9500;
const SRC = '127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9';
const SECRET = randomBytes(24).toString('hex');
const MSG = 'Visitante en porteria: Juan Perez, torre 3, apartamento 302';

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

// ---------------------------------------------------------------- setup

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
}

function build() {
  let hubBin = process.env.HUB_BIN;
  if (!hubBin) {
    hubBin = join(root, 'build/bench-hub/armonia-hub');
    if (!NO_BUILD) {
      log('building the hub (build/bench-hub)');
      run('cmake', ['-S', root, '-B', join(root, 'build/bench-hub'), '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], { stdio: ['ignore', 'ignore', 'inherit'] });
      run('cmake', ['--build', join(root, 'build/bench-hub'), '-j2', '--target', 'armonia-hub'], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
  }
  const tools = join(root, 'build/bench-tools');
  if (!NO_BUILD) {
    log('building armonia-loadgen and armonia-limit (build/bench-tools)');
    run('cmake', ['-S', here, '-B', tools, '-DCMAKE_BUILD_TYPE=Release'], { stdio: ['ignore', 'ignore', 'inherit'] });
    run('cmake', ['--build', tools, '-j2'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  for (const p of ['socketio', 'ws']) {
    const d = join(here, 'peers', p);
    // The ws peer's packages also give this script its PostgreSQL client (startDb).
    if (!existsSync(join(d, 'node_modules')) && (SYSTEMS.includes(p) || p === 'ws')) {
      log(`npm ci in bench/peers/${p}`);
      run('npm', ['ci', '--no-audit', '--no-fund', '--silent'], { cwd: d });
    }
  }
  return { hubBin, loadgen: join(tools, 'armonia-loadgen'), limit: join(tools, 'armonia-limit'), producer: join(tools, 'armonia-producer') };
}

function ensureGnuplot() {
  if (spawnSync('sh', ['-c', 'command -v gnuplot']).status === 0) return true;
  log('installing gnuplot-nox (apt-get)');
  const sudo = process.getuid() === 0 ? [] : ['sudo'];
  const a = spawnSync(sudo.length ? 'sudo' : 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-q', 'gnuplot-nox'], { stdio: 'ignore' });
  if (a.status !== 0) {
    spawnSync(sudo.length ? 'sudo' : 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'update', '-q'], { stdio: 'ignore' });
    spawnSync(sudo.length ? 'sudo' : 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-q', 'gnuplot-nox'], { stdio: 'ignore' });
  }
  return spawnSync('sh', ['-c', 'command -v gnuplot']).status === 0;
}

// ---------------------------------------------------------------- /proc

function procRssKb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------- loadgen

/** One armonia-loadgen process, driven over stdin/stdout lines. */
class Loadgen {
  constructor(bin, args) {
    this.proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = [];
    this.waiters = [];
    let buf = '';
    this.proc.stdout.on('data', (c) => {
      buf += c;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(JSON.parse(line));
        else this.lines.push(JSON.parse(line));
      }
    });
    this.exited = new Promise((r) => this.proc.on('exit', r));
  }
  next(timeoutMs = 120000) {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('loadgen did not answer')), timeoutMs);
      this.waiters.push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  }
  send(cmd) {
    this.proc.stdin.write(cmd + '\n');
  }
  async ask(cmd) {
    this.send(cmd);
    return this.next();
  }
  async quit() {
    this.send('quit');
    await Promise.race([this.exited, sleep(3000)]);
    try {
      this.proc.kill('SIGKILL');
    } catch {}
  }
}

/**
 * Several loadgen processes holding n connections together. With
 * guardProc, the guards (the first `guards` connections of a one-tenant
 * swarm) get a process of their own, as guard consoles are machines of
 * their own: their frames are then not read after thousands of other
 * sockets' in one client's loop.
 */
class Swarm {
  constructor(bin, sys, n, { tenant = 'bench', perTenant = 1000000, guards = 0, units = 0, procs, guardProc = false, nice = null } = {}) {
    const rest = guardProc ? n - guards : n;
    const k = procs ?? Math.max(2, Math.ceil(rest / LOADGEN_MAX_PER_PROC));
    const sizes = Array.from({ length: k }, (_, i) => Math.floor(rest / k) + (i < rest % k ? 1 : 0));
    if (guardProc && guards) sizes.unshift(guards);
    this.n = n;
    this.lgs = [];
    let base = 0;
    for (const [i, c] of sizes.entries()) {
      const args = [
        '--port', String(sys.port), '--secret', SECRET, '--proto', sys.proto, '--conns', String(c),
        '--base', String(base), '--tenant', tenant, '--per-tenant', String(perTenant),
        '--guards', String(guards), '--units', String(units), '--src', SRC, '--inflight', process.env.LG_INFLIGHT ?? '256',
      ];
      // nice: the processes other than the guards' run at that nice value.
      const niced = nice != null && !(guardProc && guards && i === 0);
      this.lgs.push(niced ? new Loadgen('nice', ['-n', String(nice), bin, ...args]) : new Loadgen(bin, args));
      base += c;
    }
  }
  async connected() {
    const r = await Promise.all(this.lgs.map((l) => l.next(180000)));
    return mergeReports(r);
  }
  all(cmd) {
    for (const l of this.lgs) l.send(cmd);
  }
  async report() {
    return mergeReports(await Promise.all(this.lgs.map((l) => l.ask('report'))));
  }
  async quit() {
    await Promise.all(this.lgs.map((l) => l.quit()));
  }
}

function mergeHist(into, h) {
  for (const [lo, hi, c] of h) {
    const k = `${lo}:${hi}`;
    into.set(k, (into.get(k) ?? 0) + c);
  }
  return into;
}

function percentiles(map) {
  const rows = [...map.entries()].map(([k, c]) => {
    const [lo, hi] = k.split(':').map(Number);
    return [lo, hi, c];
  }).sort((a, b) => a[0] - b[0]);
  const total = rows.reduce((s, r) => s + r[2], 0);
  const at = (q) => {
    if (!total) return null;
    let need = q * total, acc = 0;
    for (const [lo, hi, c] of rows) {
      if (acc + c >= need) return lo + ((hi - lo) * (need - acc)) / c; // interpolate in the bucket
      acc += c;
    }
    return rows[rows.length - 1][1];
  };
  return { n: total, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: rows.length ? rows[rows.length - 1][1] : null };
}

function mergeReports(rs) {
  const m = {
    conns: 0, ready: 0, failed: 0, open: 0, paused: 0, closed_after_ready: 0, auth_errors: 0,
    http_errors: 0, connect_errors: 0, t_first_us: Infinity, t_last_ready_us: 0, cpu_us: 0, reads: 0, frames: 0,
    close_codes: {}, kinds: {}, connect: new Map(), t_first_ev_us: Infinity, t_last_ev_us: 0,
  };
  for (const r of rs) {
    for (const k of ['conns', 'ready', 'failed', 'open', 'paused', 'closed_after_ready', 'auth_errors', 'http_errors', 'connect_errors', 'cpu_us']) m[k] += r[k];
    m.reads += r.reads ?? 0;
    m.frames += r.frames ?? 0;
    if (r.t_first_us) m.t_first_us = Math.min(m.t_first_us, r.t_first_us);
    m.t_last_ready_us = Math.max(m.t_last_ready_us, r.t_last_ready_us);
    if (r.t_first_ev_us) m.t_first_ev_us = Math.min(m.t_first_ev_us, r.t_first_ev_us);
    m.t_last_ev_us = Math.max(m.t_last_ev_us, r.t_last_ev_us ?? 0);
    for (const [c, v] of Object.entries(r.close_codes)) m.close_codes[c] = (m.close_codes[c] ?? 0) + v;
    mergeHist(m.connect, r.connect_hist);
    for (const [k, v] of Object.entries(r.kinds)) {
      const t = (m.kinds[k] ??= { count: 0, no_stamp: 0, lat_max: 0, lat: new Map() });
      t.count += v.count;
      t.no_stamp += v.no_stamp;
      t.bytes = (t.bytes ?? 0) + (v.bytes ?? 0);
      t.lat_max = Math.max(t.lat_max, v.lat_max_us ?? 0);
      mergeHist(t.lat, v.lat);
    }
  }
  m.connectRate = m.ready && m.t_last_ready_us > m.t_first_us ? m.ready / ((m.t_last_ready_us - m.t_first_us) / 1e6) : null;
  return m;
}

// ---------------------------------------------------------------- systems

async function waitLine(proc, re, ms) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no "${re}" within ${ms} ms: ${buf.slice(-500)}`)), ms);
    const on = (c) => {
      buf += c;
      if (re.test(buf)) {
        clearTimeout(t);
        resolve();
      }
    };
    proc.stdout?.on('data', on);
    proc.stderr?.on('data', on);
    proc.on('exit', (code) => reject(new Error(`exited (${code}): ${buf.slice(-500)}`)));
  });
}

/**
 * Starts one system; returns {pid, port, proto, fire(events), pids(), stop()}.
 * With workers > 1 the hub runs that many worker processes (HUB_WORKERS)
 * and the limit server that many processes sharing the port
 * (SO_REUSEPORT), each sent every event; pids() lists every process of the
 * system (the hub's supervisor and its workers).
 */
/** Whether name is the hub: served on /ws (hub) or /socket.io/ (hub-sio). */
function isHub(name) {
  return name === 'hub' || name === 'hub-sio';
}

async function startSystem(name, bins, db, { workers = 1 } = {}) {
  const port = await freePort();
  let proc, fire, proto = 'armonia';
  let others = []; // the limit server's processes after the first
  if (isHub(name)) {
    // hub-sio: the same hub, its load generated on /socket.io/.
    if (name === 'hub-sio') proto = 'sio';
    proc = spawn(bins.hubBin, [], {
      env: { ...process.env, DATABASE_URL: db.url, JWT_SECRET_KEY: SECRET, PORT: String(port), HUB_BIND: '127.0.0.1', HUB_LOG_LEVEL: 'warn', HUB_RATE_LIMIT: '1000', HUB_RATE_BURST: '1000', HUB_TENANT_CACHE_MS: '600000', HUB_WORKERS: String(workers) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stderr.on('data', (c) => process.stderr.write(`hub: ${c}`));
    const deadline = Date.now() + 20000;
    for (;;) {
      if ((await httpGet(port, '/healthz')).status === 200) break;
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error('hub did not become healthy');
      await sleep(100);
    }
    fire = null; // events come from PostgreSQL: db.fire
  } else if (name === 'limit') {
    const ctls = [];
    for (let i = 0; i < workers; i++) {
      const ctl = await freePort();
      const p = spawn(bins.limit, ['--port', String(port), '--ctl-port', String(ctl)], { stdio: ['ignore', 'pipe', 'pipe'] });
      await waitLine(p, /listening/, 10000);
      ctls.push(ctl);
      if (i) others.push(p);
      else proc = p;
    }
    const udp = createSocket('udp4');
    let id = 0;
    fire = (ev) => {
      id++;
      const text = JSON.stringify({ type: 'event', id, seq: id, kind: ev.kind, priority: ev.priority, ack: false, ts: Date.now(), room: ev.rooms[0], data: { t_us: 0, msg: MSG } }).replace('"t_us":0', '"t_us":' + String(nowUs()).padStart(16, '0'));
      for (const ctl of ctls) udp.send(text, ctl, '127.0.0.1');
      return Promise.resolve();
    };
    proc.on('exit', () => udp.close());
  } else {
    proto = name === 'socketio' ? 'sio' : 'armonia';
    proc = spawn(process.execPath, [join(here, 'peers', name, 'server.mjs')], {
      env: { ...process.env, DATABASE_URL: db.url, JWT_SECRET_KEY: SECRET, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitLine(proc, /listening/, 20000);
    proc.stderr.on('data', (c) => process.stderr.write(`${name}: ${c}`));
    fire = null; // events come from PostgreSQL: db.fire
  }
  await sleep(300);
  return {
    name, port, proto, pid: proc.pid, fire, proc,
    pids: () => [proc.pid, ...(isHub(name) ? childPids(proc.pid) : others.map((p) => p.pid))],
    async stop() {
      // A hub with workers gets 20 s: its supervisor kills workers still
      // draining 15 s after SIGTERM (HUB_SHUTDOWN_TIMEOUT_MS + 5 s) and
      // then exits; killed before that, it would leave them running.
      const workers = isHub(name) ? childPids(proc.pid) : [];
      const wait = workers.length ? 20000 : 12000;
      await Promise.all([proc, ...others].map(async (p) => {
        p.kill('SIGTERM');
        await Promise.race([new Promise((r) => p.once('exit', r)), sleep(wait)]);
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      }));
      // Workers still running without their supervisor would take the
      // cores from whatever runs next.
      for (const pid of workers) {
        try {
          process.kill(pid, 'SIGKILL');
          log(`${name}: worker ${pid} still running ${wait / 1000} s after SIGTERM: killed`);
        } catch {}
      }
    },
  };
}

// ---------------------------------------------------------------- database

async function startDb(bins) {
  const dir = mkdtempSync(join(tmpdir(), 'armonia-bench-'));
  run(join(root, 'scripts/pg.sh'), ['start', join(dir, 'pg')]);
  const url = readFileSync(join(dir, 'pg', 'url'), 'utf8').trim();
  const require = createRequire(join(here, 'peers', 'ws', 'package.json'));
  const pg = require('pg');
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query("SELECT hub.create_demo_tenant('bench')");
  for (let t = 0; t < CFG.tenants; t++) {
    const name = `t${String(t).padStart(3, '0')}`;
    await admin.query(`CREATE SCHEMA IF NOT EXISTS ${name}`);
    await admin.query('SELECT hub.register_tenant($1)', [name]);
  }
  // The event source: one armonia-producer for the whole run; each fire is
  // a stream of its own, answered by id when its last statement returns.
  const prod = spawn(bins.producer, ['--url', url, '--conns', '1', '--inflight', '256', '--msg', MSG], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map();
  let buf = '', ids = 0, errors = 0;
  const ready = new Promise((resolve, reject) => {
    prod.once('exit', (code) => reject(new Error(`armonia-producer exited (${code})`)));
    prod.stdout.on('data', (c) => {
      buf += c;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (m.phase === 'ready') resolve();
        else waiting.get(m.id)?.(m);
      }
    });
  });
  await ready;
  return {
    dir, url, admin,
    get errors() { return errors; },
    /** CPU µs so far of the cluster and of armonia-producer. */
    cpu() {
      return { db: clusterCpuUs(join(dir, 'pg', 'data')), producer: procCpuUs(prod.pid) };
    },
    /** Emits count events at rate/s as spec says; resolves when all are answered. */
    fire(rate, count, spec) {
      const id = String(++ids);
      const extra = (spec.tenants ? ` tenants=${spec.tenants}` : '') + (spec.units ? ` units=${spec.units}` : '');
      prod.stdin.write(`fire id=${id} rate=${rate} count=${count} kind=${spec.kind} priority=${spec.priority} tenant=${spec.tenant} room=${spec.room}${extra}\n`);
      return new Promise((resolve) => waiting.set(id, (m) => {
        waiting.delete(id);
        if (m.errors && errors < 3) log(`emit failed ${m.errors} times (armonia-producer's stderr says why)`);
        errors += m.errors;
        resolve(m);
      }));
    },
    async stop() {
      prod.stdin.end('quit\n');
      await Promise.race([new Promise((r) => prod.once('exit', r)), sleep(3000)]);
      await admin.end().catch(() => {});
      run(join(root, 'scripts/pg.sh'), ['stop', join(dir, 'pg')]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- producing

/**
 * Fires Math.round(rate * seconds) events at `rate` per second, as spec
 * says: {kind, priority, tenant, room, tenants?, units?} — with tenants the
 * i-th event goes to tenant + (i mod tenants) in three digits, with units
 * to room + ((i div tenants) mod units). Systems that read PostgreSQL get
 * them from armonia-producer (never more than 256 unanswered: a database
 * that cannot keep up shows as a lower offered rate, which is reported);
 * the limit server by UDP from here. Resolves with what was offered.
 */
async function produce(sys, db, rate, seconds, spec) {
  const total = Math.round(rate * seconds);
  if (!sys.fire) {
    const m = await db.fire(rate, total, spec);
    return { sent: m.sent, elapsed: m.elapsed_s, offered: m.elapsed_s > 0 ? m.sent / m.elapsed_s : 0 };
  }
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    while (sent < due) sys.fire({ kind: spec.kind, priority: spec.priority, rooms: [spec.room] }), sent++;
    await sleep(1);
  }
  const elapsed = (performance.now() - t0) / 1000;
  return { sent, elapsed, offered: sent / elapsed };
}

/**
 * Waits until the swarm's event count stops growing (or max ms). With kind,
 * counts only that kind's events, and waits for its first one however long
 * it takes (up to max ms).
 */
async function drain(swarm, expect, maxMs = 10000, kind) {
  const t0 = Date.now();
  let last = -1, stable = 0, r;
  for (;;) {
    r = await swarm.report();
    const n = kind ? (r.kinds[kind]?.count ?? 0) : Object.values(r.kinds).reduce((s, k) => s + k.count, 0);
    if (n >= expect) break;
    if (n === last && (n > 0 || !kind)) {
      if (++stable >= 3) break;
    } else stable = 0;
    last = n;
    if (Date.now() - t0 > maxMs) break;
    await sleep(200);
  }
  return r;
}

/**
 * One measured window: reset, produce, drain, report. Kinds produced by
 * `extra` (e.g. panic) run alongside. Returns the numbers of one row.
 */
/** The hub's /metrics counters, by name without the armonia_ prefix. */
async function hubCounters(port) {
  const out = {};
  for (const m of (await httpGet(port, '/metrics')).body.matchAll(/^armonia_(\w+) (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function step(sys, db, swarm, { rate, seconds, n, kind = 'bcast', extra, sampleRss }) {
  swarm.all('reset');
  await swarm.report();
  const cpu0 = procCpuUs(sys.pid);
  const side0 = db.cpu();
  const m0 = isHub(sys.name) ? await hubCounters(sys.port) : null;
  const rss = [];
  let sampling = sampleRss;
  const sampler = (async () => {
    while (sampling) {
      rss.push(procRssKb(sys.pid));
      await sleep(250);
    }
  })();
  const tasks = [produce(sys, db, rate, seconds, { tenant: 'bench', kind, room: 'all', priority: 'normal' })];
  if (extra) tasks.push(produce(sys, db, extra.rate, seconds, { tenant: 'bench', kind: extra.kind, room: extra.room, priority: extra.priority }));
  const [p, px] = await Promise.all(tasks);
  const expect = p.sent * n + (px ? px.sent * extra.n : 0);
  const r = await drain(swarm, expect);
  const cpu1 = procCpuUs(sys.pid);
  const side1 = db.cpu();
  const m1 = m0 ? await hubCounters(sys.port) : null;
  sampling = false;
  await sampler;
  const main = r.kinds[kind] ?? { count: 0, lat: new Map() };
  const delivered = Object.values(r.kinds).reduce((s, k) => s + k.count, 0);
  const span = (r.t_last_ev_us - r.t_first_ev_us) / 1e6;
  const res = {
    rate_events: rate, offered_events: p.offered, offered_msgs: p.offered * n, sent: p.sent,
    expected: expect, delivered, lost: Math.max(0, expect - delivered),
    delivered_msgs_s: span > 0 ? delivered / span : null,
    server_cpu_us: cpu1 - cpu0, cpu_us_per_msg: delivered ? (cpu1 - cpu0) / delivered : null,
    loadgen_cpu_us: r.cpu_us, loadgen_cpu_us_per_msg: delivered ? r.cpu_us / delivered : null,
    // How many frames each recv() of the load generator brought: what the
    // server's writes (and the kernel's coalescing) leave to the reader.
    loadgen_reads: r.reads, frames_per_read: r.reads ? r.frames / r.reads : null,
    // The hub's socket writes meanwhile (sendmsg() calls): frames per write.
    hub_writes: m1 ? m1.socket_writes_total - m0.socket_writes_total : undefined,
    frames_per_write: m1 && m1.socket_writes_total > m0.socket_writes_total ? (m1.frames_sent_total - m0.frames_sent_total) / (m1.socket_writes_total - m0.socket_writes_total) : undefined,
    // What the event source cost meanwhile (the same cluster serves the
    // Node peers' LISTEN; the limit server is fed by UDP from this process).
    db_cpu_us: side1.db - side0.db, producer_cpu_us: side1.producer - side0.producer,
    db_cpu_us_per_event: p.sent ? (side1.db - side0.db) / p.sent : null,
    // The hub's queries to the outbox and its wake-ups by NOTIFY meanwhile.
    hub_outbox: m1 ? { reads: m1.outbox_reads_total - m0.outbox_reads_total, wakeups: m1.outbox_wakeups_total - m0.outbox_wakeups_total, events: m1.events_total - m0.events_total } : undefined,
    lat: percentiles(main.lat), closes: r.close_codes, closed_after_ready: r.closed_after_ready,
    // Payload bytes of one event as the clients read it (without the WebSocket header).
    payload_bytes_per_msg: main.count ? main.bytes / main.count : null,
    lat_hist: [...main.lat.entries()],
  };
  if (px) res.extra = { kind: extra.kind, sent: px.sent, lat: percentiles(r.kinds[extra.kind]?.lat ?? new Map()), received: r.kinds[extra.kind]?.count ?? 0 };
  if (sampleRss) res.rss_kb = rss;
  return res;
}

const fmtUs = (v) => (v == null ? '–' : v >= 1000 ? `${(v / 1000).toFixed(v >= 100000 ? 0 : 1)} ms` : `${Math.round(v)} µs`);

// ---------------------------------------------------------------- scenarios

/** `perf report` of a recording: self time by library and symbol, ≥ 1 %. */
function perfReport(data) {
  return spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--percent-limit', '1', '-g', 'none', '--sort', 'dso,symbol'], { maxBuffer: 64 << 20 });
}

/** n connections (10 of them guards) until all are welcomed, with the CPU each side spent. */
async function connectAll(sys, bins, n) {
  const cpu0 = procCpuUs(sys.pid);
  const sw = new Swarm(bins.loadgen, sys, n, { guards: 10 });
  const lgCpu0 = sw.lgs.map((l) => procCpuUs(l.proc.pid));
  const c = await sw.connected();
  const cpu = procCpuUs(sys.pid) - cpu0;
  const lgCpu = sw.lgs.reduce((s, l, i) => s + procCpuUs(l.proc.pid) - lgCpu0[i], 0);
  return { sw, c, cpu, lgCpu };
}

/**
 * The endpoints scenario (runs only when named; meant for systems hub and
 * hub-sio, the hub on /ws and on /socket.io/): on a fresh process,
 * CFG.bcastSizes[0] connections (RSS growth per connection, CPU per
 * connect+auth), then broadcast steps at the common rate and at ten times
 * it (server CPU per delivered message, payload bytes per message; at the
 * low rate the loop's fixed costs weigh in, at the higher one the cost of
 * each frame). About fifteen seconds each.
 */
async function endpoints(name, bins, db) {
  const n = CFG.bcastSizes[0];
  const sys = await startSystem(name, bins, db);
  let sw;
  try {
    await sleep(500);
    const rss0 = procRssKb(sys.pid);
    const got = await connectAll(sys, bins, n);
    sw = got.sw;
    await sleep(1000);
    const rss1 = procRssKb(sys.pid);
    const s = await step(sys, db, sw, { rate: CFG.commonMsgs / n, seconds: Math.max(2, CFG.step_s), n });
    const s10 = await step(sys, db, sw, { rate: (10 * CFG.commonMsgs) / n, seconds: Math.max(2, CFG.step_s), n });
    const res = {
      conns: n, ready: got.c.ready, bytes_per_conn: got.c.ready ? ((rss1 - rss0) * 1024) / got.c.ready : null,
      server_cpu_us_per_conn: got.c.ready ? got.cpu / got.c.ready : null, step: s, step10: s10,
    };
    log(`${name} endpoints: ${got.c.ready}/${n} ready, RSS ${rss0}→${rss1} kB = ${Math.round(res.bytes_per_conn)} B/conn, ` +
      `${res.server_cpu_us_per_conn?.toFixed(1)} CPU-µs/conn; ${Math.round(s.delivered_msgs_s)} msgs/s: ${s.cpu_us_per_msg?.toFixed(2)} CPU-µs/msg, ` +
      `${Math.round(s.payload_bytes_per_msg)} B/msg, p99 ${fmtUs(s.lat.p99)}, lost ${s.lost}; ` +
      `${Math.round(s10.delivered_msgs_s)} msgs/s: ${s10.cpu_us_per_msg?.toFixed(2)} CPU-µs/msg, p99 ${fmtUs(s10.lat.p99)}, lost ${s10.lost}`);
    return res;
  } finally {
    await sw?.quit();
    await sys.stop();
  }
}

/** The endpoints scenario's table: one row per system, ratios to the first. */
function endpointsTable(results) {
  const rows = SYSTEMS.filter((x) => results[x]?.endpoints);
  if (!rows.length) return '';
  const first = results[rows[0]].endpoints;
  const cols = [
    ['bytes/conn (RSS)', (e) => e.bytes_per_conn, (v) => `${Math.round(v)} B`],
    ['CPU-µs/conn (connect+auth)', (e) => e.server_cpu_us_per_conn, (v) => v.toFixed(1)],
    [`CPU-µs/msg @${CFG.commonMsgs / 1000}k msgs/s`, (e) => e.step.cpu_us_per_msg, (v) => v.toFixed(2)],
    [`CPU-µs/msg @${CFG.commonMsgs / 100}k msgs/s`, (e) => e.step10.cpu_us_per_msg, (v) => v.toFixed(2)],
    ['payload B/msg', (e) => e.step.payload_bytes_per_msg, (v) => `${Math.round(v)}`],
    [`p99 @${CFG.commonMsgs / 100}k`, (e) => e.step10.lat.p99, fmtUs],
    ['lost', (e) => e.step.lost + e.step10.lost, (v) => String(v)],
  ];
  let md = `Endpoints, ${first.conns} connections each:

| system | ${cols.map((c) => c[0]).join(' | ')} |
|---|${cols.map(() => '---').join('|')}|
`;
  for (const name of rows) {
    const e = results[name].endpoints;
    md += `| ${name} | ${cols.map(([, get, f], i) => {
      const v = get(e), b = get(first);
      if (v == null) return 'n/a';
      return f(v) + (name !== rows[0] && i < 5 && b ? ` (${(v / b).toFixed(2)}×)` : '');
    }).join(' | ')} |
`;
  }
  return md;
}

/** The connect+auth measurement alone, on a fresh process. */
async function repeatConnect(name, bins, db, n) {
  const sys = await startSystem(name, bins, db);
  try {
    await sleep(500);
    const { sw, c, cpu, lgCpu } = await connectAll(sys, bins, n);
    await sw.quit();
    const r = {
      conns: n, ready: c.ready, connect_rate: c.connectRate,
      server_cpu_us_per_conn: c.ready ? cpu / c.ready : null, loadgen_cpu_us_per_conn: c.ready ? lgCpu / c.ready : null,
    };
    log(`${name} connect ${n} again: ${c.ready}/${n} ready, ${Math.round(r.connect_rate)}/s, server ${r.server_cpu_us_per_conn?.toFixed(1)} CPU-µs/conn, load generator ${r.loadgen_cpu_us_per_conn?.toFixed(1)}`);
    return r;
  } finally {
    await sys.stop();
  }
}

/** Connect rates at CFG.connectN: the idle scenario's, then its repeats. */
function connectRates(r) {
  const first = r.idle?.find((x) => x.conns === CFG.connectN);
  return first ? [first.connect_rate, ...(first.repeats ?? []).map((x) => x.connect_rate)] : [];
}

async function idle(name, bins, db, n) {
  const sys = await startSystem(name, bins, db);
  try {
    await sleep(500);
    const rss0 = procRssKb(sys.pid);
    // --profile: the connect path of the hub and the limit server, recorded
    // from before the first connection until the last welcome.
    const prof = PROFILE && (name === 'hub' || name === 'limit') && n === CFG.connectN
      ? spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-g', '-o', join(OUT, 'tmp', `${name}.connect.perf.data`), '-p', String(sys.pid)], { stdio: 'ignore' })
      : null;
    if (prof) await sleep(300);
    const { sw, c, cpu, lgCpu } = await connectAll(sys, bins, n);
    if (prof) {
      prof.kill('SIGINT');
      await new Promise((r) => prof.on('exit', r));
      const rep = perfReport(join(OUT, 'tmp', `${name}.connect.perf.data`));
      writeFileSync(join(OUT, `profile-${name}-connect.txt`), `perf profile of ${name} (pid ${sys.pid}) while ${n} connections connect and authenticate (${MODE} mode): ${c.ready} ready, ${Math.round(c.connectRate)}/s\n\n== perf report --no-children (self time by symbol, ≥ 1 %) ==\n${rep.stdout?.toString() ?? ''}`);
      log(`${name}: connect profile written to ${join(OUT, `profile-${name}-connect.txt`)}`);
    }
    await sleep(1000);
    const rss1 = procRssKb(sys.pid);
    await sw.quit();
    const res = {
      conns: n, ready: c.ready, failed: c.failed, rss_before_kb: rss0, rss_after_kb: rss1,
      bytes_per_conn: c.ready ? ((rss1 - rss0) * 1024) / c.ready : null, connect_rate: c.connectRate,
      connect_ms: (c.t_last_ready_us - c.t_first_us) / 1000, connect_lat: percentiles(c.connect),
      // CPU per connection while connecting: steadier than the wall-clock
      // rate, which on two shared cores also measures the neighbours.
      server_cpu_us_per_conn: c.ready ? cpu / c.ready : null, loadgen_cpu_us_per_conn: c.ready ? lgCpu / c.ready : null,
    };
    log(`${name} idle ${n}: ${c.ready}/${n} ready in ${res.connect_ms.toFixed(0)} ms (${Math.round(res.connect_rate)}/s), ` +
      `server ${res.server_cpu_us_per_conn?.toFixed(1)} CPU-µs/conn, load generator ${res.loadgen_cpu_us_per_conn?.toFixed(1)}, RSS ${rss0}→${rss1} kB = ${Math.round(res.bytes_per_conn)} B/conn`);
    return res;
  } finally {
    await sys.stop();
  }
}

/**
 * The saturation search on a started, connected system: offered rates from
 * `from` (default CFG.startMsgs) growing by CFG.factor, then CFG.refine
 * bisecting steps. Resolves with { steps, saturation_msgs_s, sustained_msgs_s }.
 */
async function saturate(name, sys, db, sw, n, from) {
  const steps = [];
  // Saturation search: offered msgs/s grows by CFG.factor until the system
  // delivers less than 90 % of what it was offered (or loses frames).
  // One step past the first that falls short, so that every system gets
  // an overloaded step and "highest delivered" compares like with like.
  let msgs = from ?? CFG.startMsgs, short = 0;
  const kept = (s) => !(s.delivered < 0.98 * s.expected || s.delivered_msgs_s < 0.9 * s.offered_msgs);
  const logStep = (s) =>
    log(`${name} bcast ${n}: offered ${Math.round(s.offered_msgs)} msgs/s → delivered ${Math.round(s.delivered_msgs_s)} msgs/s, p50 ${fmtUs(s.lat.p50)} p99 ${fmtUs(s.lat.p99)}, cpu ${s.cpu_us_per_msg?.toFixed(2)} µs/msg, lg cpu ${s.loadgen_cpu_us_per_msg?.toFixed(2)} µs/msg, frames/read ${s.frames_per_read?.toFixed(2)}${s.frames_per_write ? ` frames/write ${s.frames_per_write.toFixed(2)}` : ''}, db cpu ${s.db_cpu_us_per_event?.toFixed(0)} µs/event${s.hub_outbox ? `, outbox reads ${s.hub_outbox.reads} wakeups ${s.hub_outbox.wakeups} events ${s.hub_outbox.events}` : ''}, lost ${s.lost}`);
  let lo = 0, hi = 0; // the highest offered rate kept up with, the lowest not
  for (let i = 0; i < CFG.maxSteps; i++) {
    const s = await step(sys, db, sw, { rate: msgs / n, seconds: CFG.step_s, n });
    steps.push(s);
    logStep(s);
    if (s.closed_after_ready > 0) break;
    if (!hi && kept(s)) lo = s.offered_msgs;
    else if (!hi) hi = s.offered_msgs;
    if (!kept(s) && ++short >= 2) break;
    msgs *= CFG.factor;
  }
  // Then the knee itself: CFG.refine steps bisect (geometrically) between
  // the last offered rate kept up with and the first that was not, so
  // every system is also measured just past its own knee. Offering far
  // more than a system delivers costs its event source work for events
  // that only queue (for the database-fed systems, a transaction each),
  // which would otherwise weigh on some systems more than on others.
  for (let i = 0; i < CFG.refine && lo && hi && !steps.some((s) => s.closed_after_ready > 0); i++) {
    const mid = Math.sqrt(lo * hi);
    const s = await step(sys, db, sw, { rate: mid / n, seconds: CFG.step_s, n });
    s.refine = true;
    steps.push(s);
    logStep(s);
    if (s.closed_after_ready > 0) break;
    if (kept(s)) lo = mid;
    else hi = mid;
  }
  const saturation_msgs_s = Math.max(...steps.map((s) => s.delivered_msgs_s ?? 0));
  // The highest rate delivered at a step that kept up (≥ 90 % of the
  // offered rate, nothing lost): what the system sustains, as opposed to
  // the most it delivers while a backlog builds up.
  const sustained_msgs_s = Math.max(0, ...steps.filter(kept).map((s) => s.delivered_msgs_s ?? 0));
  log(`${name} bcast ${n}: saturation ${Math.round(saturation_msgs_s)} msgs/s, sustained ${Math.round(sustained_msgs_s)} msgs/s`);
  return { steps, saturation_msgs_s, sustained_msgs_s };
}

async function broadcast(name, bins, db, n) {
  const out = { conns: n, steps: [], fracs: {} };
  let sys = await startSystem(name, bins, db);
  let sw = new Swarm(bins.loadgen, sys, n, { guards: 10, guardProc: true });
  const restart = async () => {
    await sw.quit();
    await sys.stop();
    sys = await startSystem(name, bins, db);
    sw = new Swarm(bins.loadgen, sys, n, { guards: 10, guardProc: true });
    const c = await sw.connected();
    if (c.ready < n) log(`${name}: only ${c.ready}/${n} connections after restart`);
  };
  try {
    const c = await sw.connected();
    if (c.ready < n) log(`${name}: only ${c.ready}/${n} connections`);
    // Common rate first, on the fresh system: CPU per message where every
    // system keeps up.
    out.common = await step(sys, db, sw, { rate: CFG.commonMsgs / n, seconds: Math.max(2, CFG.step_s), n });
    log(`${name} bcast ${n} @common ${CFG.commonMsgs}: cpu ${out.common.cpu_us_per_msg?.toFixed(2)} µs/msg, lost ${out.common.lost}`);
    Object.assign(out, await saturate(name, sys, db, sw, n));
    await restart();
    // The same rate again after the restart: how much one measurement varies.
    out.common_again = await step(sys, db, sw, { rate: CFG.commonMsgs / n, seconds: Math.max(2, CFG.step_s), n });
    log(`${name} bcast ${n} @common ${CFG.commonMsgs} after restart: cpu ${out.common_again.cpu_us_per_msg?.toFixed(2)} µs/msg, lost ${out.common_again.lost}`);
    for (const f of CFG.fracs) {
      const rate = (f * out.saturation_msgs_s) / n;
      const s = await step(sys, db, sw, { rate, seconds: CFG.step_s, n });
      out.fracs[f] = s;
      log(`${name} bcast ${n} @${f * 100}%: ${Math.round(s.delivered_msgs_s)} msgs/s, p50 ${fmtUs(s.lat.p50)} p99 ${fmtUs(s.lat.p99)} p99.9 ${fmtUs(s.lat.p999)}, lost ${s.lost}`);
      if (s.closed_after_ready > 0) await restart();
    }
    if (PROFILE && (name === 'hub' || name === 'limit') && n === CFG.bcastSizes[0]) {
      const rate = (0.5 * out.saturation_msgs_s) / n;
      const data = join(OUT, 'tmp', `${name}.perf.data`);
      const secs = String(Math.max(2, CFG.step_s - 0.5));
      const rec = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-g', '-o', data, '-p', String(sys.pid), '--', 'sleep', secs], { stdio: 'ignore' });
      const stat = spawn('perf', ['stat', '-e', 'task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions', '-p', String(sys.pid), '--', 'sleep', secs], { stdio: ['ignore', 'ignore', 'pipe'] });
      const done = Promise.all([new Promise((r) => rec.on('exit', r)), new Promise((r) => stat.on('exit', r))]);
      let statText = '';
      stat.stderr.on('data', (c) => (statText += c));
      const s = await step(sys, db, sw, { rate, seconds: CFG.step_s, n });
      await done;
      const rep = perfReport(data);
      const txt = `perf profile of ${name} (pid ${sys.pid}) during a broadcast to ${n} connections at ${Math.round(s.delivered_msgs_s)} msgs/s (${MODE} mode)\n` +
        `server CPU ${s.cpu_us_per_msg?.toFixed(2)} µs per delivered message; p50 ${fmtUs(s.lat.p50)} p99 ${fmtUs(s.lat.p99)}\n\n` +
        `== perf stat ==\n${statText}\n== perf report --no-children (self time by symbol, ≥ 1 %) ==\n${rep.stdout?.toString() ?? ''}`;
      writeFileSync(join(OUT, `profile-${name}.txt`), txt);
      out.profile = { file: `profile-${name}.txt`, step: s };
      log(`${name}: profile written to ${join(OUT, `profile-${name}.txt`)}`);
    }
    if (name !== 'limit' && n === CFG.bcastSizes[0]) {
      // Panic to 10 guards while the broadcast runs at 50 % of saturation.
      const rate = (0.5 * out.saturation_msgs_s) / n;
      const s = await step(sys, db, sw, { rate, seconds: CFG.panic_s, n, extra: { kind: 'alarm', room: 'role:guard', priority: 'critical', rate: CFG.panicRate, n: 10 } });
      out.panic = s;
      log(`${name} panic under ${Math.round(s.delivered_msgs_s)} msgs/s broadcast: ${s.extra.received}/${s.extra.sent * 10} panic frames, p50 ${fmtUs(s.extra.lat.p50)} p99 ${fmtUs(s.extra.lat.p99)}`);
      if (s.closed_after_ready > 0) await restart();
    }
    if (n === CFG.bcastSizes[0]) {
      // Slow consumers: 1 % stop reading during a 50 % broadcast.
      const rate = (0.5 * out.saturation_msgs_s) / n;
      sw.all('pause 1');
      const rss0 = procRssKb(sys.pid);
      const s = await step(sys, db, sw, { rate, seconds: CFG.slow_s, n: n - Math.round(n / 100), sampleRss: true });
      sw.all('resume');
      out.slow = { ...s, rss_start_kb: rss0, rss_max_kb: Math.max(...s.rss_kb), rss_end_kb: s.rss_kb[s.rss_kb.length - 1] };
      log(`${name} slow consumers: RSS ${rss0} → max ${out.slow.rss_max_kb} kB, others p99 ${fmtUs(s.lat.p99)} (vs ${fmtUs(out.fracs[0.5]?.lat.p99)} at 50 %), closes ${JSON.stringify(s.closes)}`);
    }
  } finally {
    await sw.quit();
    await sys.stop();
  }
  return out;
}

/**
 * One more saturation search on a fresh system (started, connected, searched,
 * stopped), from `from` msgs/s: the repeats that alternate hub and limit.
 */
async function repeatSaturation(name, bins, db, n, from) {
  const sys = await startSystem(name, bins, db);
  const sw = new Swarm(bins.loadgen, sys, n, { guards: 10, guardProc: true });
  try {
    const c = await sw.connected();
    if (c.ready < n) log(`${name}: only ${c.ready}/${n} connections`);
    const r = await saturate(name, sys, db, sw, n, from);
    // And the broadcast at 50 % of this search's figure (on the same
    // process: the search's last step has drained), for the latency columns.
    const half = await step(sys, db, sw, { rate: (0.5 * r.saturation_msgs_s) / n, seconds: CFG.step_s, n });
    log(`${name} bcast ${n} @50% (repeat): ${Math.round(half.delivered_msgs_s)} msgs/s, p50 ${fmtUs(half.lat.p50)} p99 ${fmtUs(half.lat.p99)} p99.9 ${fmtUs(half.lat.p999)}, lost ${half.lost}`);
    return { ...r, fracs: { 0.5: half } };
  } finally {
    await sw.quit();
    await sys.stop();
  }
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/**
 * Server CPU per message at the fixed rate: the mean of its two steps (on
 * the fresh system and again after the restart), each a few seconds of
 * 10 ms ticks on a machine whose speed drifts.
 */
function cpuPerMsg(r) {
  const b = r?.bcast?.[0];
  const v = [b?.common?.cpu_us_per_msg, b?.common_again?.cpu_us_per_msg].filter((x) => x != null);
  return v.length ? v.reduce((a, c) => a + c, 0) / v.length : null;
}

/** Percentile k at 50 % of saturation: the median over the first search and the repeats. */
function halfLat(r, k) {
  const v = halfSteps(r).map((x) => x?.lat?.[k]).filter((x) => x != null);
  return v.length ? median(v) : null;
}

/** The 50 % steps of system r at the first broadcast size: the first search's, then each repeat's. */
function halfSteps(r) {
  const b = r?.bcast?.[0];
  return b ? [b.fracs?.[0.5], ...(b.repeats ?? []).map((x) => x.fracs?.[0.5])] : [];
}

/** Every saturation figure of system r at the first broadcast size: the main search and the repeats. */
const saturations = (r) => (r?.bcast?.[0] ? [r.bcast[0].saturation_msgs_s, ...(r.bcast[0].repeats ?? []).map((x) => x.saturation_msgs_s)] : []);

async function targeted(name, bins, db) {
  if (name === 'limit') return null; // no routing: nothing to compare
  const n = CFG.tenants * CFG.perTenant;
  const sys = await startSystem(name, bins, db);
  const sw = new Swarm(bins.loadgen, sys, n, { tenant: 't%03d', perTenant: CFG.perTenant, units: CFG.perTenant / 2 });
  try {
    const c = await sw.connected();
    if (c.ready < n) log(`${name}: targeted only ${c.ready}/${n} connections`);
    sw.all('reset');
    await sw.report();
    const cpu0 = procCpuUs(sys.pid);
    const units = CFG.perTenant / 2;
    const p = await produce(sys, db, CFG.targetedRate, CFG.targeted_s, {
      tenant: 't', tenants: CFG.tenants, kind: 'visit', room: 'unit:u', units, priority: 'high',
    });
    const r = await drain(sw, p.sent * 2);
    const cpu = procCpuUs(sys.pid) - cpu0;
    const k = r.kinds.visit ?? { count: 0, lat: new Map() };
    const res = { conns: n, offered_events: p.offered, sent: p.sent, expected: p.sent * 2, delivered: k.count, lat: percentiles(k.lat), server_cpu_us: cpu, cpu_us_per_event: p.sent ? cpu / p.sent : null, loadgen_cpu_us: r.cpu_us };
    log(`${name} targeted: ${k.count}/${p.sent * 2} at ${Math.round(p.offered)} ev/s, p50 ${fmtUs(res.lat.p50)} p99 ${fmtUs(res.lat.p99)}, cpu ${res.cpu_us_per_event?.toFixed(1)} µs/event`);
    return res;
  } finally {
    await sw.quit();
    await sys.stop();
  }
}

/**
 * The capacity scenario on a fresh system of CAP.workers processes:
 * CAP.conns connections from load-generator processes of at most
 * LOADGEN_MAX_PER_PROC each, plus one holding the 10 guards. Measures
 * - the RSS of every process of the system (the hub's supervisor and
 *   workers; every limit server) before the first connection and 1.5 s
 *   after the last welcome: (after − before) / connections;
 * - the time from the first connect of any load-generator process to the
 *   last welcome of any (they share CLOCK_REALTIME);
 * - CAP.broadcasts events to room `all`, one at a time (the next is sent
 *   once the previous has reached everyone), each of a kind of its own
 *   (cap1, cap2, …) so that each has its own histogram and its own largest
 *   latency: commit (for the limit server, arrival) to last receipt, and
 *   p50/p99 of the receipts;
 * - for the hub, `alarm`s to the 10 guards at CFG.panicRate per second from
 *   just before the first broadcast until the last has arrived: their p99.
 * Resolves with every figure (null for systems other than hub and limit).
 */
async function capacity(name, bins, db) {
  if (name !== 'hub' && name !== 'limit') return null;
  const n = CAP.conns;
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const cpuOf = (pids) => sum(pids.map((pid) => procCpuUs(pid) || 0));
  const sys = await startSystem(name, bins, db, { workers: CAP.workers });
  let sw = null;
  try {
    await sleep(1000);
    const pids = sys.pids();
    const want = CAP.workers + (name === 'hub' && CAP.workers > 1 ? 1 : 0);
    if (pids.length !== want) log(`${name}: ${pids.length} processes, expected ${want}`);
    const rss0 = pids.map(procRssKb);
    const cpu0 = cpuOf(pids);
    sw = new Swarm(bins.loadgen, sys, n, { guards: 10, guardProc: true, nice: CAP.nice });
    const c = await sw.connected();
    const cpuConnect = cpuOf(pids) - cpu0;
    await sleep(1500);
    const rss1 = pids.map(procRssKb);
    const res = {
      workers: CAP.workers, processes: pids.length, loadgen_processes: sw.lgs.length,
      conns: n, ready: c.ready, failed: c.failed, rss_before_kb: rss0, rss_after_kb: rss1,
      bytes_per_conn: c.ready ? ((sum(rss1) - sum(rss0)) * 1024) / c.ready : null,
      connect_ms: (c.t_last_ready_us - c.t_first_us) / 1000, connect_rate: c.connectRate, connect_lat: percentiles(c.connect),
      server_cpu_us_per_conn: c.ready ? cpuConnect / c.ready : null, loadgen_cpu_us_per_conn: c.ready ? c.cpu_us / c.ready : null,
    };
    log(`${name} capacity: ${c.ready}/${n} ready over ${pids.length} processes in ${(res.connect_ms / 1000).toFixed(1)} s, ` +
      `RSS ${sum(rss0)}→${sum(rss1)} kB = ${Math.round(res.bytes_per_conn)} B/conn, server ${res.server_cpu_us_per_conn?.toFixed(1)} CPU-µs/conn, load generator ${res.loadgen_cpu_us_per_conn?.toFixed(1)}`);
    sw.all('reset');
    await sw.report();
    const cpuB0 = cpuOf(pids);
    // Run-queue waits meanwhile of the system, of the broadcast load
    // generators and of the guards' one (the first): the share of a
    // latency that is waiting for one of the two cores.
    const groups = { system: pids, loadgen: sw.lgs.slice(1).map((l) => l.proc.pid), guard_loadgen: [sw.lgs[0].proc.pid] };
    const schedOf = () => Object.fromEntries(Object.entries(groups).map(([k, ps]) =>
      [k, ps.map(schedUs).reduce((a, b) => ({ run: a.run + b.run, wait: a.wait + b.wait }), { run: 0, wait: 0 })]));
    const sched0 = schedOf(), wall0 = performance.now();
    let done = false;
    const alarms = (async () => {
      let sent = 0;
      while (name === 'hub' && !done) sent += (await produce(sys, db, CFG.panicRate, 1, { tenant: 'bench', kind: 'alarm', room: 'role:guard', priority: 'critical' })).sent;
      return sent;
    })();
    res.broadcasts = [];
    for (let k = 1; k <= CAP.broadcasts; k++) {
      const kind = `cap${k}`;
      await produce(sys, db, 1, 1, { tenant: 'bench', kind, room: 'all', priority: 'normal' });
      const r = await drain(sw, c.ready, 60000, kind);
      const ks = r.kinds[kind] ?? { count: 0, lat_max: null, lat: new Map() };
      const b = { received: ks.count, expected: c.ready, last_us: ks.lat_max, lat: percentiles(ks.lat) };
      res.broadcasts.push(b);
      log(`${name} capacity broadcast ${k}: ${b.received}/${b.expected}, last receipt ${fmtUs(b.last_us)}, p50 ${fmtUs(b.lat.p50)} p99 ${fmtUs(b.lat.p99)}`);
    }
    done = true;
    const alarmsSent = await alarms;
    await sleep(500);
    const r = await sw.report();
    res.server_cpu_us_broadcasts = cpuOf(pids) - cpuB0;
    const sched1 = schedOf(), wall = (performance.now() - wall0) * 1000;
    res.sched_broadcasts = { wall_us: wall, ...Object.fromEntries(Object.keys(groups).map((k) =>
      [k, { processes: groups[k].length, run_us: sched1[k].run - sched0[k].run, wait_us: sched1[k].wait - sched0[k].wait }])) };
    log(`${name} capacity broadcasts: ${(wall / 1e6).toFixed(1)} s; run / run-queue wait in CPU-s: ` +
      Object.keys(groups).map((k) => `${k} ${(res.sched_broadcasts[k].run_us / 1e6).toFixed(1)} / ${(res.sched_broadcasts[k].wait_us / 1e6).toFixed(1)}`).join(', '));
    res.closed_after_ready = r.closed_after_ready;
    res.close_codes = r.close_codes;
    for (const k of ['last_us', 'p50', 'p99']) res[k] = median(res.broadcasts.map((b) => (k === 'last_us' ? b.last_us : b.lat[k])));
    if (name === 'hub') {
      const a = r.kinds.alarm;
      res.panic = { sent: alarmsSent, expected: alarmsSent * 10, received: a?.count ?? 0, lat: percentiles(a?.lat ?? new Map()) };
      log(`${name} capacity panic: ${res.panic.received}/${res.panic.expected} frames, p50 ${fmtUs(res.panic.lat.p50)} p99 ${fmtUs(res.panic.lat.p99)}`);
    }
    // Then every client leaves at once (the load generators exit): how long
    // until the system is idle again (its CPU grows by under 20 ms per
    // 250 ms for a second; at most 120 s), and the CPU it spent closing.
    const t0 = performance.now(), cpuL0 = cpuOf(pids);
    await sw.quit();
    sw = null;
    let cpuL = cpuL0, calm = 0;
    while (calm < 4 && performance.now() - t0 < 120000) {
      await sleep(250);
      const v = cpuOf(pids);
      calm = v - cpuL < 20000 ? calm + 1 : 0;
      cpuL = v;
    }
    res.leave_ms = performance.now() - t0 - calm * 250;
    res.leave_cpu_us = cpuL - cpuL0;
    log(`${name} capacity: all clients gone, idle again after ${(res.leave_ms / 1000).toFixed(1)} s, ${(res.leave_cpu_us / 1e6).toFixed(1)} CPU-s`);
    return res;
  } finally {
    if (sw) await sw.quit();
    await sys.stop();
  }
}

// ---------------------------------------------------------------- report

function machine() {
  const cpu = cpus();
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  let os = '';
  try {
    os = readFileSync('/etc/os-release', 'utf8').match(/PRETTY_NAME="([^"]+)"/)[1];
  } catch {}
  return { cpus: cpu.length, cpu_model: cpu[0]?.model, mem_gib: Math.round(totalmem() / 2 ** 30), kernel: release(), os, node: process.version, loadavg: load };
}

/** One figure of the table (key k: bpc, rate, sat, cpu, p50, p99, p999, tp99, pp99) of system result r. */
function summaryValue(r, k) {
  if (!r) return null;
  switch (k) {
    case 'bpc': return r.idle?.find((x) => x.conns === Math.max(...CFG.idleSizes))?.bytes_per_conn ?? null;
    case 'rate': { const v = connectRates(r); return v.length ? median(v) : null; }
    case 'sat': return r.bcast?.[0] ? median(saturations(r)) : null;
    case 'cpu': return cpuPerMsg(r);
    case 'p50': return halfLat(r, 'p50');
    case 'p99': return halfLat(r, 'p99');
    case 'p999': return halfLat(r, 'p999');
    case 'tp99': return r.targeted?.lat.p99 ?? null;
    case 'pp99': return r.bcast?.[0]?.panic?.extra?.lat.p99 ?? null;
  }
  return null;
}

const SUMMARY_KEYS = ['bpc', 'rate', 'sat', 'cpu', 'p50', 'p99', 'p999', 'tp99', 'pp99'];

/** The table's figures per system, as latest.json's "summary" (bench/ab.mjs reads it). */
function summary(results) {
  return Object.fromEntries(Object.entries(results).map(([name, r]) =>
    [name, Object.fromEntries(SUMMARY_KEYS.map((k) => [k, summaryValue(r, k)]))]));
}

function table(results) {
  const hub = results.hub, lim = results.limit;
  const val = summaryValue;
  const cols = [
    ['bpc', `bytes/conn @${Math.max(...CFG.idleSizes)}`, (v) => `${Math.round(v)} B`],
    ['rate', `connect+auth /s (${CFG.connectN})${CONNECT_REPEATS ? ', median' : ''}`, (v) => `${Math.round(v)}`],
    ['sat', `saturation msgs/s (${CFG.bcastSizes[0]})${PAIRS ? ', median' : ''}`, (v) => `${Math.round(v)}`],
    ['cpu', `server CPU-µs/msg @${CFG.commonMsgs / 1000}k msgs/s, mean of 2`, (v) => v.toFixed(2)],
    ['p50', `p50 @50 %${PAIRS ? ', median' : ''}`, fmtUs],
    ['p99', `p99 @50 %${PAIRS ? ', median' : ''}`, fmtUs],
    ['p999', `p99.9 @50 %${PAIRS ? ', median' : ''}`, fmtUs],
    ['tp99', 'targeted p99', fmtUs],
    ['pp99', 'panic p99', fmtUs],
  ];
  const ratio = (a, b) => (a != null && b != null && b !== 0 ? ` (${(a / b).toFixed(2)}×)` : '');
  let md = `| system | ${cols.map((c) => c[1]).join(' | ')} |\n|---|${cols.map(() => '---').join('|')}|\n`;
  for (const name of SYSTEMS) {
    const r = results[name];
    md += `| ${name} | ${cols.map(([k, , f]) => {
      const v = val(r, k);
      if (v == null) return 'n/a';
      let s = f(v);
      if (name !== 'hub') s += ratio(v, val(hub, k)).replace(')', ' of hub)');
      if (name === 'hub' && lim) s += ratio(v, val(lim, k)).replace(')', ' of limit)');
      return s;
    }).join(' | ')} |\n`;
  }
  return md;
}

/**
 * The capacity scenario's table (each figure the median over the rounds),
 * every round's figures, every broadcast, and the targets (markdown), or ''.
 */
function capacityTable(results) {
  const names = SYSTEMS.filter((x) => results[x]?.capacity?.length);
  if (!names.length) return '';
  const hub = results.hub?.capacity, lim = results.limit?.capacity;
  const kb = (xs) => xs.reduce((a, b) => a + b, 0);
  const med = (rs, f) => {
    const v = rs.map(f).filter((x) => x != null && !Number.isNaN(x));
    return v.length ? median(v) : null;
  };
  const F = {
    bpc: (r) => r.bytes_per_conn, connect: (r) => (r.ready === r.conns ? r.connect_ms : Infinity),
    last: (r) => r.last_us, p50: (r) => r.p50, p99: (r) => r.p99, panic: (r) => r.panic?.lat.p99, leave: (r) => r.leave_ms,
  };
  // The hub's last receipt over the limit server's, round by round.
  const ratios = hub && lim ? hub.map((h, i) => (lim[i]?.last_us ? h.last_us / lim[i].last_us : null)).filter((x) => x != null) : [];
  const rounds = CAP.rounds > 1 ? `, median of ${CAP.rounds} rounds` : '';
  let md = `| system | processes | welcomed | RSS before → after, all processes | bytes/conn | connect+auth of all | last receipt (median of ${CAP.broadcasts} broadcasts) | p50 | p99 | panic p99 | all clients leave: idle again after |\n|---|---|---|---|---|---|---|---|---|---|---|\n`;
  for (const name of names) {
    const rs = results[name].capacity, r = rs[0];
    const vsLimit = name === 'hub' && ratios.length ? ` (${median(ratios).toFixed(2)}× of limit)` : '';
    const connect = med(rs, F.connect);
    md += `| ${name}${rounds} | ${r.processes} | ${rs.map((x) => x.ready).join(', ')} of ${r.conns} | ` +
      `${(kb(r.rss_before_kb) / 1024).toFixed(1)} → ${(kb(r.rss_after_kb) / 1024).toFixed(1)} MiB | ${Math.round(med(rs, F.bpc))} B | ` +
      `${connect === Infinity ? 'not all' : `${(connect / 1000).toFixed(1)} s`} | ${fmtUs(med(rs, F.last))}${vsLimit} | ${fmtUs(med(rs, F.p50))} | ${fmtUs(med(rs, F.p99))} | ` +
      `${r.panic ? fmtUs(med(rs, F.panic)) : 'n/a'} | ${(med(rs, F.leave) / 1000).toFixed(1)} s |\n`;
  }
  md += '\n';
  for (const name of names) {
    results[name].capacity.forEach((r, i) => {
      const sch = r.sched_broadcasts;
      md += `${name}${CAP.rounds > 1 ? ` round ${i + 1}` : ''}: ${r.ready}/${r.conns} in ${(r.connect_ms / 1000).toFixed(1)} s (${Math.round(r.connect_rate)}/s, ` +
        `server ${r.server_cpu_us_per_conn?.toFixed(0)} CPU-µs/conn), ${Math.round(r.bytes_per_conn)} B/conn; broadcasts (received, last receipt, p50, p99): ` +
        r.broadcasts.map((b) => `${b.received} ${fmtUs(b.last_us)} ${fmtUs(b.lat.p50)} ${fmtUs(b.lat.p99)}`).join('; ') +
        (r.panic ? `; panic ${r.panic.received}/${r.panic.expected} frames, p50 ${fmtUs(r.panic.lat.p50)} p99 ${fmtUs(r.panic.lat.p99)}` : '') +
        `; during the broadcasts (${(sch.wall_us / 1e6).toFixed(1)} s) the system ran ${(sch.system.run_us / 1e6).toFixed(1)} CPU-s and waited ${(sch.system.wait_us / 1e6).toFixed(1)} s for a core, ` +
        `the load generators ${(sch.loadgen.run_us / 1e6).toFixed(1)} / ${(sch.loadgen.wait_us / 1e6).toFixed(1)}; all left: idle after ${(r.leave_ms / 1000).toFixed(1)} s, ${(r.leave_cpu_us / 1e6).toFixed(1)} CPU-s.\n`;
    });
  }
  if (hub) {
    const T = CAP_TARGETS;
    const ok = (v, max) => (v == null ? 'not measured' : v <= max ? 'met' : 'missed');
    const bpc = med(hub, F.bpc), connect = med(hub, F.connect), ratio = ratios.length ? median(ratios) : null, panic = med(hub, F.panic);
    md += `Targets: bytes/conn ≤ ${T.bytes_per_conn} B: ${Math.round(bpc)} B, ${ok(bpc, T.bytes_per_conn)}; ` +
      `all connected in ≤ ${T.connect_ms / 1000} s: ${connect === Infinity ? 'not all welcomed, missed' : `${(connect / 1000).toFixed(1)} s, ${ok(connect, T.connect_ms)}`}; ` +
      `last receipt ≤ ${T.last_vs_limit}× the limit server's: ${ratio?.toFixed(2) ?? 'n/a'}×${ratios.length > 1 ? ` (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')})` : ''}, ${ok(ratio, T.last_vs_limit)}; ` +
      `panic p99 ≤ ${T.panic_p99_us / 1000} ms: ${fmtUs(panic)}, ${ok(panic, T.panic_p99_us)}.\n`;
  }
  return md;
}

function chart(results, dir) {
  const dat = [];
  let plots = [];
  for (const name of SYSTEMS) {
    const b = results[name]?.bcast?.[0];
    if (!b) continue;
    const pts = [...b.steps, ...Object.values(b.fracs)].filter((s) => s.delivered_msgs_s && s.lat.p99 != null)
      .sort((a, c) => a.delivered_msgs_s - c.delivered_msgs_s);
    const f = join(dir, `tmp/${name}.dat`);
    writeFileSync(f, pts.map((s) => `${s.delivered_msgs_s} ${s.lat.p50 / 1000} ${s.lat.p99 / 1000}`).join('\n') + '\n');
    dat.push(f);
    plots.push(`'${f}' using 1:3 with linespoints title '${name} p99'`, `'${f}' using 1:2 with lines dashtype 2 title '${name} p50'`);
  }
  if (!plots.length) return null;
  const png = join(dir, 'latency-vs-rate.png');
  const gp = `set terminal pngcairo size 1000,600 noenhanced
set output '${png}'
set title 'Broadcast to ${CFG.bcastSizes[0]} connections: commit-to-receipt latency vs delivered rate (${MODE})'
set xlabel 'delivered messages/s'
set ylabel 'latency (ms)'
set logscale y
set grid
set key left top
plot ${plots.join(', ')}
`;
  const r = spawnSync('gnuplot', [], { input: gp });
  if (r.status !== 0) {
    const r2 = spawnSync('gnuplot', [], { input: gp.replace('pngcairo', 'png') });
    if (r2.status !== 0) return null;
  }
  return png;
}

// ---------------------------------------------------------------- main

async function main() {
  const t0 = Date.now();
  const bins = build();
  const gnuplot = ensureGnuplot();
  mkdirSync(join(OUT, 'tmp'), { recursive: true });
  const mach = machine();
  log(`mode ${MODE}, systems ${SYSTEMS.join(',')}, load ${mach.loadavg}`);
  const db = await startDb(bins);
  const results = {};
  try {
    for (const name of SYSTEMS) {
      const r = (results[name] = { idle: [], bcast: [] });
      if (SCENARIOS.includes('idle')) for (const n of CFG.idleSizes) r.idle.push(await idle(name, bins, db, n));
      if (SCENARIOS.includes('broadcast')) for (const n of CFG.bcastSizes) r.bcast.push(await broadcast(name, bins, db, n));
      if (SCENARIOS.includes('targeted')) r.targeted = await targeted(name, bins, db);
      if (SCENARIOS.includes('endpoints')) r.endpoints = await endpoints(name, bins, db);
      r.loadavg_after = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    }
    // The saturation search again for the hub and the limit server,
    // alternating which goes first: the machine's speed drifts over minutes
    // (identical code has shown 0.24 and 0.33 CPU-µs per message in runs
    // minutes apart), so one search each, minutes apart, can compare a fast
    // moment with a slow one. Each repeat starts at half of that
    // system's first figure.
    // The capacity scenario: CAP.rounds rounds of hub and limit server,
    // alternating which goes first.
    if (SCENARIOS.includes('capacity')) {
      const names = SYSTEMS.filter((x) => x === 'hub' || x === 'limit');
      for (let k = 0; k < CAP.rounds; k++) {
        for (const name of k % 2 ? [...names].reverse() : names) (results[name].capacity ??= []).push(await capacity(name, bins, db));
      }
    }
    const idleFirst = (name) => results[name]?.idle?.find((x) => x.conns === CFG.connectN);
    if (CONNECT_REPEATS > 0 && idleFirst('hub') && idleFirst('limit')) {
      for (let p = 0; p < CONNECT_REPEATS; p++) {
        for (const name of p % 2 === 0 ? ['limit', 'hub'] : ['hub', 'limit'])
          (idleFirst(name).repeats ??= []).push(await repeatConnect(name, bins, db, CFG.connectN));
      }
    }
    const n = CFG.bcastSizes[0];
    if (PAIRS > 0 && results.hub?.bcast?.[0] && results.limit?.bcast?.[0]) {
      for (let p = 0; p < PAIRS; p++) {
        const pair = {};
        for (const name of p % 2 === 0 ? ['limit', 'hub'] : ['hub', 'limit']) {
          pair[name] = await repeatSaturation(name, bins, db, n, results[name].bcast[0].saturation_msgs_s / 2);
          (results[name].bcast[0].repeats ??= []).push(pair[name]);
        }
        log(`repeat ${p + 1}: saturation hub ${Math.round(pair.hub.saturation_msgs_s)}, limit ${Math.round(pair.limit.saturation_msgs_s)} = ${(pair.hub.saturation_msgs_s / pair.limit.saturation_msgs_s).toFixed(2)}`);
      }
    }
  } finally {
    await db.stop();
  }
  mach.loadavg_end = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  // Only the capacity scenario run: its own table alone.
  const md = SCENARIOS.some((x) => x !== 'capacity' && x !== 'endpoints') ? table(results) : '';
  const cap = capacityTable(results) + endpointsTable(results);
  let pairs = '';
  if (results.hub?.bcast?.[0]?.repeats && results.limit?.bcast?.[0]?.repeats) {
    const h = saturations(results.hub), l = saturations(results.limit);
    pairs = `Saturation at ${CFG.bcastSizes[0]} connections, hub / limit, the first search and ${h.length - 1} repeat(s) in alternating order: ` +
      h.map((v, i) => `${(v / 1e6).toFixed(2)} M / ${(l[i] / 1e6).toFixed(2)} M = ${(v / l[i]).toFixed(2)}`).join('; ') +
      `; the table shows each system's median (${(median(h) / median(l)).toFixed(2)}).\n`;
    const p99 = (r) => halfSteps(r).map((x) => x?.lat?.p99);
    const hp = p99(results.hub), lp = p99(results.limit);
    pairs += `p99 at 50 % of each search's own figure, hub / limit: ` +
      hp.map((v, i) => (v != null && lp[i] != null ? `${fmtUs(v)} / ${fmtUs(lp[i])} = ${(v / lp[i]).toFixed(2)}` : 'n/a')).join('; ') + '.\n';
  }
  const hc = connectRates(results.hub ?? {}), lc = connectRates(results.limit ?? {});
  if (hc.length > 1 && lc.length === hc.length) {
    pairs += `Connect+auth of ${CFG.connectN} connections, hub / limit, the idle scenario's and ${hc.length - 1} repeat(s) on fresh processes in alternating order: ` +
      hc.map((v, i) => `${Math.round(v)} / ${Math.round(lc[i])} = ${(v / lc[i]).toFixed(2)}`).join('; ') +
      `; the table shows each system's median (${(median(hc) / median(lc)).toFixed(2)}).\n`;
  }
  const cmd = `node bench/run.mjs ${argv.join(' ')}`.trim();
  const header = `Armonía Hub fan-out benchmark, ${MODE} mode, ${new Date().toISOString()}\n` +
    `Machine: ${mach.cpus} × ${mach.cpu_model}, ${mach.mem_gib} GiB, ${mach.os}, Linux ${mach.kernel}, Node ${mach.node}; load average at start ${mach.loadavg}, at end ${mach.loadavg_end}\n` +
    `Command: ${cmd}   (took ${Math.round((Date.now() - t0) / 1000)} s)\n`;
  const png = gnuplot ? chart(results, OUT) : null;
  const strip = (k, v) => (k === 'lat_hist' ? undefined : v);
  writeFileSync(join(OUT, 'latest.json'), JSON.stringify({ mode: MODE, date: new Date().toISOString(), machine: mach, command: cmd, config: CFG, ...(SCENARIOS.includes('capacity') ? { capacity: { ...CAP, targets: CAP_TARGETS } } : {}), summary: summary(results), results }, strip, 1));
  console.log('\n' + header + '\n' + md + (pairs ? '\n' + pairs : '') + (cap ? (md ? '\n' : '') + cap : ''));
  console.log(`JSON: ${join(OUT, 'latest.json')}${png ? `\nchart: ${png}` : '\nchart: not drawn (gnuplot missing)'}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
