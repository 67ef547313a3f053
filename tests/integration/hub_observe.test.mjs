// hub_observe.test.mjs - what an operator watches (README "Watching it"):
// HUB_LOG_FORMAT=json lines, each /metrics family added for operations
// (refusals, closes, replays and resume gaps, fallback outcomes, circuit
// state, provider and delivery latency histograms, purged delivery rows)
// moving when the thing it counts happens, and the delivery log's retention
// (HUB_DELIVERY_RETENTION_S).
//
// Own cluster with FCM, Twilio and SMTP stand-ins (lib/fallback.mjs): the
// retention test purges the outbox and the delivery log, which a shared
// cluster's other files would feel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useFallbackFile, uid, waitFor } from './lib/fallback.mjs';
import { login, connect, mintToken, httpGet, expectError, expectUnauthorized, sleep, sourceDir, freePort } from './lib/harness.mjs';

const fx = useFallbackFile('observe', async () => {
  await fx.setPolicy('visitor', { ackTimeoutMs: 200, fallback: ['push'] });
});

/** Every series of hub's /metrics as a map "name{labels}" → number. */
async function scrape(hub) {
  const r = await httpGet(hub.port, '/metrics');
  assert.equal(r.status, 200);
  const m = new Map();
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    m.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return m;
}

/** Polls until every one of series has grown by at least 1 from base (a
 * scrape taken before the action); returns the newest scrape. */
async function grows(hub, base, ...series) {
  for (const name of series) assert.ok(base.has(name), `/metrics has no series ${name}`);
  let now;
  await waitFor(async () => {
    now = await scrape(hub);
    return series.every((name) => now.get(name) >= base.get(name) + 1);
  }, {
    timeout: 10_000,
    what: `${series.join(', ')} to grow`,
    describe: () => series.map((name) => `${name} ${base.get(name)} → ${now?.get(name)}`).join('; '),
  });
  return now;
}

/** The err| lines of a hub's output. */
const errLines = (hub) => hub.output.filter((l) => l.startsWith('err| ')).map((l) => l.slice(5));

test('HUB_LOG_FORMAT=json: every line is one JSON object with time, level, module and message; fields carry the details, never a token', async () => {
  const hub = await fx.startHub({ env: { HUB_LOG_FORMAT: 'json' } });
  const tenant = await fx.newTenant('obsjson');
  const forged = mintToken('not-the-secret', { sub: 'intruder', tenant, role: 'guard' });
  const bad = await connect(hub.wsUrl, { token: forged, label: 'forged' });
  await expectUnauthorized(bad);
  const ok = await login(hub, { sub: 'g-json', tenant, role: 'guard' });
  ok.close();
  await waitFor(() => errLines(hub).some((l) => l.includes('auth failure')), { what: 'the auth failure line' });
  const stopped = await hub.stop();
  assert.equal(stopped.code, 0, hub.logs());

  const lines = errLines(hub).filter((l) => l.trim() !== '');
  assert.ok(lines.length >= 3, `too few lines to judge:\n${hub.logs()}`);
  const levels = new Set(['error', 'warn', 'info', 'debug']);
  for (const l of lines) {
    let o;
    assert.doesNotThrow(() => (o = JSON.parse(l)), `not a JSON line: ${l}`);
    assert.equal(typeof o, 'object');
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, l);
    assert.ok(levels.has(o.level), l);
    assert.equal(typeof o.module, 'string', l);
    assert.equal(typeof o.message, 'string', l);
    assert.ok(!l.includes(forged) && !l.includes(forged.split('.')[2]), `a token reached the log: ${l}`);
  }
  const failure = lines.map((l) => JSON.parse(l)).find((o) => o.message.startsWith('auth failure'));
  assert.ok(failure, lines.join('\n'));
  assert.equal(failure.module, 'session');
  assert.equal(failure.fields.peer, '127.0.0.1');
  assert.equal(typeof failure.fields.reason, 'string');
  assert.ok(failure.fields.reason.length > 0);
  assert.equal(typeof failure.fields.session, 'string');
});

test('/metrics: refusals, closes, replays, resume gaps and delivery latency move when they happen', async () => {
  const hub = await fx.startHub({ env: { HUB_ALLOWED_ORIGINS: 'https://app.armonia.test' } });
  const tenant = await fx.newTenant('obsmetrics');
  let m = await scrape(hub);

  // Refusals: a forged token (and its 4001 close), a forbidden room, a foreign origin.
  const bad = await connect(hub.wsUrl, { token: mintToken('wrong', { sub: 'x', tenant, role: 'guard' }) });
  await expectUnauthorized(bad);
  m = await grows(hub, m, 'armonia_refusals_total{cause="unauthorized"}', 'armonia_closes_total{by="hub",code="4001"}');
  const resident = await login(hub, { sub: 'r-obs', tenant, role: 'resident', units: ['101'] });
  resident.send({ type: 'subscribe', room: 'role:guard', ref: 'f' });
  await expectError(resident, 'forbidden');
  m = await grows(hub, m, 'armonia_refusals_total{cause="forbidden"}');
  await assert.rejects(
    connect(hub.wsUrl, { token: mintToken(hub.secret, { sub: 'o', tenant, role: 'guard' }), headers: { Origin: 'https://evil.test' } }),
    (err) => err.statusCode === 403,
  );
  m = await grows(hub, m, 'armonia_refusals_total{cause="origin"}');

  // Closes by the client: a normal close, and a socket dropped without one.
  const leaving = await login(hub, { sub: 'r-leave', tenant, role: 'resident', units: ['101'] });
  leaving.close(1000);
  m = await grows(hub, m, 'armonia_closes_total{by="client",code="1000"}');
  const vanishing = await login(hub, { sub: 'r-vanish', tenant, role: 'resident', units: ['101'] });
  vanishing.terminate();
  m = await grows(hub, m, 'armonia_closes_total{by="client",code="none"}');

  // A live event to a connected client: one observation of commit → socket.
  const id = await fx.db.emit(tenant, 'notice', ['all'], { n: 1 });
  const e = await resident.next({ type: 'event', where: (f) => f.id === id });
  m = await grows(hub, m, 'armonia_delivery_latency_seconds_count');
  const inf = m.get('armonia_delivery_latency_seconds_bucket{le="+Inf"}');
  assert.equal(inf, m.get('armonia_delivery_latency_seconds_count'), 'the +Inf bucket is the count');
  assert.ok(m.get('armonia_delivery_latency_seconds_sum') >= 0);

  // A resume from before that event replays it; one from beyond the newest seq is a gap.
  const back = await login(hub, { sub: 'r-back', tenant, role: 'resident', units: ['101'] }, { since: e.seq - 1 });
  await back.next({ type: 'event', where: (f) => f.id === id });
  m = await grows(hub, m, 'armonia_replays_total', 'armonia_replayed_events_total');
  const ahead = await login(hub, { sub: 'r-ahead', tenant, role: 'resident', units: ['101'] }, { since: e.seq + 1_000_000 });
  await expectError(ahead, 'resume_gap');
  m = await grows(hub, m, 'armonia_resume_gaps_total{why="ahead"}');

  // Past retention: the outbox emptied (this file's own cluster), a resume from seq 0 is a gap.
  await fx.db.sql(`select hub.purge_outbox('0 seconds', 100000)`);
  const old = await login(hub, { sub: 'r-old', tenant, role: 'resident', units: ['101'] }, { since: 0 });
  await expectError(old, 'resume_gap');
  await grows(hub, m, 'armonia_resume_gaps_total{why="retention"}');
  await hub.stop();
});

test('/metrics: fallback outcomes by channel, the provider latency histogram and the circuit state', async () => {
  const hub = await fx.startHub({ channels: ['push'], env: { HUB_BREAKER_THRESHOLD: 1, HUB_BREAKER_COOLDOWN_MS: 60_000, HUB_FALLBACK_MAX_ATTEMPTS: 5 } });
  const tenant = await fx.newTenant('obsfb');
  let m = await scrape(hub);
  assert.equal(m.get('armonia_provider_circuit_state{provider="fcm",channel="push"}'), 0);
  assert.equal(m.get('armonia_provider_circuit_state{provider="twilio",channel="sms"}'), undefined,
    'an unconfigured provider has no circuit series');

  const unitId = `O${uid(3)}`;
  const resident = await fx.addUser(tenant, { id: `res-${uid()}`, unitId, deviceToken: `tok-${uid(8)}` });
  await fx.db.insertVisitor(tenant, { unitId, name: 'Ana Gómez' });
  const visit = await fx.lastEvent(tenant, 'visitor');
  const push = await fx.waitDelivery(visit.id, resident.id, 'push', { timeout: 20_000 });
  assert.equal(push.status, 'sent', JSON.stringify(push));
  m = await grows(hub, m, 'armonia_fallback_deliveries_total{channel="push",outcome="sent"}',
    'armonia_provider_request_duration_seconds_count{provider="fcm"}');
  assert.equal(m.get('armonia_provider_request_duration_seconds_bucket{provider="fcm",le="+Inf"}'),
    m.get('armonia_provider_request_duration_seconds_count{provider="fcm"}'));
  assert.equal(m.get('armonia_provider_request_duration_seconds_count{provider="smtp"}'), 0);

  // FCM fails: the first failure opens the circuit (threshold 1), the row is retried.
  fx.fcm.setMode('fail500');
  try {
    await fx.db.insertVisitor(tenant, { unitId, name: 'Luis Mora' });
    m = await grows(hub, m, 'armonia_fallback_deliveries_total{channel="push",outcome="retry"}');
    await waitFor(async () => (await scrape(hub)).get('armonia_provider_circuit_state{provider="fcm",channel="push"}') === 1,
      { what: 'the FCM circuit to show open' });
  } finally {
    fx.fcm.setMode('ok');
  }
  await hub.stop();
});

test('HUB_DELIVERY_RETENTION_S: settled rows older than it (and than every policy\'s max_age) go in batches; pending rows, young rows and rows of an open job stay', async () => {
  const tenant = await fx.newTenant('obsret');
  const base = 900_000_000 + Math.floor(Math.random() * 1_000_000);
  const rows = [
    // [event_id, user, status, age]
    [base + 1, 'u-old-sent', 'sent', '40 days'],
    [base + 2, 'u-old-failed', 'failed', '40 days'],
    [base + 3, 'u-old-pending', 'pending', '40 days'],
    [base + 4, 'u-young', 'sent', '2 hours'],
    [base + 5, 'u-open-job', 'sent', '40 days'],
  ];
  for (const [ev, user, status, age] of rows) {
    await fx.db.sql(
      `insert into hub.deliveries (event_id, tenant, user_id, channel, status, created_at, updated_at)
       values ($1, $2, $3, 'push', $4, now() - $5::interval, now() - $5::interval)`,
      [ev, tenant, user, status, age],
    );
  }
  await fx.db.sql(
    `insert into hub.fallback_jobs (event_id, phase, tenant, due_at) values ($1, 'fallback', $2, now() + interval '1 hour')`,
    [base + 5, tenant],
  );
  // 1 h asked for; the longest policy's max_age (24 h) wins, so the 2-hour-old row stays.
  const hub = await fx.startHub({ env: { HUB_DELIVERY_RETENTION_S: 3600, HUB_PURGE_INTERVAL_MS: 200 } });
  const left = async () => (await fx.db.sql(
    'select user_id from hub.deliveries where event_id between $1 and $2 order by user_id', [base + 1, base + 5],
  )).map((r) => r.user_id);
  await waitFor(async () => (await left()).length === 3, { what: 'the old settled rows to be purged', describe: async () => JSON.stringify(await left()) });
  await sleep(500); // a few more purges: nothing else goes
  assert.deepEqual(await left(), ['u-old-pending', 'u-open-job', 'u-young']);
  const m = await scrape(hub);
  assert.ok(m.get('armonia_deliveries_purged_total') >= 2, `deliveries_purged_total ${m.get('armonia_deliveries_purged_total')}`);
  await hub.stop();
  await fx.db.sql('delete from hub.fallback_jobs where event_id = $1', [base + 5]);
});

test('HUB_DELIVERY_RETENTION_S=0 keeps the delivery log whole', async () => {
  const tenant = await fx.newTenant('obskeep');
  const ev = 800_000_000 + Math.floor(Math.random() * 1_000_000);
  await fx.db.sql(
    `insert into hub.deliveries (event_id, tenant, user_id, channel, status, created_at)
     values ($1, $2, 'u-kept', 'push', 'sent', now() - interval '400 days')`,
    [ev, tenant],
  );
  const hub = await fx.startHub({ env: { HUB_DELIVERY_RETENTION_S: 0, HUB_PURGE_INTERVAL_MS: 100 } });
  await sleep(1000);
  const [{ n }] = await fx.db.sql('select count(*)::int as n from hub.deliveries where event_id = $1', [ev]);
  assert.equal(n, 1);
  assert.equal((await scrape(hub)).get('armonia_deliveries_purged_total'), 0);
  await hub.stop();
});

test('docs/operations.md lists every metric family /metrics has, with its type', async () => {
  const hub = await fx.startHub({ env: { HUB_WORKERS: 2 } });
  const r = await httpGet(hub.port, '/metrics');
  await hub.stop();
  const doc = readFileSync(join(sourceDir, 'docs', 'operations.md'), 'utf8');
  const types = [...r.body.matchAll(/^# TYPE (armonia_\w+) (\w+)$/gm)];
  assert.ok(types.length > 40, r.body.slice(0, 500));
  for (const [, name, type] of types) {
    assert.match(doc, new RegExp(`^\\| \`${name}\` \\| ${type} \\|`, 'm'), `docs/operations.md has no row for ${name} (${type})`);
  }
});

test('HUB_INTERNAL_PORT: /healthz and /metrics answer there (plain HTTP, every worker\'s figures), 404 on the public port, no WebSocket on it; clients are served on the public one', async () => {
  const internal = await freePort();
  const hub = await fx.startHub({ env: { HUB_INTERNAL_PORT: internal, HUB_WORKERS: 2 } });
  const tenant = await fx.newTenant('obsint');
  assert.equal((await httpGet(internal, '/healthz')).status, 200);
  assert.deepEqual(JSON.parse((await httpGet(internal, '/healthz')).body), { status: 'ok' });
  assert.equal((await httpGet(hub.port, '/healthz')).status, 404);
  assert.equal((await httpGet(hub.port, '/metrics')).status, 404);
  assert.equal((await httpGet(internal, '/elsewhere')).status, 404);
  await assert.rejects(connect(`ws://127.0.0.1:${internal}/ws`, { token: mintToken(hub.secret, { sub: 'x', tenant, role: 'guard' }) }),
    'a WebSocket was let in on the internal port');
  const guard = await login(hub, { sub: 'g-int', tenant, role: 'guard' });
  const id = await fx.db.emit(tenant, 'notice', ['all'], { n: 1 });
  await guard.next({ type: 'event', where: (f) => f.id === id });
  const r = await httpGet(internal, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.body, /^armonia_connections 1$/m);
  assert.match(r.body, /^armonia_workers 2$/m);
  guard.close();
  assert.equal((await hub.stop()).code, 0, hub.logs());
});

test('HUB_INTERNAL_PORT equal to PORT is refused at start (exit 2, naming it)', async () => {
  const hub = fx.startHub({ env: { PORT: 39990, HUB_INTERNAL_PORT: 39990 } });
  await assert.rejects(hub, /HUB_INTERNAL_PORT/);
});
