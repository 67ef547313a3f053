// hub.js - what the client tests add to tests/integration/lib: a private
// PostgreSQL cluster when HUB_PGDIR is not set, hubs that serve the console
// (HUB_CONSOLE_DIR), and a restart of a killed hub on the same port (the
// client reconnects to the URL it was given, so the port must not change).
import './env.js';
import { after, before } from 'node:test';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientDir } from './env.js';
import { useLifecycle, startHub, waitHealth, pgScriptRun, db, mintToken, nowS } from '../../../../tests/integration/lib/harness.mjs';

export { db, mintToken, nowS, clientDir };
export { httpGet } from '../../../../tests/integration/lib/harness.mjs';

const restarted = new Set();
process.on('exit', () => {
  for (const h of restarted) h.proc.kill('SIGKILL');
});

/**
 * Installs the file's hooks: the harness's (hubs, clients and pools ended,
 * hub logs printed on failure), a private cluster in a temp directory when
 * HUB_PGDIR is unset (stopped and removed at the end), and the end of every
 * hub restarted here.
 */
export function useHubTests() {
  let own = null;
  before(async () => {
    if (!existsSync(process.env.HUB_BIN)) throw new Error(`no hub binary at ${process.env.HUB_BIN}: build it (cmake --build build/dev) or set HUB_BIN`);
    if (!process.env.HUB_PGDIR) {
      own = mkdtempSync(join(tmpdir(), 'armonia-jsclient-'));
      process.env.HUB_PGDIR = join(own, 'pg');
    }
  });
  useLifecycle();
  after(async () => {
    await Promise.all([...restarted].map((h) => h.stop()));
    if (own) {
      await pgScriptRun('stop', process.env.HUB_PGDIR).catch((err) => process.stderr.write(`${err.message}\n`));
      rmSync(own, { recursive: true, force: true });
      delete process.env.HUB_PGDIR;
    }
  });
}

/** A hub that serves clients/js at /console/ and /js/. */
export function startConsoleHub(opts = {}) {
  return startHub({ ...opts, env: { HUB_CONSOLE_DIR: clientDir, ...(opts.env ?? {}) } });
}

/**
 * Starts the binary again with the environment of `old` (same port, same
 * secret, same database) once old has exited; resolves when /healthz is 200.
 * The result has the members tests use: port, secret, wsUrl, url, kill(),
 * stop(), output.
 */
export async function restartHub(old, { healthTimeout = 20_000 } = {}) {
  if (!old.exit) throw new Error('restartHub: the old hub is still running');
  const proc = spawn(process.env.HUB_BIN, [], { env: old.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const h = {
    proc,
    port: old.port,
    secret: old.secret,
    url: old.url,
    wsUrl: old.wsUrl,
    env: old.env,
    output: [],
    exit: null,
  };
  h.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    h.exit = { code, signal };
    restarted.delete(h);
    resolve(h.exit);
  }));
  for (const [s, name] of [[proc.stdout, 'out'], [proc.stderr, 'err']]) {
    s.setEncoding('utf8');
    s.on('data', (d) => h.output.push(...d.split('\n').filter(Boolean).map((l) => `${name}| ${l}`)));
  }
  h.kill = (signal = 'SIGKILL') => {
    if (!h.exit) proc.kill(signal);
    return h.exited;
  };
  h.stop = async () => {
    if (h.exit) return h.exit;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await h.exited;
    clearTimeout(t);
    return h.exit;
  };
  restarted.add(h);
  try {
    await waitHealth(h.port, 200, healthTimeout, () => h.exit && `code ${h.exit.code}, signal ${h.exit.signal}`);
  } catch (err) {
    await h.kill();
    err.message += `\n--- restarted hub output ---\n${h.output.join('\n')}`;
    throw err;
  }
  return h;
}

/** A JWT for claims signed with hub's secret; ttlS seconds of life (negative: already expired). */
export function tokenFor(hub, claims, ttlS = 3600) {
  return mintToken(hub.secret, { ...claims, exp: nowS() + ttlS });
}

/**
 * Resolves when pred() holds, checked every time `emitter` (a HubClient)
 * reports anything; rejects after timeout ms with describe().
 */
export function until(client, pred, { timeout = 20_000, what = 'the condition', describe = () => '' } = {}) {
  return new Promise((resolve, reject) => {
    const offs = [];
    const done = (fn, v) => {
      clearTimeout(timer);
      for (const off of offs) off();
      fn(v);
    };
    const check = () => {
      try {
        if (pred()) done(resolve);
      } catch (err) {
        done(reject, err);
      }
    };
    const timer = setTimeout(() => done(reject, new Error(`no ${what} within ${timeout} ms; ${describe()}`)), timeout);
    for (const n of ['event', 'state', 'error', 'welcome']) offs.push(client.on(n, check));
    check();
  });
}

/** Polls an async predicate every 100 ms until true; rejects after timeout ms. */
export async function poll(fn, { timeout = 20_000, what = 'the condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`no ${what} within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
