// hub_workers.test.mjs - one hub as several worker processes on one port
// (HUB_WORKERS, README "Production"): the kernel spreads connections over
// the workers, every worker serves every event, /metrics and /healthz speak
// for the whole hub whichever worker answers, a worker that dies is
// restarted and its clients resume with nothing lost or doubled, SIGTERM
// drains every worker with 1001, and a worker that cannot start makes the
// supervisor give up.
//
// The hub process a test starts is the supervisor; worker pids come from
// /metrics (armonia_worker_pid{worker="k"}).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { useLifecycle, startHub, runHub, db, httpGet, waitLog, freePort } from './lib/harness.mjs';
import {
  useStreams, openStream, streamBarrier, assertExactStream, startProducer, within,
} from './lib/durability.mjs';

useLifecycle();
useStreams();

let database;

before(async () => {
  database = await db();
});

const WORKERS = { HUB_WORKERS: 2 };

/** GET /metrics: {name: {total, workers: {k: value}}} for unlabelled and worker-labelled series. */
async function workerMetrics(port) {
  const r = await httpGet(port, '/metrics');
  assert.equal(r.status, 200);
  const out = {};
  for (const line of r.body.split('\n')) {
    let m = line.match(/^([a-z_]+) (-?[0-9]+)$/);
    if (m) {
      (out[m[1]] ??= { workers: {} }).total = Number(m[2]);
      continue;
    }
    m = line.match(/^([a-z_]+)\{worker="([0-9]+)"\} (-?[0-9]+)$/);
    if (m) (out[m[1]] ??= { workers: {} }).workers[m[2]] = Number(m[3]);
  }
  return out;
}

/** Opens n guard connections of tenant T (label prefix p). */
function openGuards(hub, T, n, p = 'guard') {
  return Promise.all(Array.from({ length: n }, (_, i) => openStream(hub, { sub: `${p}${i}`, tenant: T, role: 'guard' }, { label: `${p} ${i}`, since: 0 })));
}

/** Polls /healthz every few ms until it answered 503 and then 200; resolves with what it saw. */
async function healthDipsAndRecovers(port, timeout) {
  const seen = [];
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    let s;
    try {
      s = (await httpGet(port, '/healthz', { timeout: 1000 })).status;
    } catch {
      s = 'error';
    }
    if (seen.at(-1) !== s) seen.push(s);
    if (seen.includes(503) && s === 200) return seen;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`/healthz did not go 503 then 200 within ${timeout} ms; it answered ${seen.join(' → ')}`);
}

test('connections spread over both workers; a panic reaches every guard whatever its worker; /metrics adds the workers up', async () => {
  const T = await database.newTenant('workers');
  const hub = await startHub({ env: WORKERS });
  const guards = await openGuards(hub, T, 40);
  const m = await workerMetrics(hub.port);
  assert.equal(m.armonia_workers.total, 2);
  assert.equal(m.armonia_connections.total, 40, `connections: ${JSON.stringify(m.armonia_connections)}`);
  const per = m.armonia_connections.workers;
  assert.ok(per[0] > 0 && per[1] > 0, `both workers must hold connections: ${JSON.stringify(per)}`);
  assert.equal(per[0] + per[1], 40);
  assert.equal(m.armonia_connections_total.workers[0] + m.armonia_connections_total.workers[1], m.armonia_connections_total.total);
  assert.deepEqual(m.armonia_worker_up.workers, { 0: 1, 1: 1 });

  const id = await database.emit(T, 'panic', ['role:guard'], { unit: '101' }, { priority: 'critical' });
  await Promise.all(guards.map((g) => g.untilId(id)));
  const { seq } = await streamBarrier(database, T, guards);
  for (const g of guards) {
    await assertExactStream(database, T, g, { upto: seq });
    assert.equal(g.duplicates, 0);
  }
  const after = await workerMetrics(hub.port);
  // Every worker reads every event (the panic and the barrier at least);
  // the total is the sum of the workers' counts.
  const ev = after.armonia_events_total;
  assert.ok(ev.workers[0] >= 2 && ev.workers[1] >= 2, `events routed per worker: ${JSON.stringify(ev)}`);
  assert.equal(ev.workers[0] + ev.workers[1], ev.total);
  const sent = after.armonia_frames_sent_total;
  assert.equal(sent.workers[0] + sent.workers[1], sent.total);
});

test('kill -9 of one worker: the supervisor restarts it, /healthz goes 503 then 200, its clients resume with nothing lost or doubled', async () => {
  const T = await database.newTenant('workers');
  const hub = await startHub({ env: WORKERS });
  const first = await openGuards(hub, T, 20);
  const producer = startProducer(database.url, T, { rooms: () => ['role:guard'], intervalMs: 2 });
  try {
    await within(20_000, 'the first events', Promise.all(first.map((s) => s.untilSeq(1))));
    const before = await workerMetrics(hub.port);
    const victim = before.armonia_worker_pid.workers[1];
    assert.ok(victim > 0, `worker 1 has no pid: ${JSON.stringify(before.armonia_worker_pid)}`);
    assert.ok(before.armonia_connections.workers[1] > 0, `worker 1 holds no connection: ${JSON.stringify(before.armonia_connections)}`);
    const from = hub.output.length;
    process.kill(victim, 'SIGKILL');
    const health = healthDipsAndRecovers(hub.port, 20_000);
    await waitLog(hub, new RegExp(`worker 1 \\(pid ${victim}\\) was killed by signal 9.*restarting`), from);
    await waitLog(hub, /worker 1 started \(pid \d+\)/, from);
    await health;

    // The clients of the dead worker lost their connection; the others did not.
    const cut = before.armonia_connections.workers[1];
    await within(10_000, `${cut} clients of the dead worker seeing their connection end`, (async () => {
      while (first.filter((s) => s.closeInfo).length < cut) await new Promise((r) => setTimeout(r, 10));
    })());
    const dead = first.filter((s) => s.closeInfo);
    const alive = first.filter((s) => !s.closeInfo);
    assert.equal(dead.length, cut, 'exactly the dead worker\'s clients are cut off');
    for (const s of dead) assert.equal(s.closeInfo.code, 1006, s.describe());
    const again = await Promise.all(dead.map((s) => openStream(hub, s.claims, { label: `${s.label} again`, since: s.lastSeq })));

    await producer.stop();
    const { seq } = await streamBarrier(database, T, [...alive, ...again]);
    for (const s of alive) await assertExactStream(database, T, s, { upto: seq });
    for (let i = 0; i < dead.length; i++)
      await assertExactStream(database, T, again[i], { upto: seq, got: [...dead[i].seqs, ...again[i].seqs] });

    const m = await workerMetrics(hub.port);
    assert.equal(m.armonia_worker_restarts_total.workers[1], 1);
    assert.notEqual(m.armonia_worker_pid.workers[1], victim);
    assert.deepEqual(m.armonia_worker_up.workers, { 0: 1, 1: 1 });
  } finally {
    await producer.stop();
  }
});

test('SIGTERM to the supervisor: every client of every worker gets 1001, the supervisor exits 0', async () => {
  const T = await database.newTenant('workers');
  const hub = await startHub({ env: WORKERS });
  const guards = await openGuards(hub, T, 20);
  const per = (await workerMetrics(hub.port)).armonia_connections.workers;
  assert.ok(per[0] > 0 && per[1] > 0, `both workers must hold connections: ${JSON.stringify(per)}`);
  const exit = await hub.stop(20_000);
  assert.deepEqual(exit, { code: 0, signal: null }, hub.logs());
  for (const g of guards) {
    const c = await g.closedWithin(5000);
    assert.equal(c.code, 1001, g.describe());
  }
  assert.match(hub.logs(), /supervisor: all workers have exited/);
});

test('a worker that cannot start (its port is taken by another program): the supervisor gives up and exits non-zero', async () => {
  const port = await freePort();
  const squatter = createServer();
  await new Promise((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  try {
    const database = (await db()).url;
    const r = await runHub({
      env: { ...WORKERS, DATABASE_URL: database, JWT_SECRET_KEY: 'a'.repeat(40), PORT: port, HUB_BIND: '127.0.0.1' },
      timeout: 30_000,
    });
    const out = r.stdout + r.stderr;
    assert.equal(r.timedOut, false, out);
    assert.equal(r.code, 1, out);
    assert.match(out, /cannot listen on 127\.0\.0\.1:\d+: Address already in use/);
    assert.match(out, /supervisor: worker \d \(pid \d+\) exited with status 1 \d+ ms after its start, 5 times in a row: giving up/);
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});

test('HUB_WORKERS out of range, or a setting a worker refuses, stops the hub at start with exit status 2', async () => {
  for (const v of ['0', '65', 'two']) {
    const r = await runHub({ env: { HUB_WORKERS: v, DATABASE_URL: 'postgresql://x@127.0.0.1:1/x', JWT_SECRET_KEY: 'a'.repeat(40) } });
    assert.equal(r.code, 2, `HUB_WORKERS=${v}: ${r.stderr}`);
    assert.match(r.stderr, /HUB_WORKERS: expected an integer from 1 to 64/);
  }
  // A setting only a worker checks (it reads the file at start): exit 2 as
  // for a lone hub, at once instead of after five restarts.
  const r = await runHub({ env: { HUB_WORKERS: 2, DATABASE_URL: 'postgresql://x@127.0.0.1:1/x', JWT_SECRET_KEY: 'a'.repeat(40), PORT: await freePort(), HUB_BIND: '127.0.0.1', FIREBASE_SERVICE_ACCOUNT_FILE: '/nonexistent/key.json' } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /FIREBASE_SERVICE_ACCOUNT_FILE: cannot open the file/);
  assert.match(r.stderr, /supervisor: worker \d \(pid \d+\) refused the configuration: stopping/);
});
