// hub_fanout.test.mjs - fan-outs larger than one slice (ROUTER_SLICE = 128
// connections, hub/router.h) are written over several loop turns, and
// critical or small events routed meanwhile go out at once, each recipient
// first catching up on the fan-outs in progress. Whatever the interleaving,
// every connection must get exactly its events, each once, in seq order
// (docs/protocol.md "Events") — also when connections leave in the middle of a
// fan-out that is walking their room.
//
// Runs on a cluster of its own so that the bursts here are this hub's only
// work and other files' hubs do not read them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useLifecycle, startHub, login } from './lib/harness.mjs';
import { httpGet } from './lib/hub.mjs';
import {
  useStreams, openStream, streamBarrier, assertExactStream, privateCluster, emitMany, sleep,
  expectedEvents, assertSameSeqs,
} from './lib/durability.mjs';

useLifecycle();
useStreams();

// More members in 'all' than one slice, so every broadcast is a fan-out in progress.
const RESIDENTS = 320;
const GUARDS = 4;
const UNITS = 40;

let cl, hub;

before(async () => {
  cl = await privateCluster('armonia-fanout-');
  hub = await startHub({ databaseUrl: cl.url });
});

after(async () => {
  // The cluster goes even when the hub ended badly (stop() then throws).
  try {
    if (hub) await hub.stop();
  } finally {
    if (cl) await cl.destroy();
  }
});

async function metric(port, name) {
  const r = await httpGet(port, '/metrics');
  const line = r.body.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} missing from /metrics`);
  return Number(line.split(' ')[1]);
}

async function openMany(T, h = hub) {
  const residents = [];
  for (let i = 0; i < RESIDENTS; i += 40) {
    const batch = [];
    for (let k = i; k < Math.min(RESIDENTS, i + 40); k++)
      batch.push(openStream(h, { sub: `r${k}`, tenant: T, role: 'resident', units: [`u${k % UNITS}`] }, { label: `resident r${k}` }));
    residents.push(...(await Promise.all(batch)));
  }
  const guards = await Promise.all(
    Array.from({ length: GUARDS }, (_, k) => openStream(h, { sub: `g${k}`, tenant: T, role: 'guard' }, { label: `guard g${k}` })),
  );
  return { residents, guards };
}

/**
 * Broadcast bursts (one statement each: every burst is many fan-outs queued
 * at once), critical alarms to the guards and visits to single units, all
 * committed concurrently.
 */
async function mixedLoad(T, rounds) {
  const bursts = (async () => {
    for (let r = 0; r < rounds; r++) await emitMany(cl.db, T, 25, { rooms: ['all'], kind: 'bcast', payload: 200 });
  })();
  const alarms = (async () => {
    for (let r = 0; r < rounds * 4; r++) {
      await cl.db.emit(T, 'alarm', ['role:guard'], { r }, { priority: 'critical' });
      await sleep(2);
    }
  })();
  const visits = (async () => {
    for (let r = 0; r < rounds * 4; r++) {
      await cl.db.emit(T, 'visit', [`unit:u${r % UNITS}`], { r }, { priority: 'high' });
      await sleep(1);
    }
  })();
  await Promise.all([bursts, alarms, visits]);
}

test(`${RESIDENTS} residents and ${GUARDS} guards: broadcasts, critical alarms and visits interleaved → every stream exact, in seq order, once`, async () => {
  const T = await cl.db.newTenant('fan');
  const { residents, guards } = await openMany(T);
  // One MessagePack guard too (binary frames through the same paths).
  const mp = await login(hub, { sub: 'gmp', tenant: T, role: 'guard' }, { format: 'msgpack', label: 'guard gmp (msgpack)' });
  const all = [...residents, ...guards];
  await mixedLoad(T, 8);
  const barrier = await streamBarrier(cl.db, T, all, { timeout: 60_000 });
  for (const s of all) await assertExactStream(cl.db, T, s, { after: s.welcome.last_seq, upto: barrier.seq });
  await mp.next({ where: (f) => f?.type === 'event' && f.id === barrier.id, timeout: 30_000 });
  const exp = await expectedEvents(cl.db, T, mp.welcome.rooms, { after: mp.welcome.last_seq, upto: barrier.seq });
  assertSameSeqs(mp.label, mp.seen.filter((f) => f?.type === 'event').map((f) => f.seq), exp.seqs);
  assert.deepEqual(mp.problems, [], `${mp.label}: wire problems`);
  // Each guard got every alarm (also implied by exactness; said plainly).
  const alarmIds = new Set((await cl.db.sql(`select id::int as id from hub.outbox where tenant = $1 and kind = 'alarm'`, [T])).map((r) => r.id));
  assert.equal(alarmIds.size, 32);
  for (const g of guards) assert.equal(g.ids.filter((id) => alarmIds.has(id)).length, 32, `${g.label}: every alarm`);
  // Each burst queued 25 fan-outs to the same room: they were walked
  // together (ROUTER_BATCH), several events per write (those streams are
  // the exact ones checked above).
  const runs = await metric(hub.port, 'armonia_frame_runs_total');
  assert.ok(runs > 0, `no write carried several events (armonia_frame_runs_total ${runs})`);
  // So the hub made fewer socket writes than it sent frames.
  const writes = await metric(hub.port, 'armonia_socket_writes_total');
  const frames = await metric(hub.port, 'armonia_frames_sent_total');
  assert.ok(writes > 0 && writes < frames, `socket writes ${writes} vs frames ${frames}`);
});

test('connections leaving while a fan-out walks their room: the others still get exactly their events', async () => {
  const T = await cl.db.newTenant('fanleave');
  const { residents, guards } = await openMany(T);
  const leaving = residents.filter((_, i) => i % 3 === 1);
  const staying = [...residents.filter((_, i) => i % 3 !== 1), ...guards];
  const load = mixedLoad(T, 6);
  // Leave in small groups while the bursts are being written.
  for (let i = 0; i < leaving.length; i += 10) {
    for (const s of leaving.slice(i, i + 10)) i % 20 ? s.terminate() : s.close();
    await sleep(3);
  }
  await load;
  const barrier = await streamBarrier(cl.db, T, staying, { timeout: 60_000 });
  for (const s of staying) await assertExactStream(cl.db, T, s, { after: s.welcome.last_seq, upto: barrier.seq });
  // Those that left got a prefix of their stream: in order, no duplicates.
  for (const s of leaving) {
    assert.equal(s.duplicates, 0, `${s.label}: duplicates`);
    assert.equal(s.outOfOrder, 0, `${s.label}: out of order`);
  }
  // The hub is still healthy and serves a new connection.
  const late = await openStream(hub, { sub: 'late', tenant: T, role: 'resident', units: ['u1'] }, { label: 'late resident' });
  const b2 = await streamBarrier(cl.db, T, [late, ...staying], { timeout: 30_000 });
  await assertExactStream(cl.db, T, late, { after: late.welcome.last_seq, upto: b2.seq });
});

test('quiet mode: behind by HUB_OUTBOX_QUIET_JOBS broadcasts the hub stops taking notifications and reads on a timer; every stream stays exact, and it listens again once caught up', async () => {
  // A second hub on the same cluster, quiet as soon as 2 broadcasts wait.
  const quiet = await startHub({ databaseUrl: cl.url, env: { HUB_OUTBOX_QUIET_JOBS: '2', HUB_OUTBOX_POLL_MS: '20' } });
  try {
    const T = await cl.db.newTenant('fanquiet');
    const { residents, guards } = await openMany(T, quiet);
    const all = [...residents, ...guards];
    const before = await metric(quiet.port, 'armonia_outbox_quiet_total');
    // Broadcasts that alternate between two rooms (so they are not walked
    // together) make a backlog that lasts; alarms and visits keep committing
    // meanwhile, each in a transaction of its own.
    const bursts = (async () => {
      for (let r = 0; r < 4; r++) {
        await cl.db.sql(`select count(hub.emit($1, 'bcast', case when i % 2 = 0 then array['all'] else array['role:resident'] end,
                                              jsonb_build_object('i', i, 'pad', repeat('x', 200)))) from generate_series(1, 150) i`, [T]);
        await sleep(30);
      }
    })();
    await Promise.all([bursts, mixedLoad(T, 8)]);
    const barrier = await streamBarrier(cl.db, T, all, { timeout: 60_000 });
    for (const s of all) await assertExactStream(cl.db, T, s, { after: s.welcome.last_seq, upto: barrier.seq });
    const alarmIds = new Set((await cl.db.sql(`select id::int as id from hub.outbox where tenant = $1 and kind = 'alarm'`, [T])).map((r) => r.id));
    for (const g of guards) assert.equal(g.ids.filter((id) => alarmIds.has(id)).length, 32, `${g.label}: every alarm`);
    const went = (await metric(quiet.port, 'armonia_outbox_quiet_total')) - before;
    assert.ok(went >= 1, `the hub never went quiet (armonia_outbox_quiet_total +${went})`);
    // Caught up: back on notifications. The gauge drops, and a single event
    // now arrives through a notification (the wake-up counter moves).
    const deadline = Date.now() + 10_000;
    while ((await metric(quiet.port, 'armonia_outbox_quiet')) !== 0) {
      assert.ok(Date.now() < deadline, 'still quiet 10 s after the load ended');
      await sleep(50);
    }
    const wake0 = await metric(quiet.port, 'armonia_outbox_wakeups_total');
    const b2 = await streamBarrier(cl.db, T, all, { timeout: 30_000 });
    for (const s of all) await assertExactStream(cl.db, T, s, { after: s.welcome.last_seq, upto: b2.seq });
    assert.ok((await metric(quiet.port, 'armonia_outbox_wakeups_total')) > wake0, 'no notification after the hub listened again');
  } finally {
    await quiet.stop();
  }
});
