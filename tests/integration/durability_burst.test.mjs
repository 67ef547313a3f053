// durability_burst.test.mjs - large and concurrent bursts: 100,000 events
// in one transaction, 100 producers committing at once, rolled-back
// producers among them. Every event reaches the client once, in seq order;
// the hub's memory stays bounded (docs/protocol.md "Events"; docs/design-seq.md).
//
// Runs on a cluster of its own: 200,000+ events in the shared cluster would
// make every other test file's hub read them too, and the RSS measured here
// should be this hub's work only.
//
// The 100k burst runs twice. With the default HUB_MAX_QUEUE_BYTES (1 MiB)
// the client must simply get everything (a local client reading as fast
// as it can is not the slow consumer 4008 is for); should the hub close it
// with 4008 anyway, the test still checks that resuming recovers the rest
// exactly, then fails naming the 4008. The second run raises the queue
// bound to 64 MiB (BURST_QUEUE_BYTES) so that delivery completes whatever
// the relative speed of hub and client, and measures the hub's memory.
//
// The memory bound: PEAK_RSS_KB (the hub's VmHWM at the end of the burst)
// must stay under 200 MB. Legitimately the hub needs its idle size (~11 MB)
// plus at most one connection queue (64 MiB here) plus a page of outbox
// rows and their frames (HUB_OUTBOX_BATCH = 500 rows, well under 5 MB):
// about 80 MB in the worst case. Keeping per-event state for the whole
// burst beyond that (100,000 events of ~1 KB of rows, frames and
// bookkeeping) would go past 200 MB; and 200 MB leaves room for ASan builds,
// whose shadow memory and quarantine inflate RSS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { useLifecycle, startHub } from './lib/harness.mjs';
import {
  useStreams, openStream, streamBarrier, assertExactStream, privateCluster, burstWithRss, nowMs, within, emitMany,
  expectedEvents, assertSameSeqs,
  SANITIZED,
} from './lib/durability.mjs';

useLifecycle();
useStreams();

const PEAK_LIMIT_KB = (SANITIZED ? 1024 : 200) * 1024;
let cl, hub;

before(async () => {
  cl = await privateCluster('armonia-dur-burst-');
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

const resident = (T) => ({ sub: 'r101', tenant: T, role: 'resident', units: ['101'] });

const BURST_QUEUE_BYTES = 64 * 1024 * 1024;

test('one transaction of 100,000 events (one SELECT hub.emit() … FROM generate_series statement), default queue bound → the client gets all, in seq order, once', async () => {
  const T = await cl.db.newTenant('burst');
  const s = await openStream(hub, resident(T), { since: 0, label: 'resident 101' });
  const { last } = await emitMany(cl.db, T, 100_000, { rooms: ['unit:101'], kind: 'burst', payload: 100 });
  await s.until(() => s.idSet.has(last) || s.closeInfo !== null, { timeout: 60_000, closeOk: true, what: 'the whole burst or a close' });
  if (s.closeInfo) {
    // Closed: what it got must be a prefix; a resume must bring the rest, once.
    const all = await expectedEvents(cl.db, T, s.welcome.rooms);
    assertSameSeqs(`${s.label} before the close`, s.seqs, all.seqs.slice(0, s.count));
    // (Bounded to 25 s so the file stays within its time budget.)
    const s2 = await openStream(hub, resident(T), { since: s.lastSeq, label: 'resident 101, resumed' });
    let resumed;
    try {
      const m = await streamBarrier(cl.db, T, [s2], { timeout: 25_000 });
      await assertExactStream(cl.db, T, s2, { after: 0, upto: m.seq, got: [...s.seqs, ...s2.seqs] });
      resumed = `resuming recovered the other ${s2.count - 1} exactly once`;
    } catch (err) {
      if (err.code === 'ERR_ASSERTION') throw err;
      resumed = `resuming had recovered only ${s2.count} more within 25 s (${err.message.slice(0, 80)})`;
    }
    console.log(`BURST_DEFAULT_QUEUE=${s.closeInfo.code} # closed '${s.closeInfo.reason}' after ${s.count} of 100000 events; ${resumed}`);
    assert.fail(`the client was closed with ${s.closeInfo.code} '${s.closeInfo.reason}' after ${s.count} of 100,000 events of one transaction (HUB_MAX_QUEUE_BYTES default 1 MiB); ${resumed}`);
  }
  const m = await streamBarrier(cl.db, T, [s]);
  const exp = await assertExactStream(cl.db, T, s, { after: 0, upto: m.seq });
  assert.equal(exp.seqs.length, 100_001);
  console.log('BURST_DEFAULT_QUEUE=ok # all 100000 delivered on one connection');
  s.close();
});

test(`100,000 events in one transaction with HUB_MAX_QUEUE_BYTES=${BURST_QUEUE_BYTES}: all delivered once, in order; hub peak RSS under 200 MB (PEAK_RSS_KB)`, async () => {
  const bigHub = await startHub({ databaseUrl: cl.url, env: { HUB_MAX_QUEUE_BYTES: BURST_QUEUE_BYTES } });
  const T = await cl.db.newTenant('burstrss');
  const s = await openStream(bigHub, resident(T), { since: 0, label: 'resident 101' });
  const b = await burstWithRss(cl.db, bigHub, s, T, { n: 100_000, rooms: ['unit:101'], payload: 100, timeout: 60_000 });
  const m = await streamBarrier(cl.db, T, [s]);
  const exp = await assertExactStream(cl.db, T, s, { after: 0, upto: m.seq });
  assert.equal(exp.seqs.length, 100_001);
  console.log(`PEAK_RSS_KB=${b.hwmKb} vmrss_sampled_peak_kb=${b.peakRssKb} before_burst_kb=${b.startRssKb} growth_kb=${b.hwmKb - b.startRssKb} commit_ms=${b.commitMs} delivered_all_ms=${b.deliverMs} queue_bytes=${BURST_QUEUE_BYTES}`);
  assert.equal(s.closeInfo, null, `the client was closed: ${s.describe()}`);
  assert.ok(b.hwmKb < PEAK_LIMIT_KB, `hub peak RSS ${b.hwmKb} kB over ${PEAK_LIMIT_KB} kB`);
  s.close();
  await bigHub.stop();
});

/**
 * n producers, each its own connection and transaction, all open at once:
 * each emits `rounds` statements of `per` events (the rounds interleave, so
 * ids interleave across transactions), then every transaction ends at the
 * same moment in a shuffled order: commit, or for decide(i) = 'rollback' /
 * 'gap' a rollback (after SET CONSTRAINTS ALL IMMEDIATE for 'gap', so its
 * seqs are drawn and never used). Resolves with {committedIds, abortedIds,
 * overlapOk}.
 */
async function producers(T, { n, rounds, per, rooms, decide = () => 'commit' }) {
  const clients = [];
  try {
    for (let i = 0; i < n; i++) {
      const c = new pg.Client({ connectionString: cl.url });
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.connect()));
    await Promise.all(clients.map((c) => c.query('begin')));
    const t0 = nowMs();
    const ids = clients.map(() => []);
    let lastEmitDone = 0;
    for (let r = 0; r < rounds; r++) {
      await Promise.all(clients.map(async (c, i) => {
        const res = await c.query(
          `select hub.emit($1, 'load', $2::text[], jsonb_build_object('p', $3::int, 'r', $4::int, 'k', k))::text as id from generate_series(1, $5) k`,
          [T, rooms(i, r), i, r, per],
        );
        for (const row of res.rows) ids[i].push(Number(row.id));
      }));
      lastEmitDone = nowMs();
    }
    const order = clients.map((_, i) => i).sort(() => Math.random() - 0.5);
    const firstEndAt = nowMs();
    await Promise.all(order.map(async (i) => {
      const how = decide(i);
      const c = clients[i];
      if (how === 'commit') await c.query('commit');
      else {
        if (how === 'gap') await c.query('set constraints all immediate');
        await c.query('rollback');
      }
    }));
    const endedAt = nowMs();
    const committedIds = [];
    const abortedIds = [];
    for (let i = 0; i < n; i++) (decide(i) === 'commit' ? committedIds : abortedIds).push(...ids[i]);
    // Every transaction had emitted everything before the first one ended: they all overlap.
    return { committedIds, abortedIds, overlapOk: lastEmitDone <= firstEndAt, endedAt, emitMs: Math.round(lastEmitDone - t0) };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}

test('100 concurrent producers (separate connections, all transactions open at once) × 1,000 events → all 100,000 delivered once, in seq order', async () => {
  const T = await cl.db.newTenant('conc');
  const s = await openStream(hub, resident(T), { since: 0, label: 'resident 101' });
  const roomsOf = (i, r) => [['unit:101'], ['all'], ['user:r101'], ['unit:101', 'all']][(i + r) % 4];
  const t0 = nowMs();
  const p = await producers(T, { n: 100, rounds: 10, per: 100, rooms: roomsOf });
  assert.ok(p.overlapOk, 'setup: the transactions did not all overlap');
  assert.equal(p.committedIds.length, 100_000);
  const [{ n }] = await cl.db.sql('select count(*)::int as n from hub.outbox where tenant = $1 and seq is not null', [T]);
  assert.equal(n, 100_000, 'not every committed event has a seq');
  const m = await streamBarrier(cl.db, T, [s], { timeout: 60_000 });
  const deliveredAt = nowMs();
  const exp = await assertExactStream(cl.db, T, s, { after: 0, upto: m.seq });
  assert.equal(exp.seqs.length, 100_001);
  // seq is commit order: each transaction's events are one contiguous run of seqs.
  const runs = await cl.db.sql(
    `select count(*)::int as runs from (
       select data->>'p' as p, seq - row_number() over (partition by data->>'p' order by seq) as grp
         from hub.outbox where tenant = $1 and kind = 'load') x group by p, grp`,
    [T],
  );
  console.log(`# 100 producers: emitting took ${p.emitMs} ms; all 100,000 delivered ${Math.round(deliveredAt - p.endedAt)} ms after the last COMMIT returned (${Math.round(deliveredAt - t0)} ms after the start); ${runs.length} contiguous seq runs (one per transaction expected)`);
  assert.equal(runs.length, 100, 'a transaction\'s events are not one contiguous block of seq');
  s.close();
});

test('rolled-back producers interleaved (every 10th transaction rolls back, half of them after drawing seqs) leave no trace and no stall', async () => {
  const T = await cl.db.newTenant('rollb');
  const s = await openStream(hub, resident(T), { since: 0, label: 'resident 101' });
  const decide = (i) => (i % 10 === 9 ? (i % 20 === 9 ? 'rollback' : 'gap') : 'commit');
  const p = await producers(T, { n: 100, rounds: 4, per: 50, rooms: (i) => (i % 2 ? ['unit:101'] : ['all']), decide });
  assert.ok(p.overlapOk, 'setup: the transactions did not all overlap');
  assert.equal(p.abortedIds.length, 10 * 200);
  assert.equal(p.committedIds.length, 90 * 200);
  const [{ n: traces }] = await cl.db.sql('select count(*)::int as n from hub.outbox where id = any($1::bigint[])', [p.abortedIds]);
  assert.equal(traces, 0, 'rolled-back events are in hub.outbox');
  const t0 = nowMs();
  const m = await within(20_000, 'the barrier after the rollbacks (a stall)', streamBarrier(cl.db, T, [s], { timeout: 20_000 }));
  const exp = await assertExactStream(cl.db, T, s, { after: 0, upto: m.seq });
  assert.equal(exp.seqs.length, 90 * 200 + 1);
  const aborted = new Set(p.abortedIds);
  assert.equal(s.ids.filter((id) => aborted.has(id)).length, 0, 'the client got rolled-back events');
  const committed = new Set(p.committedIds);
  assert.equal(s.ids.filter((id) => committed.has(id)).length, 18_000);
  const [{ gaps }] = await cl.db.sql(
    `select count(*)::int as gaps from (select seq - lag(seq) over (order by seq) as d from hub.outbox where tenant = $1) x where d > 1`,
    [T],
  );
  console.log(`# rollbacks: 18,000 committed events delivered, barrier ${Math.round(nowMs() - t0)} ms after the last transaction ended; ${gaps} gaps in this tenant's seq`);
  s.close();
});
