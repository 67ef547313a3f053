// hub.mjs - armonia-hub processes under test.
//
// startHub() spawns HUB_BIN on a free loopback port with a random JWT
// secret, keeps everything it prints, and resolves once GET /healthz says
// 200 (so its database listener is up). runHub() runs it to completion for
// the configuration checks. Every process started here is remembered so
// the file's `after` hook (and, as a last resort, process exit) ends it.
// Every hub connects as the restricted role armonia_hub_login, not as the
// cluster's superuser (hubDatabaseUrl in db.mjs).

import { spawn } from 'node:child_process';
import { freePort } from '../../../bench/net.mjs';
import { request } from 'node:http';
import { request as tlsRequest } from 'node:https';
import { randomSecret } from './token.mjs';
import { pgUrl, hubDatabaseUrl } from './db.mjs';

export const hubBin = process.env.HUB_BIN;

const liveHubs = new Set();

process.on('exit', () => {
  for (const h of liveHubs) {
    try {
      h.proc.kill('SIGKILL');
    } catch {}
  }
});

// freePort: a TCP port nobody listens on right now (the bench uses it too).
export { freePort };

/**
 * The environment a hub gets: ours without anything the hub reads (so a
 * developer's .env cannot leak in, nor a service manager's NOTIFY_SOCKET),
 * nor the tests' own HUB_* variables (the hub would warn about them as
 * unknown settings), plus env. A value of undefined removes
 * the variable. A superuser DATABASE_URL becomes the hub role's
 * (hubDatabaseUrl): hubs under test run with the rights a deployed one has.
 */
function hubEnv(env) {
  const base = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DATABASE_URL|JWT_SECRET_KEY|PORT|FIREBASE_|TWILIO_|HUB_|NOTIFY_SOCKET$|WATCHDOG_)/.test(k)) continue;
    base[k] = v;
  }
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = String(v);
  }
  if (base.DATABASE_URL !== undefined) base.DATABASE_URL = hubDatabaseUrl(base.DATABASE_URL);
  return base;
}

/**
 * GET path on 127.0.0.1:port; resolves with {status, headers, body}.
 * tls: options of node:https (e.g. {ca}) to ask over TLS instead.
 */
export function httpGet(port, path, { timeout = 3000, tls } = {}) {
  return new Promise((resolve, reject) => {
    const get = tls ? tlsRequest : request;
    const req = get({ host: '127.0.0.1', port, path, method: 'GET', timeout, ...(tls ?? {}) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${timeout} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls GET /healthz every 100 ms until it answers `status`; rejects after
 * timeout ms naming the last answer. Polling is how a client observes
 * /healthz, so this is the event being awaited.
 */
export async function waitHealth(port, status, timeout, isDead = () => null, tls = undefined) {
  const deadline = Date.now() + timeout;
  let last = 'no answer yet';
  for (;;) {
    const dead = isDead();
    if (dead) throw new Error(`the hub exited (${dead}) while waiting for /healthz ${status}`);
    try {
      const r = await httpGet(port, '/healthz', { timeout: 1000, tls });
      if (r.status === status) return r;
      last = `${r.status} ${r.body}`;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`/healthz did not answer ${status} within ${timeout} ms; last answer: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

class HubProcess {
  constructor(proc, port, secret, env, tls) {
    this.proc = proc;
    this.port = port;
    this.secret = secret;
    this.env = env;
    this.tls = tls; // client TLS options ({ca}) when the hub serves TLS, else undefined
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    this.wsUrl = `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}/ws`;
    this.output = [];
    this.exit = null;
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        liveHubs.delete(this);
        resolve(this.exit);
      });
      // A process that could not be started never exits: settle anyway.
      proc.on('error', (err) => {
        if (this.exit) return;
        this.exit = { code: null, signal: null, error: err.message };
        liveHubs.delete(this);
        resolve(this.exit);
      });
    });
    const keep = (stream, name) => {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => {
        const lines = (partial + d).split('\n');
        partial = lines.pop();
        for (const l of lines) this.output.push(`${name}| ${l}`);
      });
      stream.on('end', () => partial && this.output.push(`${name}| ${partial}`));
    };
    keep(proc.stdout, 'out');
    keep(proc.stderr, 'err');
  }

  /** Everything the hub printed so far, one line per entry, prefixed out| or err|. */
  logs() {
    return this.output.join('\n');
  }

  /** Sends signal (a test's deliberate kill: its exit status is not judged). */
  kill(signal = 'SIGKILL') {
    this.killedOnPurpose = true;
    if (!this.exit) this.proc.kill(signal);
    return this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited after timeout ms; resolves with {code, signal}. */
  async stop(timeout = 10_000) {
    if (this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    let timer;
    const killed = new Promise((resolve) => {
      timer = setTimeout(() => {
        this.hungOnStop = true;
        this.output.push(`harness| still running ${timeout} ms after SIGTERM: SIGKILL`);
        this.proc.kill('SIGKILL');
        resolve();
      }, timeout);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return this.exited;
  }
}

/**
 * Starts a hub and resolves once /healthz answers 200.
 *
 * env: extra variables (undefined removes one), e.g. {HUB_AUTH_TIMEOUT_MS: 700}.
 * args: extra command-line flags.
 * pgdir: the cluster to use (HUB_PGDIR by default); databaseUrl overrides it.
 * healthTimeout: how long to wait for 200.
 * wrap: a command that execs the hub, e.g. ['prlimit', '--nofile=64'].
 * tls: the hub serves TLS (env names its HUB_TLS_* files); these are the
 *   client's options for it ({ca}), used for /healthz and kept as hub.tls.
 * port: the port to listen on (a free one by default), for a test that must
 * know it before the hub is up.
 */
export async function startHub(opts = {}) {
  // A port drawn here can still be taken by another listener before the hub
  // binds it (see freePort): the hub then exits saying so, and a new port is
  // drawn. A port the caller chose is its own business.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHubOnce({ ...opts, port: opts.port ?? (await freePort()) });
    } catch (err) {
      if (opts.port !== undefined || attempt === 3 || !/cannot listen on .*Address already in use/.test(err.message)) throw err;
    }
  }
}

async function startHubOnce({ env = {}, args = [], pgdir, databaseUrl, healthTimeout = 15_000, wrap = [], tls, port }) {
  if (!hubBin) throw new Error('HUB_BIN is not set: it names the armonia-hub binary under test');
  const url = databaseUrl ?? (await pgUrl(pgdir));
  const secret = randomSecret();
  const fullEnv = hubEnv({
    DATABASE_URL: url,
    JWT_SECRET_KEY: secret,
    PORT: port,
    HUB_BIND: '127.0.0.1',
    HUB_LOG_LEVEL: 'info',
    ...env,
  });
  const argv = [...wrap, hubBin, ...args];
  const proc = spawn(argv[0], argv.slice(1), { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const hub = new HubProcess(proc, port, secret, fullEnv, tls);
  liveHubs.add(hub);
  startedHubs.push(hub);
  const spawnError = new Promise((_, reject) => proc.once('error', (err) => reject(new Error(`cannot run ${hubBin}: ${err.message}`))));
  // With HUB_INTERNAL_PORT, /healthz is there, in plain HTTP.
  const internal = Number(fullEnv.HUB_INTERNAL_PORT) || 0;
  const dead = () => {
    if (hub.exit) return `code ${hub.exit.code}, signal ${hub.exit.signal}`;
    // A hub that could not bind may not have exited yet while another
    // process's /healthz on that port answers 200: its own words decide.
    if (hub.output.some((l) => /cannot listen on/.test(l))) return 'it could not listen';
    return null;
  };
  try {
    await Promise.race([spawnError, waitHealth(internal || port, 200, healthTimeout, dead, internal ? undefined : tls)]);
    // The 200 must be this hub's: one that failed to bind says so and exits
    // at once, before it could serve anything.
    await new Promise((r) => setTimeout(r, 20));
    const why = dead();
    if (why) throw new Error(`the hub exited (${why}) although /healthz answered 200 on its port: another process holds it`);
  } catch (err) {
    await hub.kill('SIGKILL');
    err.message += `\n--- hub output ---\n${hub.logs()}`;
    throw err;
  }
  return hub;
}

/**
 * Runs the hub to completion (for configuration errors and --help) and
 * resolves with {code, signal, stdout, stderr}. Kills it after timeout ms.
 */
export function runHub({ env = {}, args = [], timeout = 10_000 } = {}) {
  if (!hubBin) throw new Error('HUB_BIN is not set: it names the armonia-hub binary under test');
  return new Promise((resolve, reject) => {
    const proc = spawn(hubBin, args, { env: hubEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, timeout);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${hubBin}: ${err.message}`));
    });
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/**
 * Resolves with the first line of hub's output from line `from` on that
 * matches re; fails after timeout ms.
 */
export async function waitLog(hub, re, from = 0, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const line = hub.output.slice(from).find((l) => re.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no hub output line matches ${re} within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every hub started by this process and not yet exited. */
export function liveHubList() {
  return [...liveHubs];
}

/** Stops every hub still running (the file's `after` hook calls this). */
export async function stopAllHubs() {
  await Promise.all([...liveHubs].map((h) => h.stop(5000)));
}

/**
 * Hubs that ended badly: crashed, or exited non-zero (a sanitizer report
 * included), or ignored SIGTERM — unless a test killed them on purpose.
 */
export function badlyEndedHubs() {
  return startedHubs.filter((h) => h.exit && !h.killedOnPurpose && (h.hungOnStop || h.exit.code !== 0));
}

/** Every hub started so far in this process, alive or not (for failure logs). */
export const startedHubs = [];
