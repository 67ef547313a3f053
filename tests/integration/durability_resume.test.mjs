// durability_resume.test.mjs - a client that comes back names the last seq
// it holds and gets everything it missed, once, in order, then live
// (docs/protocol.md "Resume"; docs/design-seq.md).
//
// Every test uses a fresh tenant, so "since 0" means "everything of this
// tenant", and compares the exact seqs a client received with hub.outbox.
// The resume_gap test purges with a 1 s retention; hub.purge_outbox is not
// per tenant, so it runs on a cluster of its own, never the shared one.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { useLifecycle, startHub, db } from './lib/harness.mjs';
import {
  useStreams, openStream, streamBarrier, assertExactStream, expectedEvents, assertSameSeqs, emitMany,
  tenantLastSeq, purgedThrough, privateCluster, sampleRss, sleep, within,
  SANITIZED,
} from './lib/durability.mjs';
import { waitFor } from './lib/fallback.mjs';

useLifecycle();
useStreams();

let hub, database;
const clusters = [];

before(async () => {
  database = await db();
  hub = await startHub();
});

after(async () => {
  // Every cluster goes, even when one of them fails to.
  const failed = [];
  for (const c of clusters) await c.destroy().catch((err) => failed.push(err));
  if (failed.length) throw failed[0];
});

const resident = (tenant, sub, unit) => ({ sub, tenant, role: 'resident', units: [unit] });

/** Emits one event per entry of roomsList (each its own transaction); resolves with the ids. */
async function emitEach(tenant, roomsList, kind = 'away') {
  const ids = [];
  for (const [i, rooms] of roomsList.entries()) ids.push(await database.emit(tenant, kind, rooms, { i }));
  return ids;
}

const MIXED = (sub) => [['unit:101'], ['unit:202'], ['all'], ['role:guard'], [`user:${sub}`], ['role:resident'], ['unit:202', 'unit:101'], ['user:someone-else']];
const cycle = (list, n) => Array.from({ length: n }, (_, i) => list[i % list.length]);

/**
 * The common resume scenario: a resident is online (since 0), goes away,
 * events commit, it resumes with since = its last seq (in the auth frame or
 * ?since= with header auth), more events commit live. Its two connections
 * together must hold exactly the tenant's events for its rooms.
 */
async function resumeScenario({ header }) {
  const T = await database.newTenant(header ? 'resq' : 'resa');
  const claims = resident(T, 'r101', '101');
  const s1 = await openStream(hub, claims, { since: 0, label: 'r101 (first connection)' });
  await emitEach(T, cycle(MIXED('r101'), 12), 'before');
  const m1 = await streamBarrier(database, T, [s1]);
  await assertExactStream(database, T, s1, { after: 0, upto: m1.seq });
  const L = s1.lastSeq;
  s1.close();
  await s1.closedWithin();

  await emitEach(T, cycle(MIXED('r101'), 24), 'away');
  const missed = await expectedEvents(database, T, s1.welcome.rooms, { after: L });
  assert.ok(missed.seqs.length >= 12, `setup: only ${missed.seqs.length} missed events in the client's rooms`);

  const s2 = await openStream(hub, claims, { since: L, header, label: `r101 (resumed${header ? ', ?since=' : ', auth since'})` });
  assert.equal(s2.frames[0].frame.type, 'welcome', 'the first frame of a resumed connection must be its welcome');
  assert.equal(s2.frames[0].at, 0, 'an event arrived before the welcome');
  assert.deepEqual(s2.framesOf('error'), [], `errors on resume: ${JSON.stringify(s2.framesOf('error'))}`);
  // The replay: exactly the missed events, before anything live is emitted.
  await s2.untilSeq(missed.seqs.at(-1));
  assertSameSeqs(`${s2.label}, replayed part`, s2.seqs.slice(0, missed.seqs.length), missed.seqs);

  await emitEach(T, cycle(MIXED('r101'), 16), 'live');
  const m2 = await streamBarrier(database, T, [s2]);
  await assertExactStream(database, T, s2, { after: L, upto: m2.seq });
  // Both connections together: the whole history, once.
  await assertExactStream(database, T, s2, { after: 0, upto: m2.seq, got: [...s1.seqs, ...s2.seqs] });
  s2.close();
}

test('resume with "since" in the auth frame: missed events once, in order, then live ones without gap or duplicate', async () => {
  await resumeScenario({ header: false });
});

test('resume with ?since= on the upgrade URL (header auth): missed events once, in order, then live ones', async () => {
  await resumeScenario({ header: true });
});

test('resume while a producer keeps committing: 3,000 replayed + 500 concurrent commits → exact sequence', async () => {
  const T = await database.newTenant('resconc');
  const claims = resident(T, 'r101', '101');
  const start = await database.emit(T, 'marker', ['all'], { start: true });
  const [{ seq: since }] = await database.sql('select seq::int as seq from hub.outbox where id = $1', [start]);
  // 4,500 events in one statement: 3,000 to unit:101, 1,500 to unit:202 (not the client's).
  await database.sql(
    `select count(hub.emit($1, 'away', case when i % 3 = 0 then array['unit:202'] else array['unit:101'] end,
                          jsonb_build_object('i', i))) from generate_series(1, 4500) i`,
    [T],
  );
  const away = await expectedEvents(database, T, ['all', 'user:r101', 'role:resident', 'unit:101'], { after: since });
  assert.equal(away.seqs.length, 3000);

  // The concurrent producer: 500 events to the client's rooms, one transaction each.
  const prod = new pg.Client({ connectionString: database.url });
  await prod.connect();
  let committed = 0;
  const producer = (async () => {
    for (let i = 0; i < 500; i++) {
      await prod.query('select hub.emit($1, $2, $3::text[], $4::jsonb)', [T, 'conc', i % 2 ? ['unit:101'] : ['all'], JSON.stringify({ i })]);
      committed++;
      if (i % 10 === 9) await sleep(1);
    }
  })();
  try {
    // Resume once the producer is under way, so commits land before, during and after the replay.
    while (committed < 20) await sleep(2);
    const s = await openStream(hub, claims, { since, label: 'r101 (resumed during commits)' });
    const atWelcome = committed;
    await producer;
    const m = await streamBarrier(database, T, [s], { timeout: 30_000 });
    const exp = await assertExactStream(database, T, s, { after: since, upto: m.seq });
    const liveProduced = 500 - atWelcome;
    console.log(`# concurrent resume: ${exp.seqs.length} events; producer had committed ${atWelcome}/500 when the welcome arrived, welcome.last_seq=${s.welcome.last_seq}`);
    assert.ok(liveProduced > 0, 'setup: the producer finished before the resume; the test did not overlap them');
  } finally {
    await producer.catch(() => {});
    await prod.end();
  }
});

test('resume with since = the last seq the client holds → nothing replayed, live events follow', async () => {
  const T = await database.newTenant('resnone');
  const claims = resident(T, 'r101', '101');
  const s1 = await openStream(hub, claims, { since: 0 });
  await emitEach(T, cycle(MIXED('r101'), 10));
  const m1 = await streamBarrier(database, T, [s1]);
  s1.close();
  await s1.closedWithin();
  const S = await tenantLastSeq(database, T);
  assert.equal(S, m1.seq);
  const s2 = await openStream(hub, claims, { since: S, label: 'r101 (since = last seq)' });
  assert.equal(s2.welcome.last_seq, S, `welcome.last_seq ${s2.welcome.last_seq}, the tenant's newest seq is ${S}`);
  const live = await database.emit(T, 'live', ['unit:101'], {});
  const m2 = await streamBarrier(database, T, [s2]);
  const [{ seq }] = await database.sql('select seq::int as seq from hub.outbox where id = $1', [live]);
  assert.deepEqual(s2.seqs, [seq, m2.seq], 'replayed something although the client had everything');
  assert.deepEqual(s2.framesOf('error'), []);
  s2.close();
});

for (const header of [false, true]) {
  for (const bad of [-1, 'abc', 1.5]) {
    test(`since = ${JSON.stringify(bad)} (${header ? '?since= with header auth' : 'auth frame'}) → bad_request, still welcomed, no replay`, async () => {
      const T = await database.newTenant('resbad');
      await emitEach(T, cycle([['all'], ['unit:101']], 6));
      const s = await openStream(hub, resident(T, 'r101', '101'), { sinceRaw: bad, header, label: `since=${JSON.stringify(bad)}` });
      const err = await s.frame((f) => f?.type === 'error');
      assert.equal(err.frame.code, 'bad_request', `expected bad_request, got ${JSON.stringify(err.frame)}`);
      assert.ok(typeof err.frame.message === 'string' && err.frame.message.length > 0);
      const m = await streamBarrier(database, T, [s]);
      assert.deepEqual(s.seqs, [m.seq], `events replayed after an invalid since: ${s.describe()}`);
      assert.equal(s.framesOf('error').length, 1, `errors: ${JSON.stringify(s.framesOf('error'))}`);
      s.close();
    });
  }
}

test("replay only holds the client's rooms: a resident does not get another unit's visitor, a guard gets no visitors", async () => {
  const T = await database.newTenant('resrooms');
  const r101 = await database.insertUser(T, { name: 'R101', role: 'RESIDENT', unitId: '101' });
  const r202 = await database.insertUser(T, { name: 'R202', role: 'RESIDENT', unitId: '202' });
  const g = await database.insertUser(T, { name: 'G', role: 'GUARD' });
  // Everything happens while nobody is connected.
  for (let i = 0; i < 3; i++) {
    await database.insertVisitor(T, { unitId: '101', name: `Visita 101 #${i}` });
    await database.insertVisitor(T, { unitId: '202', name: `Visita 202 #${i}` });
  }
  for (const u of [r101, r202]) {
    const p = await database.insertPayment(T, { userId: u, status: 'PENDING' });
    await database.setPaymentStatus(T, p, 'COMPLETED');
  }
  await database.insertPanic(T, { userId: r202, unitId: '202', message: 'Ayuda' });
  await database.insertAnnouncement(T, { title: 'Evacuación', body: 'Ya', type: 'emergency' });

  const c101 = await openStream(hub, { sub: r101, tenant: T, role: 'resident', units: ['101'] }, { since: 0, label: 'resident 101' });
  const c202 = await openStream(hub, { sub: r202, tenant: T, role: 'resident', units: ['202'] }, { since: 0, label: 'resident 202', header: true });
  const cg = await openStream(hub, { sub: g, tenant: T, role: 'guard' }, { since: 0, label: 'guard' });
  const m = await streamBarrier(database, T, [c101, c202, cg]);
  for (const s of [c101, c202, cg]) await assertExactStream(database, T, s, { after: 0, upto: m.seq });

  const kindsOf = async (s) => (await database.sql('select kind, rooms from hub.outbox where id = any($1::bigint[]) order by seq', [s.ids])).map((r) => `${r.kind}:${r.rooms.join('+')}`);
  const k101 = await kindsOf(c101);
  const k202 = await kindsOf(c202);
  const kg = await kindsOf(cg);
  assert.deepEqual(k101.filter((k) => k.startsWith('visitor')), ['visitor:unit:101', 'visitor:unit:101', 'visitor:unit:101'], `resident 101 got: ${k101}`);
  assert.deepEqual(k202.filter((k) => k.startsWith('visitor')), ['visitor:unit:202', 'visitor:unit:202', 'visitor:unit:202'], `resident 202 got: ${k202}`);
  assert.deepEqual(kg.filter((k) => k.startsWith('visitor')), [], `the guard got visitors: ${kg}`);
  assert.equal(k101.filter((k) => k.startsWith('payment')).length, 1, `resident 101 payments: ${k101}`);
  assert.equal(kg.filter((k) => k.startsWith('panic')).length, 1, `guard panics: ${kg}`);
  for (const k of [k101, k202]) assert.deepEqual(k.filter((x) => x.startsWith('panic')), [], `a resident got the panic: ${k}`);
  for (const k of [k101, k202, kg]) assert.equal(k.filter((x) => x.startsWith('announcement')).length, 1);
});

test('resume_gap: resuming from before the retention horizon → error resume_gap naming oldest_seq, then the events after it', async () => {
  const cl = await privateCluster('armonia-dur-gap-');
  clusters.push(cl);
  const gapHub = await startHub({ databaseUrl: cl.url, env: { HUB_RETENTION_S: 1, HUB_PURGE_INTERVAL_MS: 200 } });
  const T = await cl.db.newTenant('gap');
  await emitMany(cl.db, T, 10, { rooms: ['all'], kind: 'old' });
  const maxA = await tenantLastSeq(cl.db, T);
  // The purge is what is awaited: poll the horizon until it covers the old events.
  await within(15_000, `hub.outbox_horizon.purged_through reaching ${maxA}`, (async () => {
    while ((await purgedThrough(cl.db)) < maxA) await sleep(100);
  })());
  const horizon = await purgedThrough(cl.db);
  assert.equal(horizon, maxA, 'the purge went past the only events there were');
  const [{ n: left }] = await cl.db.sql('select count(*)::int as n from hub.outbox where tenant = $1', [T]);
  assert.equal(left, 0, 'rows at or below the horizon are still in hub.outbox');

  // New events, well inside the 1 s window when the clients resume at once.
  await emitMany(cl.db, T, 5, { rooms: ['all'], kind: 'fresh' });
  const B = await expectedEvents(cl.db, T, ['all'], { after: horizon });
  const claims = resident(T, 'r101', '101');
  const [s0, sh] = await Promise.all([
    openStream(gapHub, claims, { since: 0, label: 'since 0' }),
    openStream(gapHub, claims, { since: horizon, label: `since ${horizon} (= purged_through)` }),
  ]);
  await Promise.all([s0.untilSeq(B.seqs.at(-1)), sh.untilSeq(B.seqs.at(-1))]);

  const gap = s0.framesOf('error');
  assert.equal(gap.length, 1, `since 0: expected one resume_gap error, got ${JSON.stringify(gap)}`);
  assert.equal(gap[0].code, 'resume_gap', JSON.stringify(gap[0]));
  assert.ok(typeof gap[0].message === 'string' && gap[0].message.length > 0);
  assert.ok(Number.isSafeInteger(gap[0].oldest_seq), `oldest_seq: ${JSON.stringify(gap[0])}`);
  assert.ok(gap[0].oldest_seq > maxA && gap[0].oldest_seq <= B.seqs[0], `oldest_seq ${gap[0].oldest_seq} should be in (${maxA}, ${B.seqs[0]}]`);
  const order = s0.frames.map((x) => `${x.frame.type}@${x.at}`);
  assert.deepEqual(order.slice(0, 2), ['welcome@0', 'error@0'], `frames: welcome, then resume_gap, then events; got ${order}`);
  assertSameSeqs('since 0 (after the gap)', s0.seqs, B.seqs);
  assertSameSeqs(`since ${horizon}`, sh.seqs, B.seqs);
  assert.deepEqual(sh.framesOf('error'), [], 'a client resuming exactly at the horizon misses nothing and must not get resume_gap');
});

test('a slow reader (socket paused) during a big replay does not make the hub buffer it all: closed with 4008 or paced', async () => {
  const slowHub = await startHub();
  const T = await database.newTenant('resslow');
  const N = 40_000;
  const PAD = 1000; // ~1.1 kB per frame, ~45 MB of replay in all
  await emitMany(database, T, N, { rooms: ['unit:101'], kind: 'big', payload: PAD });
  const all = await expectedEvents(database, T, ['unit:101']);
  assert.equal(all.seqs.length, N);
  const claims = resident(T, 'r101', '101');
  const base = sampleRss(slowHub.proc.pid).stop().startRssKb;
  const s = await openStream(slowHub, claims, { since: 0, label: 'slow reader' });
  s.pauseReading();
  const rss = sampleRss(slowHub.proc.pid);
  // Observing "the hub does not grow" takes a window of time: 3 s.
  await sleep(3000);
  const during = rss.stop();
  const heldWhilePaused = s.count;
  s.resumeReading();
  await s.until(() => s.closeInfo !== null || s.lastSeq >= all.seqs.at(-1), { timeout: 60_000, closeOk: true, what: 'the whole replay or a close' });
  const growthKb = during.peakRssKb - base;
  let outcome;
  if (s.closeInfo) {
    outcome = `closed ${s.closeInfo.code} after ${s.count} events`;
    assert.equal(s.closeInfo.code, 4008, `a slow reader may only be closed with 4008: ${s.describe()}`);
    // What it got is a prefix of the replay, in order, once; resuming gets the rest.
    assertSameSeqs('slow reader before 4008', s.seqs, all.seqs.slice(0, s.count));
    const s2 = await openStream(slowHub, claims, { since: s.lastSeq, label: 'slow reader, resumed after 4008' });
    const m = await streamBarrier(database, T, [s2], { timeout: 60_000 });
    assertSameSeqs('slow reader, both connections', [...s.seqs, ...s2.seqs], [...all.seqs, m.seq]);
  } else {
    outcome = 'paced (stayed open and got everything)';
    const m = await streamBarrier(database, T, [s], { timeout: 30_000 });
    await assertExactStream(database, T, s, { after: 0, upto: m.seq });
  }
  console.log(`SLOW_READER=${s.closeInfo ? s.closeInfo.code : 'paced'} # ${outcome}; ${heldWhilePaused} events received before/while paused; hub RSS ${base} kB at start, peak ${during.peakRssKb} kB while paused (+${growthKb} kB) for a ${(N * (PAD + 120) / 1e6).toFixed(0)} MB replay`);
  // Bounded: the hub may hold its 1 MiB queue plus a page of rows, not the replay (~45 MB).
  assert.ok(growthKb < (SANITIZED ? 512 : 16) * 1024, `the hub grew by ${growthKb} kB while the reader was paused: it is buffering the replay`);
  await slowHub.stop();
});

test('a large resume (50,000 missed events from one transaction, fresh database) is delivered, each page reading one window of the outbox at most', async () => {
  // A fresh cluster, as a new deployment is: hub.outbox has no planner
  // statistics yet when the bulk lands (autovacuum analyzes it later).
  const cl = await privateCluster('armonia-dur-big-');
  clusters.push(cl);
  const bigHub = await startHub({ databaseUrl: cl.url });
  const T = await cl.db.newTenant('resbig');
  const claims = resident(T, 'r101', '101');
  await emitMany(cl.db, T, 50_000, { rooms: ['unit:101'], kind: 'missed' });
  const all = await expectedEvents(cl.db, T, ['unit:101']);
  // Rows PostgreSQL has read from hub.outbox (its statistics; each backend
  // reports them within about a second of going idle).
  const rowsRead = async () =>
    Number((await cl.db.sql(`select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) as n
                               from pg_stat_user_tables where relid = 'hub.outbox'::regclass`))[0].n);
  const before = await rowsRead();
  const t0 = Date.now();
  const s = await openStream(bigHub, claims, { since: 0, label: 'r101 (50k to catch up)' });
  // Generous: the speed is measured in bench/, not here; this only bounds a
  // stuck replay.
  await s.untilSeq(all.seqs.at(-1), { timeout: SANITIZED ? 240_000 : 90_000 }).catch((err) => {
    err.message += ` — after ${Date.now() - t0} ms the client had ${s.count} of 50,000`;
    throw err;
  });
  const ms = Date.now() - t0;
  // What a page may cost is bounded by design (hub/replay.h): it reads at
  // most one window of REPLAY_WINDOW (20,000) seq numbers to return at most
  // REPLAY_PAGE (500) rows, whatever plan PostgreSQL picks on a table without
  // statistics; one that read every row after the cursor would make the
  // replay quadratic in the events missed. The live reader read each event
  // once more (its reads may be reported late). The replay reads at least
  // the 50,000 events, so wait for those to be reported, then look at the
  // total.
  const pages = Math.ceil(50_000 / 500) + 2;
  const bound = pages * (20_000 + 500) + 2 * 50_000;
  let read = 0;
  await waitFor(async () => (read = (await rowsRead()) - before) >= 50_000, {
    timeout: 30_000,
    what: 'the replay\'s reads in pg_stat_user_tables',
    describe: () => `${read} rows reported so far`,
  });
  console.log(`# large resume: 50,000 events replayed in ${ms} ms (${Math.round(50_000 / (ms / 1000))} events/s), ${read} outbox rows read (bound ${bound})`);
  assert.ok(read <= bound, `the replay of 50,000 events read ${read} outbox rows, more than ${pages} pages of one window each (${bound})`);
  const m = await streamBarrier(cl.db, T, [s]);
  await assertExactStream(cl.db, T, s, { after: 0, upto: m.seq });
  s.close();
  await bigHub.stop();
});
