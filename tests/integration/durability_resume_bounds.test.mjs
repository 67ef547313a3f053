// durability_resume_bounds.test.mjs - resume at the edges: events as big as
// hub.emit() allows (a replay page must be bounded by bytes, not only rows,
// and always make progress), a single event bigger than the queue bound,
// and a since beyond the newest seq (docs/protocol.md "Resume", a since
// beyond the newest seq: error resume_gap with newest_seq, then live, never silence).
//
// Every test uses a fresh tenant and a hub of its own, so the hub's
// counters (armonia_catchups_total) belong to the test.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useLifecycle, startHub, db, mintToken } from './lib/harness.mjs';
import {
  useStreams, openStream, Stream, streamBarrier, expectedEvents, assertSameSeqs, assertExactStream,
  emitMany, tenantLastSeq, hubMetrics, SANITIZED,
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

/**
 * Opens a connection and sends the auth frame as raw text (so a since
 * beyond what a JS number holds exactly can be written); resolves with the
 * Stream once welcomed.
 */
async function openRawAuth(hub, claims, authText, label) {
  const token = mintToken(hub.secret, claims);
  const ws = new WebSocket(hub.wsUrl, ['armonia.v1.json'], { handshakeTimeout: 5000 });
  const s = new Stream(ws, label);
  await new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      resolve();
    });
  });
  ws.send(authText(token));
  const w = await s.frame((f) => f?.type === 'welcome' || f?.type === 'error', { what: 'welcome' });
  assert.equal(w.frame.type, 'welcome', `${label}: ${JSON.stringify(w.frame)}`);
  s.welcome = w.frame;
  return s;
}

/**
 * Connections resuming with a since beyond the tenant's newest seq: each
 * must get resume_gap naming newest_seq, then every event after
 * welcome.last_seq, live.
 */
async function beyondNewest(T, streams, newest) {
  for (const s of streams) {
    const gap = await s.frame((f) => f?.type === 'error', { timeout: 10_000, what: 'error resume_gap' });
    assert.equal(gap.frame.code, 'resume_gap', JSON.stringify(gap.frame));
    assert.equal(gap.frame.newest_seq, newest, `newest_seq: ${JSON.stringify(gap.frame)}`);
    assert.ok(typeof gap.frame.message === 'string' && gap.frame.message.length > 0);
  }
  const live = await database.emit(T, 'live', ['unit:101'], { after: 'gap' });
  for (const s of streams) await s.untilId(live, { timeout: 10_000 });
  const m = await streamBarrier(database, T, streams);
  for (const s of streams) {
    await assertExactStream(database, T, s, { after: s.welcome.last_seq, upto: m.seq });
    assert.equal(s.framesOf('error').length, 1, `errors: ${JSON.stringify(s.framesOf('error'))}`);
  }
}

test('since = newest seq + 1000 (auth frame) → error resume_gap with newest_seq, then live events', async () => {
  const hub = await startHub();
  const T = await database.newTenant('resahead');
  const claims = resident(T, 'r101', '101');
  await emitMany(database, T, 5, { rooms: ['unit:101'] });
  const newest = await tenantLastSeq(database, T);
  const s = await openStream(hub, claims, { since: newest + 1000, label: `since ${newest + 1000}` });
  assert.equal(s.welcome.last_seq, newest);
  await beyondNewest(T, [s], newest);
  s.close();
  await hub.stop();
});

test('since = 9223372036854775807 (auth frame and ?since=) → error resume_gap with newest_seq, then live events', async () => {
  const hub = await startHub();
  const T = await database.newTenant('resmax');
  const claims = resident(T, 'r101', '101');
  await emitMany(database, T, 3, { rooms: ['unit:101'] });
  const newest = await tenantLastSeq(database, T);
  const inFrame = await openRawAuth(hub, claims, (token) => `{"type":"auth","token":"${token}","since":9223372036854775807}`, 'since 2^63-1 (auth frame)');
  const inUrl = await openStream(hub, claims, { sinceRaw: '9223372036854775807', header: true, label: 'since 2^63-1 (?since=)' });
  for (const s of [inFrame, inUrl]) assert.equal(s.welcome.last_seq, newest);
  await beyondNewest(T, [inFrame, inUrl], newest);
  inFrame.close();
  inUrl.close();
  await hub.stop();
});

test('since = the newest seq exactly → no resume_gap, live events follow (the boundary of "beyond")', async () => {
  const hub = await startHub();
  const T = await database.newTenant('resedge');
  const claims = resident(T, 'r101', '101');
  await emitMany(database, T, 3, { rooms: ['unit:101'] });
  const newest = await tenantLastSeq(database, T);
  const s = await openStream(hub, claims, { since: newest, label: `since ${newest} (newest)` });
  const m = await streamBarrier(database, T, [s], { timeout: SANITIZED ? 30_000 : 20_000 });
  assert.deepEqual(s.seqs, [m.seq]);
  assert.deepEqual(s.framesOf('error'), []);
  s.close();
  await hub.stop();
});
