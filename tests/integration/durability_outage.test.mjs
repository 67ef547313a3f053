// durability_outage.test.mjs - the database goes away under a running hub:
// fast restart, a stop of several seconds, the hub's backends terminated.
// /healthz follows the listener; connected clients stay connected and get
// every event committed before, during and after, once, in order
// (docs/protocol.md "Events", "HTTP on the same port"; docs/design-seq.md "reconnecting").
//
// This file stops its database, so it runs on a cluster of its own (a fresh
// temp directory), never the shared HUB_PGDIR one. Each outage prints
// RECOVERY_MS=<n>: from the moment the database accepts connections again
// (a new connection every 20 ms) to the first event delivered after that.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useLifecycle, startHub, waitHealth, httpGet } from './lib/harness.mjs';
import {
  useStreams, openStream, streamBarrier, assertExactStream, startProducer, privateCluster, outageAndRecovery, within,
} from './lib/durability.mjs';

useLifecycle();
useStreams();

let cl, hub, T, guard, res;
const ROOMS = [['role:guard'], ['unit:101'], ['all'], ['unit:202'], ['role:guard', 'unit:101']];

before(async () => {
  cl = await privateCluster('armonia-dur-outage-');
  T = await cl.db.newTenant('outage');
  hub = await startHub({ databaseUrl: cl.url, env: { HUB_DB_RETRY_MAX_MS: 500 } });
  guard = await openStream(hub, { sub: 'g1', tenant: T, role: 'guard' }, { since: 0, label: 'guard' });
  res = await openStream(hub, { sub: 'r101', tenant: T, role: 'resident', units: ['101'] }, { since: 0, label: 'resident 101', header: true });
});

after(async () => {
  // The cluster goes even when the hub ended badly (stop() then throws).
  try {
    if (hub) await hub.stop();
  } finally {
    if (cl) await cl.destroy();
  }
});

/** Waits (bounded) until the producer has committed `more` events beyond now. */
async function producerAdvances(producer, more, what) {
  const target = producer.ok + more;
  await within(20_000, `${what}: the producer committing ${more} more events (errors: ${producer.errors}, last: ${producer.lastError})`, (async () => {
    while (producer.ok < target) await new Promise((r) => setTimeout(r, 5));
  })());
}

/** Both clients still on their first connection, holding the whole tenant history for their rooms. */
async function assertEverythingOnce() {
  const m = await streamBarrier(cl.db, T, [guard, res], { timeout: 30_000 });
  for (const s of [guard, res]) {
    assert.equal(s.closeInfo, null, `${s.label} was disconnected: ${s.describe()}`);
    await assertExactStream(cl.db, T, s, { after: 0, upto: m.seq });
  }
}

function report(scenario, r) {
  console.log(`RECOVERY_MS=${r.recoveryMs} scenario=${scenario} probe_delivered_ms=${r.probeMs}${r.unseenDown ? ' (database down not observed by the poller)' : ''} healthz=${r.healthStatuses.join('→')}`);
}

test('scripts/pg.sh restart (fast) with a producer emitting before and after → /healthz 503 then 200, every event once, in order', async () => {
  const producer = startProducer(cl.url, T, { rooms: (i) => ROOMS[i % ROOMS.length], intervalMs: 2 });
  try {
    await guard.until(() => guard.count >= 50, { what: '50 events before the restart', timeout: 20_000 });
    const r = await outageAndRecovery(cl, hub, guard, T, { how: 'restart' });
    report('pg.sh restart', r);
    assert.ok(r.healthStatuses.includes(503), `/healthz never answered 503 during the restart: ${r.healthStatuses}`);
    await waitHealth(hub.port, 200, 15_000);
    await producerAdvances(producer, 100, 'after the restart');
  } finally {
    const st = await producer.stop();
    console.log(`# restart: producer committed ${st.ok} (${st.errors} errors while the database was away)`);
  }
  await assertEverythingOnce();
});

test('PostgreSQL stopped for 8 s: /healthz 503 and clients served meanwhile; events emitted right after the start are delivered; nothing lost or doubled', async () => {
  await cl.db.emit(T, 'before', ['all'], {});
  const r = await outageAndRecovery(cl, hub, guard, T, {
    how: 'stop',
    downMs: 8000,
    duringOutage: async () => {
      await waitHealth(hub.port, 503, 10_000);
      for (const s of [guard, res]) await s.ping();
      const h = await httpGet(hub.port, '/healthz');
      assert.equal(h.status, 503, '/healthz back to 200 with the database down');
    },
  });
  report('pg.sh stop, 8 s, start', r);
  // More right after the start, through the new pool.
  for (let i = 0; i < 20; i++) await cl.db.emit(T, 'after', ROOMS[i % ROOMS.length], { i });
  await waitHealth(hub.port, 200, 15_000);
  await assertEverythingOnce();
});

test("pg_terminate_backend of the hub's connections during a stream of events → recovered, nothing lost or doubled", async () => {
  const producer = startProducer(cl.url, T, { rooms: (i) => ROOMS[i % ROOMS.length], intervalMs: 2 });
  let r;
  try {
    const n0 = guard.count;
    await guard.until(() => guard.count >= n0 + 50, { what: '50 more events before the terminate', timeout: 20_000 });
    r = await outageAndRecovery(cl, hub, guard, T, { how: 'terminate' });
    report('pg_terminate_backend', r);
    await producerAdvances(producer, 100, 'after the terminate');
  } finally {
    await producer.stop();
  }
  // The listener and the work connection at least (later hubs may hold more).
  assert.ok(r.terminated >= 2, `expected to terminate the hub's connections (application_name armonia-hub, at least listener + worker), terminated ${r.terminated}`);
  await waitHealth(hub.port, 200, 15_000);
  await assertEverythingOnce();
});
