// durability_faults.test.mjs - single listener queries fail while the
// database connection stays up: cancelled statements, lock timeouts, a
// terminated session in the middle of a burst. Nothing may wait for the next
// notification: every committed event reaches a connected guard once, in seq
// order, soon after the fault ends, and /healthz follows whether the outbox
// can be read (docs/design-seq.md "When a read fails"). And a commit whose
// notification never comes is read within HUB_OUTBOX_SAFETY_MS.
//
// The faults lock hub.outbox exclusively and set lock_timeout on the hub's
// sessions, so this file runs on a cluster of its own, never the shared
// HUB_PGDIR one. The hub's sessions are told apart by application_name
// ('armonia-hub listener'; a hub older than that is recognised by the
// statements its listener runs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useLifecycle, startHub, waitHealth, runHub } from './lib/harness.mjs';
import {
  useStreams, openStream, streamBarrier, assertExactStream, privateCluster, emitMany, hubMetrics, watchHealth, nowMs, sleep, within,
} from './lib/durability.mjs';

useLifecycle();
useStreams();

// How long the faults last: a scenario's length, not a bound on the hub.
const FAULT_MS = 1500;
// The hub's lock_timeout in the lock scenarios: its reads fail this fast.
const HUB_LOCK_TIMEOUT_MS = 200;
// The promise under test: HUB_OUTBOX_SAFETY_MS (1 s by default) plus a
// read; generous for a loaded machine.
const AFTER_FAULT_BOUND_MS = 5000;
// How long the listener's queries are cancelled in a loop.
const STORM_MS = 5000;
// Every how many panics one has its read cancelled for sure.
const CYCLE_EVERY = 40;

let cl;

before(async () => {
  cl = await privateCluster('armonia-dur-faults-');
});

after(async () => {
  if (cl) await cl.destroy();
});

/** The hub's listener session: pid and what it is doing, or null. */
async function listener() {
  const rows = await cl.db.sql(
    `select pid, state, wait_event_type as wait, query from pg_stat_activity
      where application_name like 'armonia-hub%' and pid <> pg_backend_pid()
        and (application_name = 'armonia-hub listener'
             or query like '%FROM hub.outbox WHERE seq > $1 ORDER BY seq%'
             or query = 'LISTEN hub_outbox')
      order by application_name = 'armonia-hub listener' desc, backend_start desc limit 1`,
  );
  return rows[0] ?? null;
}

/** Polls cond() every 10 ms; rejects naming what after timeout ms. */
async function waitFor(what, cond, timeout = 20_000) {
  const deadline = nowMs() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (nowMs() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await sleep(10);
  }
}

/** The listener session, once it is waiting for a lock on hub.outbox. */
async function listenerWaitingForLock() {
  let seen = null;
  try {
    return await waitFor('the listener waiting for the lock on hub.outbox', async () => {
      const l = (seen = await listener());
      return l && l.state === 'active' && l.wait === 'Lock' ? l : null;
    });
  } catch (err) {
    err.message += `; the listener last seen: ${JSON.stringify(seen)}`;
    throw err;
  }
}

/**
 * Commits one panic for the guards and, in the same instant, takes an
 * exclusive lock on hub.outbox: the lock request queues behind the
 * emitting transaction, so it is granted at its commit, before the read the
 * commit's notification causes. Resolves with {id, unlock()} while the lock
 * is held.
 */
async function panicThenLock(T, data) {
  const e = await cl.db.client();
  const l = await cl.db.client();
  try {
    await e.query('begin');
    const id = await cl.db.emit(T, 'panic', ['role:guard'], data, { priority: 'critical', on: e });
    await l.query('begin');
    const [{ pid }] = (await l.query('select pg_backend_pid() as pid')).rows;
    const locked = l.query('lock table hub.outbox in access exclusive mode');
    await waitFor('the lock request queued behind the emitting transaction', async () => {
      const [r] = await cl.db.sql("select wait_event_type as w from pg_stat_activity where pid = $1", [pid]);
      return r?.w === 'Lock';
    });
    await e.query('commit');
    await locked;
    e.release();
    return {
      id,
      async unlock() {
        await l.query('commit');
        l.release();
      },
    };
  } catch (err) {
    e.release(true);
    l.release(true);
    throw err;
  }
}

/**
 * Emits one panic and cancels the listener's read of it: the read waits on
 * a lock on hub.outbox until pg_cancel_backend() ends it, then the lock
 * goes. Resolves with {id, held}: held is false when no read was seen
 * waiting within waitMs (another cancel got it first, and the hub did not
 * read again meanwhile); the lock goes all the same.
 */
async function cancelHeldRead(T, data, { waitMs = 20_000 } = {}) {
  const p = await panicThenLock(T, data);
  let held = false;
  try {
    const l = await waitFor('the listener waiting for the lock on hub.outbox', async () => {
      const x = await listener();
      return x && x.state === 'active' && x.wait === 'Lock' ? x : null;
    }, waitMs).catch(() => null);
    if (l) {
      await cl.db.sql('select pg_cancel_backend($1)', [l.pid]);
      held = true;
      await waitFor('the cancelled read to end', async () => {
        const x = await listener();
        return x && x.wait !== 'Lock';
      });
    }
  } finally {
    await p.unlock();
  }
  return { id: p.id, held };
}

/**
 * A guard of tenant T connected to hub without a resume, live once a
 * marker event has reached it: the faults below must hit the listener's
 * reads only (a replay that fails on them closes its connection, by design).
 */
async function liveGuard(hub, T) {
  const guard = await openStream(hub, { sub: 'g1', tenant: T, role: 'guard' }, { label: 'guard' });
  await streamBarrier(cl.db, T, [guard]);
  return guard;
}

/** DATABASE_URL of the cluster with lock_timeout set for the hub's sessions only. */
function urlWithLockTimeout(ms) {
  // libpq decodes %20, not '+' (which URLSearchParams would write).
  return `${cl.url}${cl.url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c lock_timeout=${ms}`)}`;
}

test("pg_cancel_backend of the listener's queries in a loop while panics are emitted → every panic reaches the guard once, in seq order", async () => {
  const T = await cl.db.newTenant('cancel');
  const hub = await startHub({ databaseUrl: cl.url });
  try {
    const guard = await liveGuard(hub, T);
    // Two kinds of cancel at once. A loop inside PostgreSQL (a round trip
    // from here per cancel would be slower still) signals the listener every
    // 0.2 ms for STORM_MS, whatever it runs (LISTEN, a page read, its
    // PREPARE); most of its reads take less than that and escape. And every
    // CYCLE_EVERY panics, one whose read surely is cancelled: held on a lock
    // until it is.
    const l0 = await waitFor('the listener session', listener);
    const storm = cl.db.sql(
      `do $$ declare t0 timestamptz := clock_timestamp(); begin
         while clock_timestamp() - t0 < interval '${STORM_MS} milliseconds' loop
           perform pg_cancel_backend(${Number(l0.pid)});
           perform pg_sleep(0.0002);
         end loop; end $$`,
    );
    const t0 = nowMs();
    let emitted = 0;
    let held = 0;
    while (nowMs() - t0 < STORM_MS - 500) {
      if (emitted % CYCLE_EVERY === CYCLE_EVERY - 1) {
        // The storm may cancel this read first; the next notification or
        // the hub's retry reads again (HUB_OUTBOX_SAFETY_MS is 1 s).
        if ((await cancelHeldRead(T, { i: emitted++ }, { waitMs: 3000 })).held) held++;
      } else {
        await cl.db.emit(T, 'panic', ['role:guard'], { i: emitted++ }, { priority: 'critical' });
      }
      await sleep(3);
    }
    await storm;
    // The last panic's read is cancelled too; no notification follows.
    const last = await cancelHeldRead(T, { last: true });
    assert.ok(last.held, "the last panic's read was never seen waiting on the lock");
    held++;
    const failed = (await hubMetrics(hub.port)).armonia_outbox_read_failures_total;
    console.log(`# ${emitted + 1} panics, ${held} of their reads cancelled while held on a lock, the listener (pid ${l0.pid}) signalled every 0.2 ms for ${STORM_MS} ms; failed listener queries counted: ${failed}`);
    await guard.untilId(last.id, { timeout: 15_000, what: `the last panic (id ${last.id}), its read cancelled` });
    const [row] = await cl.db.sql('select seq::text as s from hub.outbox where id = $1', [last.id]);
    await assertExactStream(cl.db, T, guard, { after: 0, upto: Number(row.s) });
    assert.equal(guard.duplicates, 0, guard.describe());
    assert.equal(guard.outOfOrder, 0, guard.describe());
    const m = await hubMetrics(hub.port);
    assert.ok(m.armonia_outbox_read_failures_total >= 1, `no failed read counted: ${JSON.stringify(m)}`);
    await waitHealth(hub.port, 200, 10_000);
  } finally {
    await hub.stop();
  }
});

test('reads fail on lock_timeout for a while, then the lock goes → the panic emitted during the fault arrives within 5 s, with no further notification', async () => {
  const T = await cl.db.newTenant('locktimeout');
  const hub = await startHub({ databaseUrl: urlWithLockTimeout(HUB_LOCK_TIMEOUT_MS) });
  try {
    const guard = await liveGuard(hub, T);
    const health = watchHealth(hub.port);
    let endedAt;
    let fault;
    try {
      fault = await panicThenLock(T, { during: 'fault' });
      try {
        // The notification's read waits for the lock and fails after
        // lock_timeout; the fault goes on for FAULT_MS.
        await listenerWaitingForLock();
        await sleep(FAULT_MS);
        assert.equal(guard.idSet.has(fault.id), false, 'the panic arrived while hub.outbox was locked');
      } finally {
        await fault.unlock();
        endedAt = nowMs();
      }
      await guard.untilId(fault.id, { timeout: 30_000, what: `the panic emitted during the fault (id ${fault.id})` });
    } finally {
      await health.stop();
    }
    const latency = Math.round(guard.arrivals[guard.ids.indexOf(fault.id)] - endedAt);
    console.log(`FAULT_RECOVERY_MS=${latency} healthz=${health.statuses().join('→')}`);
    assert.ok(latency < AFTER_FAULT_BOUND_MS, `the panic arrived ${latency} ms after the fault ended (bound ${AFTER_FAULT_BOUND_MS} ms)`);
    const m = await hubMetrics(hub.port);
    assert.ok(m.armonia_outbox_read_failures_total >= 1, `no failed read counted: ${JSON.stringify(m)}`);
    assert.ok(health.statuses().includes(503), `/healthz never said 503 while reads failed: ${health.statuses()}`);
    await waitHealth(hub.port, 200, 10_000);
    assert.equal(guard.duplicates, 0, guard.describe());
  } finally {
    await hub.stop();
  }
});

test('the newest-seq read fails at start (hub.outbox locked) → /healthz 503, then 200 once the lock goes, without a reconnection', async () => {
  const l = await cl.db.client();
  let hubP;
  let releasedAt;
  try {
    await l.query('begin');
    await l.query('lock table hub.outbox in access exclusive mode');
    hubP = startHub({ databaseUrl: urlWithLockTimeout(HUB_LOCK_TIMEOUT_MS), healthTimeout: 60_000 });
    hubP.catch(() => {});
    // The hub's first read of the newest seq ran into the lock and failed.
    await waitFor('the newest-seq read failing on the lock', async () => {
      const [r] = await cl.db.sql(
        `select 1 from pg_stat_activity where application_name like 'armonia-hub%'
          and query like 'SELECT coalesce(max(seq), 0) FROM hub.outbox%' and state = 'idle'`,
      );
      return !!r;
    });
    await sleep(FAULT_MS);
  } finally {
    await l.query('commit').catch(() => {});
    l.release();
    releasedAt = nowMs();
  }
  const hub = await within(AFTER_FAULT_BOUND_MS, '/healthz 200 after the lock went', hubP);
  try {
    console.log(`# /healthz 200 ${Math.round(nowMs() - releasedAt)} ms after the lock went`);
    assert.match(hub.logs(), /reading the newest seq failed/, 'the fault did not happen: no failed newest-seq read logged');
    const m = await hubMetrics(hub.port);
    assert.equal(m.armonia_db_reconnects_total, 0, 'the hub reconnected to recover: the fault was meant to leave the connection up');
    // And it delivers.
    const T = await cl.db.newTenant('cursor');
    const guard = await openStream(hub, { sub: 'g1', tenant: T, role: 'guard' }, { label: 'guard' });
    const id = await cl.db.emit(T, 'panic', ['role:guard'], {}, { priority: 'critical' });
    await guard.untilId(id, { timeout: 15_000 });
  } finally {
    await hub.stop();
  }
});

test('pg_terminate_backend of the listener in the middle of a burst larger than HUB_OUTBOX_BATCH → every event arrives once, in order', async () => {
  const T = await cl.db.newTenant('terminate');
  const hub = await startHub({ databaseUrl: cl.url, env: { HUB_OUTBOX_BATCH: 50, HUB_DB_RETRY_MAX_MS: 200 } });
  try {
    const guard = await liveGuard(hub, T);
    const n = 4000;
    const before = guard.count;
    const burst = emitMany(cl.db, T, n, { rooms: ['role:guard'], kind: 'burst' });
    let terminated = 0;
    // Terminate the listener as soon as it reads pages of the burst, and
    // again each time it is back, three times in all.
    while (terminated < 3) {
      const l = await waitFor('the listener reading', async () => {
        const x = await listener();
        return x && (terminated > 0 || guard.count > before) ? x : null;
      }, 30_000);
      const [r] = await cl.db.sql('select pg_terminate_backend($1) as ok', [l.pid]);
      if (r.ok) terminated++;
      await waitFor('a new listener session', async () => {
        const x = await listener();
        return x && x.pid !== l.pid;
      }, 30_000);
    }
    const { last } = await burst;
    console.log(`# terminated the listener ${terminated} times; ${guard.count - before} of ${n} events had arrived by then`);
    await guard.untilId(last, { timeout: 60_000, what: `the burst's last event (id ${last})` });
    const [row] = await cl.db.sql('select seq::text as s from hub.outbox where id = $1', [last]);
    await assertExactStream(cl.db, T, guard, { after: 0, upto: Number(row.s) });
    const m = await hubMetrics(hub.port);
    assert.ok(m.armonia_db_reconnects_total >= 1, `the listener was never lost: ${JSON.stringify(m)}`);
    await waitHealth(hub.port, 200, 15_000);
  } finally {
    await hub.stop();
  }
});

test('an event committed without a notification (as when LISTEN failed) is read within HUB_OUTBOX_SAFETY_MS by the safety net', async () => {
  const T = await cl.db.newTenant('safety');
  const safetyMs = 300;
  const hub = await startHub({ databaseUrl: cl.url, env: { HUB_OUTBOX_SAFETY_MS: safetyMs } });
  try {
    const guard = await openStream(hub, { sub: 'g1', tenant: T, role: 'guard' }, { label: 'guard' });
    // hub.emit() without its pg_notify(): the row alone, numbered at commit.
    const t0 = nowMs();
    const [row] = await cl.db.sql(
      "insert into hub.outbox (tenant, kind, rooms, data, priority) values ($1, 'panic', '{role:guard}', '{}', 'critical') returning id::text as id",
      [T],
    );
    const id = Number(row.id);
    await guard.untilId(id, { timeout: 15_000, what: `the panic committed without a notification (id ${id})` });
    const ms = Math.round(guard.arrivals[guard.ids.indexOf(id)] - t0);
    console.log(`SAFETY_READ_MS=${ms} (HUB_OUTBOX_SAFETY_MS=${safetyMs})`);
    assert.ok(ms < AFTER_FAULT_BOUND_MS, `read ${ms} ms after its commit (HUB_OUTBOX_SAFETY_MS=${safetyMs}, bound ${AFTER_FAULT_BOUND_MS} ms)`);
    const m = await hubMetrics(hub.port);
    assert.ok(m.armonia_outbox_safety_reads_total >= 1, `no safety-net read counted: ${JSON.stringify(m)}`);
  } finally {
    await hub.stop();
  }
});

test('HUB_OUTBOX_SAFETY_MS of 0, or not a number: exit 2 naming the variable and the range', async () => {
  for (const bad of ['0', '9', 'soon']) {
    const r = await runHub({ env: { DATABASE_URL: cl.url, JWT_SECRET_KEY: 'x'.repeat(32), HUB_OUTBOX_SAFETY_MS: bad } });
    assert.equal(r.code, 2, `HUB_OUTBOX_SAFETY_MS=${bad}: expected exit 2, got ${JSON.stringify({ code: r.code, signal: r.signal, timedOut: r.timedOut })}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /HUB_OUTBOX_SAFETY_MS: expected an integer from 10 to 600000/, `HUB_OUTBOX_SAFETY_MS=${bad}: ${r.stderr}`);
  }
});
