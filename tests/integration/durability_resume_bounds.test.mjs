// durability_resume_bounds.test.mjs - resume at the edges: events as big as
// hub.emit() allows (a replay page must be bounded by bytes, not only rows,
// and always make progress) and a single event bigger than the queue bound.
//
// Every test uses a fresh tenant and a hub of its own, so the hub's
// counters (armonia_catchups_total) belong to the test.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { useLifecycle, startHub, db } from './lib/harness.mjs';
import {
  useStreams, openStream, streamBarrier, expectedEvents, assertSameSeqs, assertExactStream, emitMany, hubMetrics,
} from './lib/durability.mjs';

useLifecycle();
useStreams();

let database;

before(async () => {
  database = await db();
});

const resident = (tenant, sub, unit) => ({ sub, tenant, role: 'resident', units: [unit] });

/** armonia_catchups_total of a hub. */
const catchups = async (hub) => (await hubMetrics(hub.port)).armonia_catchups_total;

test('resume across 100 events of 20 KB (2 MB, twice the default queue bound): all arrive once, in order, few catch-ups', async () => {
  const hub = await startHub();
  const T = await database.newTenant('resbig20k');
  const claims = resident(T, 'r101', '101');
  await emitMany(database, T, 100, { rooms: ['unit:101'], kind: 'big', payload: 20_000 });
  const all = await expectedEvents(database, T, ['unit:101']);
  assert.equal(all.seqs.length, 100);
  const before = await catchups(hub);

  const s = await openStream(hub, claims, { since: 0, label: 'r101 (resumes 100 × 20 KB)' });
  await s.untilSeq(all.seqs.at(-1), { timeout: 30_000 });
  assertSameSeqs(s.label, s.seqs, all.seqs);
  assert.equal(s.duplicates, 0);
  assert.deepEqual(s.framesOf('error'), [], `errors: ${JSON.stringify(s.framesOf('error'))}`);
  const grew = (await catchups(hub)) - before;
  console.log(`# 100 × 20 KB resume: ${s.count} events, catchups_total +${grew}`);
  // A replay that reads the same window again and again counts hundreds.
  assert.ok(grew <= 2, `armonia_catchups_total grew by ${grew} during one resume`);

  // Then it is live.
  const m = await streamBarrier(database, T, [s]);
  await assertExactStream(database, T, s, { after: 0, upto: m.seq });
  s.close();
  await hub.stop();
});

test('events bigger than the whole queue bound (HUB_MAX_QUEUE_BYTES=4096, 30 KB events): live and replayed, each once', async () => {
  const hub = await startHub({ env: { HUB_MAX_QUEUE_BYTES: 4096 } });
  const T = await database.newTenant('resover');
  const claims = resident(T, 'r101', '101');
  const live = await openStream(hub, claims, { label: 'r101 (live)' });
  const before = await catchups(hub);

  // Live: one event at a time, then a burst of them in one transaction.
  const one = await database.emit(T, 'huge', ['unit:101'], { pad: 'x'.repeat(30_000) });
  await live.untilId(one, { timeout: 15_000 });
  await emitMany(database, T, 20, { rooms: ['unit:101'], kind: 'huge', payload: 30_000 });
  const m = await streamBarrier(database, T, [live], { timeout: 30_000 });
  await assertExactStream(database, T, live, { after: live.welcome.last_seq, upto: m.seq });
  assert.equal(live.duplicates, 0);

  // Replayed: the same events from the outbox.
  const s = await openStream(hub, claims, { since: 0, label: 'r101 (resumes 30 KB events, 4 KB queue)' });
  const m2 = await streamBarrier(database, T, [s], { timeout: 30_000 });
  await assertExactStream(database, T, s, { after: 0, upto: m2.seq });
  assert.equal(s.duplicates, 0);
  const grew = (await catchups(hub)) - before;
  console.log(`# 30 KB events with a 4 KB queue: ${live.count} live, ${s.count} replayed, catchups_total +${grew}`);
  // The burst may make the live reader fall behind now and then; an event
  // that loops between the queue and the outbox counts thousands.
  assert.ok(grew <= 30, `armonia_catchups_total grew by ${grew}`);
  live.close();
  s.close();
  await hub.stop();
});
