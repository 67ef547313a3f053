// durability_restart.test.mjs - the hub dies or is stopped while events
// flow; a new hub plus client resume loses nothing and doubles nothing
// (docs/protocol.md "Resume", close code 1001; acks in hub.deliveries).
//
// Clients start with since 0 on a fresh tenant, so what each must hold in
// the end is exactly the tenant's events for its rooms in hub.outbox, up to
// a final barrier; their connections' seqs are concatenated in order.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { useLifecycle, startHub, db } from './lib/harness.mjs';
import {
  useStreams, openStream, streamBarrier, assertExactStream, startProducer, nowMs, within, hubBackedUp,
  SANITIZED,
} from './lib/durability.mjs';

// Time a hub may take, after its shutdown deadline, to close what is left
// and exit: freeing and (under the sanitizers) the leak check at exit. A run
// of the sanitized suite beside another test once took 1.5 s here.
const EXIT_SLACK_MS = SANITIZED ? 4000 : 1500;

useLifecycle();
useStreams();

let database;

before(async () => {
  database = await db();
});

const ROOMS = [['unit:101'], ['all'], ['unit:202'], ['role:guard'], ['unit:303'], ['unit:202', 'role:guard']];

function people(T) {
  return [
    { claims: { sub: 'r101', tenant: T, role: 'resident', units: ['101'] }, opts: { label: 'resident 101' } },
    { claims: { sub: 'r202', tenant: T, role: 'resident', units: ['202'] }, opts: { label: 'resident 202 (header auth)', header: true } },
    { claims: { sub: 'g1', tenant: T, role: 'guard' }, opts: { label: 'guard' } },
  ];
}

/** Each person opens a connection to hub, resuming after what it holds (since 0 at first). */
async function connectAll(hub, who, previous = []) {
  return Promise.all(who.map((p, i) => openStream(hub, p.claims, { ...p.opts, since: previous[i]?.at(-1)?.lastSeq ?? 0 })));
}

/** Waits (bounded) until the producer has committed `more` events beyond now. */
async function producerAdvances(producer, more, what) {
  const target = producer.ok + more;
  await within(20_000, `${what}: the producer committing ${more} more events (errors: ${producer.errors}, last: ${producer.lastError})`, (async () => {
    while (producer.ok < target) await new Promise((r) => setTimeout(r, 5));
  })());
}

test('kill -9 while clients are connected and events are being emitted; a new hub + resume → every event once, in order', async () => {
  const T = await database.newTenant('kill9');
  const who = people(T);
  const hub1 = await startHub();
  const first = await connectAll(hub1, who);
  const producer = startProducer(database.url, T, { rooms: (i) => ROOMS[i % ROOMS.length], intervalMs: 1 });
  try {
    await first[0].until(() => first[0].count >= 100, { what: '100 events at resident 101', timeout: 20_000 });
    await hub1.kill('SIGKILL');
    const closes = await Promise.all(first.map((s) => s.closedWithin(5000)));
    for (const [i, c] of closes.entries()) assert.equal(c.code, 1006, `${first[i].label}: a killed hub cannot send a close frame; got ${JSON.stringify(c)}`);
    // Events keep committing while no hub runs.
    await producerAdvances(producer, 100, 'with no hub');
    const hub2 = await startHub();
    const second = await connectAll(hub2, who, first.map((s) => [s]));
    await producerAdvances(producer, 200, 'after the restart');
    const st = await producer.stop();
    const m = await streamBarrier(database, T, second, { timeout: 30_000 });
    for (const [i, s] of second.entries()) {
      await assertExactStream(database, T, s, { after: 0, upto: m.seq, got: [...first[i].seqs, ...s.seqs] });
    }
    console.log(`# kill -9: producer committed ${st.ok} events (${st.errors} errors); received before the kill: ${first.map((s) => s.count).join('/')}, after: ${second.map((s) => s.count).join('/')}`);
  } finally {
    await producer.stop();
  }
});

test('SIGTERM right after a 20,000-event transaction → clients get 1001, the hub exits 0 in time; a new hub + resume → every event once', async () => {
  const T = await database.newTenant('term');
  const who = people(T);
  const hub1 = await startHub();
  const first = await connectAll(hub1, who);
  await database.emit(T, 'warmup', ['all'], {});
  await Promise.all(first.map((s) => s.until(() => s.count === 1)));
  await database.sql(
    `select count(hub.emit($1, 'burst', case i % 4 when 0 then array['unit:101'] when 1 then array['all'] when 2 then array['role:guard'] else array['unit:202'] end,
                          jsonb_build_object('i', i))) from generate_series(1, 20000) i`,
    [T],
  );
  const t0 = nowMs();
  hub1.proc.kill('SIGTERM');
  const closes = await Promise.all(first.map((s) => s.closedWithin(15_000)));
  for (const [i, c] of closes.entries()) assert.equal(c.code, 1001, `${first[i].label}: expected close 1001 on shutdown, got ${JSON.stringify(c)}; ${first[i].describe()}`);
  const exit = await within(11_000, 'the hub exiting after SIGTERM (HUB_SHUTDOWN_TIMEOUT_MS is 10000)', hub1.exited);
  const exitMs = Math.round(nowMs() - t0);
  assert.deepEqual(exit, { code: 0, signal: null }, `hub exit after SIGTERM; log:\n${hub1.output.slice(-20).join('\n')}`);
  for (const s of first) assert.ok(s.outOfOrder === 0 && s.duplicates === 0, s.describe());

  const hub2 = await startHub();
  const second = await connectAll(hub2, who, first.map((s) => [s]));
  const m = await streamBarrier(database, T, second, { timeout: 30_000 });
  for (const [i, s] of second.entries()) {
    await assertExactStream(database, T, s, { after: 0, upto: m.seq, got: [...first[i].seqs, ...s.seqs] });
  }
  console.log(`# SIGTERM after 20k: hub exited 0 after ${exitMs} ms; events before 1001: ${first.map((s) => s.count).join('/')}; replayed by the new hub: ${second.map((s) => s.count).join('/')}`);
});

test('while a stopping hub drains, new connections are refused; a client that does not read is cut at HUB_SHUTDOWN_TIMEOUT_MS and the hub exits 0', async () => {
  const T = await database.newTenant('drain');
  const hub = await startHub({ env: { HUB_SHUTDOWN_TIMEOUT_MS: 2000 } });
  await database.sql(`select count(hub.emit($1, 'big', array['all'], jsonb_build_object('pad', repeat('x', 1000)))) from generate_series(1, 20000)`, [T]);
  const stuck = await openStream(hub, { sub: 'stuck', tenant: T, role: 'guard' }, { since: 0, label: 'non-reading client' });
  stuck.pauseReading();
  // Wait until the hub really holds frames it cannot write (from /metrics).
  const backed = await hubBackedUp(hub.port);
  const t0 = nowMs();
  hub.proc.kill('SIGTERM');
  // The hub says when it starts draining; that line is the event awaited.
  await within(5000, 'the hub logging that it is stopping', (async () => {
    while (!hub.output.some((l) => l.includes('stopping'))) await new Promise((r) => setTimeout(r, 10));
  })());
  let refused;
  try {
    const late = await openStream(hub, { sub: 'late', tenant: T, role: 'guard' }, { label: 'late client', timeout: 3000 });
    refused = `welcomed: ${JSON.stringify(late.welcome)}`;
  } catch (err) {
    refused = err.message;
  }
  assert.ok(!refused.startsWith('welcomed'), `a new connection was served while the hub was stopping: ${refused}`);
  const exit = await within(2000 + EXIT_SLACK_MS + 500, 'the hub exiting (shutdown timeout 2000 ms)', hub.exited);
  const exitMs = Math.round(nowMs() - t0);
  assert.deepEqual(exit, { code: 0, signal: null }, `hub exit; log:\n${hub.output.slice(-20).join('\n')}`);
  // The hub keeps at most a quarter of HUB_MAX_QUEUE_BYTES of a replay queued, and the
  // kernel's socket buffers may already hold all of it: then nothing is left to wait for
  // and the hub exits at once; otherwise it waits for the timeout. Either way it exits 0
  // within it, and the client resumes the rest.
  assert.ok(exitMs <= 2000 + EXIT_SLACK_MS, `the hub took ${exitMs} ms to exit (timeout 2000)`);
  console.log(`# drain: the hub had sent ${backed.sent} of 20000 replayed frames and stalled at SIGTERM; new connection during the drain → ${refused}; exit 0 after ${exitMs} ms`);
  stuck.terminate();
});

test('acks sent right before SIGTERM are in hub.deliveries (ws, acked) after the hub exits', async () => {
  const T = await database.newTenant('acks');
  const hub = await startHub();
  const g = await openStream(hub, { sub: 'g-ack', tenant: T, role: 'guard' }, { since: 0, label: 'guard' });
  const rows = await database.sql(
    `select hub.emit($1, 'alarm', array['role:guard'], jsonb_build_object('i', i), 'critical', true)::text as id from generate_series(1, 50) i`,
    [T],
  );
  const ids = rows.map((r) => Number(r.id));
  await g.untilId(Math.max(...ids));
  assert.equal(g.count, 50);
  for (const id of ids) g.send({ type: 'ack', id });
  // The pong proves the hub has read every ack (frames are handled in order); then stop at once.
  await g.ping();
  hub.proc.kill('SIGTERM');
  const exit = await within(11_000, 'the hub exiting after SIGTERM', hub.exited);
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(g.framesOf('error'), [], `the hub refused acks: ${JSON.stringify(g.framesOf('error'))}`);
  const acked = await database.sql(
    `select event_id::text as id, status, channel, tenant from hub.deliveries
      where event_id = any($1::bigint[]) and user_id = 'g-ack' and channel = 'ws' order by event_id`,
    [ids],
  );
  assert.equal(acked.length, 50, `expected 50 ws delivery rows for the acks, found ${acked.length}: ${JSON.stringify(acked.slice(0, 5))}\nhub log:\n${hub.output.slice(-15).join('\n')}`);
  for (const r of acked) assert.deepEqual([r.status, r.channel, r.tenant], ['acked', 'ws', T], JSON.stringify(r));
});
