// hub_notify.test.mjs - the hub under a service manager (systemd's
// Type=notify and WatchdogSec, README "Production"), without systemd: the
// test listens on the datagram socket NOTIFY_SOCKET names (notify_sink, a
// small C program: Node has no AF_UNIX datagram sockets) and checks what
// the hub says there. READY=1 comes once the hub listens and knows its
// outbox cursor (never while the database is out of reach), WATCHDOG=1
// keeps coming from its loop at half of WATCHDOG_USEC, STOPPING=1 comes on
// SIGTERM; with HUB_WORKERS=2 the supervisor says READY once both workers
// are, and a stuck worker (SIGSTOP) stops the pings until it runs again.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLifecycle, startHub, runHub, httpGet, freePort, waitLog, sleep } from './lib/harness.mjs';

useLifecycle();

const sinkBin = process.env.HUB_NOTIFY_SINK;
const dir = mkdtempSync(join(tmpdir(), 'hub-notify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Pings every half of this: 1 s keeps a loaded machine well inside it.
const WATCHDOG_USEC = 1_000_000;

const sinks = new Set();
after(() => {
  for (const s of sinks) s.proc.kill('SIGKILL');
});

/**
 * Starts notify_sink on a fresh socket (abstract when abstract is set) and
 * resolves once it is bound: {path, messages: [{at, fields}], on(fn)}.
 * Each message is one datagram, its fields {READY: '1', ...}.
 */
async function startSink({ abstract = false } = {}) {
  assert.ok(sinkBin, 'HUB_NOTIFY_SINK is not set: it names the notify_sink binary (CMake builds it)');
  const path = abstract ? `@hub-notify-${process.pid}-${Math.random().toString(36).slice(2)}` : join(dir, `n${sinks.size}.sock`);
  const proc = spawn(sinkBin, [path], { stdio: ['pipe', 'pipe', 'inherit'] });
  const sink = { path, proc, messages: [], listeners: new Set() };
  sinks.add(sink);
  await new Promise((resolve, reject) => {
    let partial = '';
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`notify_sink exited with ${code}`)));
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      for (const l of lines) {
        if (l === 'bound') {
          resolve();
          continue;
        }
        const fields = Object.fromEntries(l.split(';').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
        const m = { at: Date.now(), fields };
        sink.messages.push(m);
        for (const fn of sink.listeners) fn(m);
      }
    });
  });
  return sink;
}

/** Resolves with the first message (from index from on) that has field, or fails after timeout ms. */
async function nextMessage(sink, field, { from = 0, timeout = 10_000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const m = sink.messages.slice(from).find((x) => x.fields[field] !== undefined);
    if (m) return m;
    if (Date.now() > deadline)
      throw new Error(`no ${field}= within ${timeout} ms; got: ${JSON.stringify(sink.messages.map((x) => x.fields))}`);
    await sleep(20);
  }
}

/** How many messages carry WATCHDOG=1 from index from on. */
const pings = (sink, from = 0) => sink.messages.slice(from).filter((m) => m.fields.WATCHDOG === '1').length;

/** Waits until n more pings than at index from have arrived. */
async function waitPings(sink, n, from, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (pings(sink, from) < n) {
    if (Date.now() > deadline) throw new Error(`${pings(sink, from)} watchdog pings within ${timeout} ms, expected ${n}`);
    await sleep(50);
  }
}

/**
 * Runs probe() the moment READY=1 arrives on sink; resolves with what it
 * resolves to (or its error's message).
 */
function atReady(sink, probe) {
  return new Promise((resolve) => {
    const fn = (m) => {
      if (m.fields.READY !== '1') return;
      sink.listeners.delete(fn);
      probe().then(resolve, (err) => resolve(err.message));
    };
    sink.listeners.add(fn);
  });
}

/**
 * Starts a hub that notifies sink, and checks, the moment READY=1 arrives,
 * that the hub answers /healthz 200 (it listens and its outbox is
 * readable). Resolves with the hub.
 */
async function startNotifyingHub(sink, env = {}) {
  const port = await freePort();
  const checked = atReady(sink, async () => (await httpGet(port, '/healthz')).status);
  const hub = await startHub({ port, env: { NOTIFY_SOCKET: sink.path, WATCHDOG_USEC, ...env } });
  await nextMessage(sink, 'READY');
  assert.equal(await checked, 200, 'at READY=1 the hub did not answer /healthz with 200');
  return hub;
}

test('READY=1 once listening, watchdog pings from the loop, STOPPING=1 on SIGTERM', async () => {
  const sink = await startSink();
  const hub = await startNotifyingHub(sink);
  const ready = sink.messages.findIndex((m) => m.fields.READY === '1');
  assert.equal(sink.messages.filter((m) => m.fields.READY).length, 1, 'READY=1 was sent more than once');
  await waitPings(sink, 3, ready);
  const r = await hub.stop();
  assert.deepEqual(r, { code: 0, signal: null });
  // The sink relays what it receives through a pipe of its own, which may
  // deliver the last datagram after the hub's exit is known: wait for it.
  const stopping = await nextMessage(sink, 'STOPPING', { from: ready + 1 });
  assert.equal(stopping.fields.STOPPING, '1');
});

test('an abstract socket name (@...) works as well', async () => {
  const sink = await startSink({ abstract: true });
  const hub = await startNotifyingHub(sink);
  await hub.stop();
  await nextMessage(sink, 'STOPPING');
});

test('database out of reach: the loop pings the watchdog but READY=1 never comes', async () => {
  const sink = await startSink();
  const r = await runHub({
    env: {
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/armonia',
      JWT_SECRET_KEY: 'notify-test-secret',
      PORT: await freePort(),
      HUB_BIND: '127.0.0.1',
      NOTIFY_SOCKET: sink.path,
      WATCHDOG_USEC,
    },
    timeout: 3000,
  });
  assert.equal(r.timedOut, true, `the hub exited: ${r.stderr}`);
  assert.ok(pings(sink) >= 2, `expected watchdog pings, got ${JSON.stringify(sink.messages.map((x) => x.fields))}`);
  assert.equal(sink.messages.filter((m) => m.fields.READY).length, 0, 'READY=1 without a database');
});

test('WATCHDOG_PID naming another process: no pings', async () => {
  const sink = await startSink();
  const hub = await startNotifyingHub(sink, { WATCHDOG_PID: 1 });
  await sleep(1500); // three ping intervals, had the pid been ours
  assert.equal(pings(sink), 0, 'pinged a watchdog meant for another process');
  await hub.stop();
});

/** Worker k's pid, from /metrics. */
async function workerPid(port, k) {
  const r = await httpGet(port, '/metrics');
  const m = r.body.match(new RegExp(`^armonia_worker_pid\\{worker="${k}"\\} ([0-9]+)$`, 'm'));
  assert.ok(m && Number(m[1]) > 0, `no pid for worker ${k} in /metrics`);
  return Number(m[1]);
}

test('HUB_WORKERS=2: the supervisor says READY once both workers are; a stuck worker stops the pings', async () => {
  const sink = await startSink();
  const port = await freePort();
  // At READY=1 every worker must already be up (its slot's gauge says so).
  const upAtReady = atReady(sink, async () => (await httpGet(port, '/metrics')).body);
  const hub = await startHub({ port, env: { HUB_WORKERS: 2, NOTIFY_SOCKET: sink.path, WATCHDOG_USEC } });
  await nextMessage(sink, 'READY');
  const metrics = await upAtReady;
  for (const k of [0, 1]) assert.match(metrics, new RegExp(`^armonia_worker_up\\{worker="${k}"\\} 1$`, 'm'), `worker ${k} not up at READY=1:\n${metrics}`);
  const ready = sink.messages.findIndex((m) => m.fields.READY === '1');
  await waitPings(sink, 3, ready);

  const pid = await workerPid(port, 1);
  const fromLog = hub.output.length;
  process.kill(pid, 'SIGSTOP');
  try {
    // Pings stop within the interval (the worker's last beat ages past it)...
    await waitLog(hub, /worker 1 .*has not turned its loop/, fromLog, 10_000);
    const before = sink.messages.length;
    await sleep(2500); // five ping intervals
    assert.equal(pings(sink, before), 0, 'the supervisor pinged the watchdog while a worker was stopped');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  // ...and come back once it runs again.
  await waitPings(sink, 2, sink.messages.length);
  const r = await hub.stop();
  assert.deepEqual(r, { code: 0, signal: null });
  await nextMessage(sink, 'STOPPING', { from: ready });
});

test("SIGHUP (the unit's ExecReload) does not stop the hub", async () => {
  const sink = await startSink();
  const hub = await startNotifyingHub(sink);
  hub.proc.kill('SIGHUP');
  assert.equal((await httpGet(hub.port, '/healthz')).status, 200);
  assert.deepEqual(await hub.stop(), { code: 0, signal: null }, 'the hub did not outlive SIGHUP');
});
