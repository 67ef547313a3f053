#!/usr/bin/env node
// bench/durability.mjs - recovery time after a database outage and the
// hub's peak RSS during a 100,000-event transaction, each measured RUNS
// times (default 3), printed as a markdown table. Not a test: CI does not
// run it.
//
// Usage (from the repository root, after building):
//
//   cmake --build build/dev -j2
//   HUB_BIN=$PWD/build/dev/armonia-hub node bench/durability.mjs
//
// Optional: RUNS=5, BENCH_QUEUE_BYTES (HUB_MAX_QUEUE_BYTES of the burst hub,
// default 64 MiB: with the default 1 MiB the burst's client is closed with
// 4008, see tests/integration/durability_burst.test.mjs), HUB_SOURCE_DIR.
//
// It starts a private PostgreSQL cluster in a fresh temp directory (through
// scripts/pg.sh), hubs on free loopback ports, and removes all of it at the
// end. What is measured:
//   - recovery (pg.sh restart / pg_terminate_backend): from the moment the
//     database accepts new connections again (polled every 20 ms; for the
//     terminate, from the terminate itself) to the first event a connected
//     client receives after it (a probe event is committed at that moment);
//     HUB_DB_RETRY_MAX_MS=500.
//   - burst: one statement emitting 100,000 events (100-byte payload) to a
//     room one client is in; the hub's VmHWM from /proc after the client
//     got the last one, VmRSS before, and the times to commit and deliver.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
process.env.HUB_SOURCE_DIR ??= join(here, '..');
const lib = join(here, '..', 'tests', 'integration', 'lib');
const { startHub, stopAllHubs } = await import(join(lib, 'hub.mjs'));
const { openStream, privateCluster, outageAndRecovery, burstWithRss, closeAllStreams } = await import(join(lib, 'durability.mjs'));

const RUNS = Number(process.env.RUNS ?? 3);
const QUEUE = Number(process.env.BENCH_QUEUE_BYTES ?? 64 * 1024 * 1024);

if (!process.env.HUB_BIN) {
  console.error('HUB_BIN is not set: HUB_BIN=$PWD/build/dev/armonia-hub node bench/durability.mjs');
  process.exit(2);
}

const rows = [];
const cl = await privateCluster('armonia-bench-dur-');
try {
  // Recovery.
  const hub = await startHub({ databaseUrl: cl.url, env: { HUB_DB_RETRY_MAX_MS: 500 } });
  const T = await cl.db.newTenant('bench');
  const s = await openStream(hub, { sub: 'g', tenant: T, role: 'guard' }, { since: 0 });
  for (const how of ['restart', 'terminate']) {
    for (let i = 1; i <= RUNS; i++) {
      const r = await outageAndRecovery(cl, hub, s, T, { how });
      rows.push({ what: how === 'restart' ? 'recovery after `scripts/pg.sh restart`' : 'recovery after pg_terminate_backend', run: i, value: `${r.recoveryMs} ms`, extra: `healthz ${r.healthStatuses.join('→')}${r.unseenDown ? ', down not observed' : ''}` });
      process.stderr.write(`${how} #${i}: ${r.recoveryMs} ms\n`);
    }
  }
  closeAllStreams();
  await hub.stop();

  // Burst.
  for (let i = 1; i <= RUNS; i++) {
    const h = await startHub({ databaseUrl: cl.url, env: { HUB_MAX_QUEUE_BYTES: QUEUE } });
    const t = await cl.db.newTenant('burst');
    const c = await openStream(h, { sub: 'r', tenant: t, role: 'resident', units: ['101'] }, { since: 0 });
    let value;
    let extra;
    try {
      const b = await burstWithRss(cl.db, h, c, t, { n: 100_000, rooms: ['unit:101'], payload: 100, timeout: 120_000 });
      value = `${b.hwmKb} kB`;
      extra = `VmRSS before ${b.startRssKb} kB; commit ${b.commitMs} ms, all delivered ${b.deliverMs} ms`;
    } catch (err) {
      value = 'failed';
      extra = c.closeInfo ? `client closed ${c.closeInfo.code} after ${c.count} events` : err.message.slice(0, 120);
    }
    rows.push({ what: `peak RSS (VmHWM), 100k burst, queue ${QUEUE} B`, run: i, value, extra });
    process.stderr.write(`burst #${i}: ${value}\n`);
    closeAllStreams();
    await h.stop();
  }
} finally {
  closeAllStreams();
  await stopAllHubs();
  await cl.destroy();
}

console.log(`\nCommand: \`HUB_BIN=${process.env.HUB_BIN} RUNS=${RUNS} BENCH_QUEUE_BYTES=${QUEUE} node bench/durability.mjs\` (${new Date().toISOString()}, ${(await import('node:os')).cpus().length} CPUs)\n`);
console.log('| measurement | run | value | notes |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.what} | ${r.run} | ${r.value} | ${r.extra} |`);
