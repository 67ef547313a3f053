// fallback_devices.test.mjs - a user with several phones (contract v1.1
// "Several devices"; docs/fallback.md "Several devices"): one push per
// device token, one SMS per user, tokens FCM refuses as UNREGISTERED kept in
// hub.unregistered_tokens for the backend, and the delivery key
// (event, user, channel, address) across a hub restart and a schema upgrade.
//
// Own cluster (lib/fallback.mjs). hub.audience is replaced in it, as a
// deployment may do, by one that reads the demo layout's "User" table and a
// table of this file (test_devices): a user with devices there appears once
// per token, the others once with their "User"."deviceToken".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import pg from 'pg';
import { hubDatabaseUrl, psqlBinary, schemaFiles, sourceDir } from './lib/harness.mjs';
import { hubMetrics } from './lib/durability.mjs';
import {
  useFallbackFile, uid, newPhone, sleep, waitFor,
} from './lib/fallback.mjs';

const ACK_TIMEOUT_MS = 1500;
/** Quiet time after a delivery settled in which nothing more may be sent (several ticks and retry delays). */
const SETTLE_MS = 800;

let hub;
let tenant;

const fx = useFallbackFile('fbdev', async () => {
  await fx.setPolicy('visitor', { ackTimeoutMs: ACK_TIMEOUT_MS });
  const visitor = await fx.policy('visitor');
  assert.deepEqual(visitor.fallback, ['push', 'sms'], `the shipped visitor policy changed: ${JSON.stringify(visitor)}`);
  await fx.db.sql(`create table public.test_devices (
                     tenant text not null, user_id text not null, device_token text not null,
                     primary key (tenant, user_id, device_token))`);
  // The demo layout's rooms, and a row per device listed in test_devices.
  await fx.db.sql(`
    create or replace function hub.audience(tenant text, rooms text[])
    returns table (user_id text, device_token text, phone text, email text, locale text)
    language plpgsql stable security definer set search_path = pg_catalog, hub, pg_temp as $fn$
    begin
      return query execute format($q$
        select u.id, coalesce(d.device_token, u."deviceToken"), u."phoneNumber", u.email, u.locale
          from %I."User" u
          left join public.test_devices d on d.tenant = $1 and d.user_id = u.id
         where 'all' = any ($2) or 'user:' || u.id = any ($2)
            or 'role:' || lower(u.role::text) = any ($2) or 'unit:' || u."unitId" = any ($2)$q$, tenant)
      using tenant, rooms;
    end
    $fn$`);
  await fx.db.sql('revoke execute on function hub.audience(text, text[]) from public');
  hub = await fx.startHub();
  tenant = await fx.newTenant('dev');
});

/** A resident of a fresh unit with `tokens` as devices (none: no device at all). */
async function residentWith(tokens, extra = {}) {
  const u = await fx.addUser(tenant, {
    id: `res-${uid()}`, name: 'Ana Gómez', role: 'RESIDENT', unitId: `U${uid(3)}`, phoneNumber: newPhone(), ...extra,
  });
  for (const t of tokens) {
    await fx.db.sql('insert into public.test_devices (tenant, user_id, device_token) values ($1, $2, $3)', [tenant, u.id, t]);
  }
  return { ...u, tokens };
}

async function visitorFor(unitId) {
  await fx.db.insertVisitor(tenant, { unitId, name: 'Carlos Pérez' });
  const ev = await fx.lastEvent(tenant, 'visitor');
  assert.ok(ev && ev.data.unitId === unitId, `no visitor event for unit ${unitId}: ${JSON.stringify(ev)}`);
  return ev;
}

/** The push rows of (event, user), by device token. */
async function pushRows(eventId, userId) {
  const rows = await fx.deliveries(eventId, { user: userId, channel: 'push' });
  return new Map(rows.map((r) => [r.address, r]));
}

/** Resolves once the user has `n` push rows of the event and none is pending. */
function pushSettled(eventId, userId, n, timeout = 15_000) {
  return waitFor(async () => {
    const rows = await fx.deliveries(eventId, { user: userId, channel: 'push' });
    return rows.length === n && rows.every((r) => r.status !== 'pending') && rows;
  }, { timeout, what: `${n} settled push rows of (${eventId}, ${userId})`, describe: async () => JSON.stringify(await fx.deliveries(eventId)) });
}

async function unregisteredRow(token) {
  return (await fx.db.sql(
    `select tenant, device_token, user_id, event_id::bigint as event_id, rejections,
            last_seen >= first_seen as ordered
       from hub.unregistered_tokens where tenant = $1 and device_token = $2`, [tenant, token]))[0];
}

const metric = async (h) => (await hubMetrics(h.port)).armonia_unregistered_tokens_total;

test('three devices, one UNREGISTERED → three pushes and three rows; the token is recorded and counted; the others are sent and no SMS goes', async () => {
  const gone = `unregistered-${uid(8)}`;
  const u = await residentWith([`tok-a-${uid(8)}`, `tok-b-${uid(8)}`, gone]);
  const before = await metric(hub);
  assert.equal(typeof before, 'number', 'armonia_unregistered_tokens_total is not on /metrics');
  const ev = await visitorFor(u.unitId);

  await pushSettled(ev.id, u.id, 3);
  const rows = await pushRows(ev.id, u.id);
  assert.deepEqual([...rows.keys()].sort(), [...u.tokens].sort(), 'one push row per device token');
  for (const t of u.tokens) {
    const r = rows.get(t);
    if (t === gone) {
      assert.deepEqual([r.status, r.detail, r.attempts], ['failed', 'UNREGISTERED', 1], JSON.stringify(r));
    } else {
      assert.equal(r.status, 'sent', JSON.stringify(r));
      assert.match(r.detail ?? '', /^projects\/armonia-test\/messages\//);
    }
    assert.equal(r.origin, 'fallback');
  }

  await sleep(SETTLE_MS);
  for (const t of u.tokens) {
    const pushes = fx.pushesTo(t);
    assert.equal(pushes.length, 1, `${t}: ${pushes.length} requests`);
    assert.equal(pushes[0].status, t === gone ? 404 : 200);
    assert.equal(pushes[0].notification.title, 'Visitante en portería');
  }
  // Reached by push (two devices got it): the chain stops, no SMS row at all.
  assert.equal(await fx.delivery(ev.id, u.id, 'sms'), undefined);
  assert.equal(fx.smsTo(u.phoneNumber).length, 0, 'an SMS went out although two pushes got through');

  const rec = await unregisteredRow(gone);
  assert.deepEqual(rec, { tenant, device_token: gone, user_id: u.id, event_id: String(ev.id), rejections: 1, ordered: true });
  await waitFor(async () => (await metric(hub)) === before + 1, {
    what: 'armonia_unregistered_tokens_total to move by one', describe: async () => `${await metric(hub)} (was ${before})`,
  });
});

test('every device UNREGISTERED → then one SMS for the user; a later event counts the rejections again', async () => {
  const u = await residentWith([`unregistered-${uid(8)}`, `unregistered-${uid(8)}`]);
  const ev = await visitorFor(u.unitId);
  const sms = await fx.waitDelivery(ev.id, u.id, 'sms');
  assert.equal(sms.status, 'sent', JSON.stringify(await fx.deliveries(ev.id)));
  const rows = await pushRows(ev.id, u.id);
  assert.deepEqual([...rows.values()].map((r) => `${r.status}/${r.detail}`), ['failed/UNREGISTERED', 'failed/UNREGISTERED']);
  const smsRows = await fx.deliveries(ev.id, { user: u.id, channel: 'sms' });
  assert.equal(smsRows.length, 1, `one SMS row per user: ${JSON.stringify(smsRows)}`);
  await sleep(SETTLE_MS);
  assert.equal(fx.smsTo(u.phoneNumber).length, 1);

  const ev2 = await visitorFor(u.unitId);
  await fx.waitDelivery(ev2.id, u.id, 'sms');
  for (const t of u.tokens) {
    const rec = await unregisteredRow(t);
    assert.equal(rec.rejections, 2, JSON.stringify(rec));
    assert.equal(rec.event_id, String(ev2.id));
  }
});

test('no device → one push row skipped with "no device token", then one SMS, as before', async () => {
  const u = await residentWith([]);
  const ev = await visitorFor(u.unitId);
  const sms = await fx.waitDelivery(ev.id, u.id, 'sms');
  assert.equal(sms.status, 'sent', JSON.stringify(sms));
  const push = await fx.deliveries(ev.id, { user: u.id, channel: 'push' });
  assert.deepEqual(push.map((r) => [r.status, r.detail, r.address]), [['skipped', 'no device token', null]]);
  await sleep(SETTLE_MS);
  assert.equal(fx.smsTo(u.phoneNumber).length, 1);
});

test('always push and SMS: a push per device and one SMS per user, however many audience rows the user has', async () => {
  const kind = `dev_${uid(3)}`;
  await fx.setPolicy(kind, { ackTimeoutMs: 0, always: ['push', 'sms'] });
  const many = await residentWith([`tok-c-${uid(8)}`, `tok-d-${uid(8)}`, `tok-e-${uid(8)}`]);
  const none = await residentWith([]);
  const id = await fx.db.emit(tenant, kind, [`user:${many.id}`, `user:${none.id}`], { note: 'x' }, { priority: 'critical' });
  const rows = await fx.waitSettled(id, { min: 6 });
  const summary = rows.map((r) => `${r.user_id === many.id ? 'many' : 'none'} ${r.channel} ${r.status}`).sort();
  assert.deepEqual(summary, [
    'many push sent', 'many push sent', 'many push sent', 'many sms sent', 'none push skipped', 'none sms sent',
  ], JSON.stringify(rows));
  await sleep(SETTLE_MS);
  for (const t of many.tokens) assert.equal(fx.pushesTo(t).length, 1, t);
  assert.equal(fx.smsTo(many.phoneNumber).length, 1);
  assert.equal(fx.smsTo(none.phoneNumber).length, 1);
});

test('a hub killed with one device\'s push in flight → a new hub sends only that one; every device has exactly one push', async () => {
  // The first hub's lease is short, so the second takes the row over soon;
  // its requests get a timeout no answer reaches (the stand-in hangs one).
  await hub.stop();
  const a = await fx.startHub({ env: { HUB_DELIVERY_LEASE_MS: 2500 } });
  let b;
  try {
    const u = await residentWith([`tok-f-${uid(8)}`, `tok-g-${uid(8)}`, `tok-h-${uid(8)}`]);
    fx.fcm.setMode('sequence', ['ok', 'ok', 'hang']);
    const ev = await visitorFor(u.unitId);
    const mid = await waitFor(async () => {
      const rows = await fx.deliveries(ev.id, { user: u.id, channel: 'push' });
      const sent = rows.filter((r) => r.status === 'sent');
      const held = rows.filter((r) => r.status === 'pending' && r.leased_by);
      return rows.length === 3 && sent.length === 2 && held.length === 1 && held[0];
    }, { timeout: 15_000, what: 'two pushes sent and one in flight', describe: async () => JSON.stringify(await fx.deliveries(ev.id)) });
    assert.equal(fx.pushesTo(mid.address).at(-1)?.status, 'hang');
    await a.kill('SIGKILL');
    fx.fcm.setMode('ok');

    b = await fx.startHub();
    await pushSettled(ev.id, u.id, 3);
    await sleep(SETTLE_MS);
    const rows = await pushRows(ev.id, u.id);
    for (const t of u.tokens) {
      assert.equal(rows.get(t).status, 'sent', JSON.stringify(rows.get(t)));
      assert.equal(rows.get(t).attempts, 1, 'a request that never answered is not an attempt');
      const delivered = fx.pushesTo(t).filter((p) => p.status === 200);
      assert.equal(delivered.length, 1, `${t}: ${JSON.stringify(fx.pushesTo(t))}`);
    }
    assert.equal(rows.get(mid.address).leased_by === mid.leased_by, false, 'the new hub sent the row in flight');
    assert.equal(fx.smsTo(u.phoneNumber).length, 0);
  } finally {
    fx.fcm.setMode('ok');
    if (!a.exit) await a.kill('SIGKILL');
    if (b) await b.stop();
    hub = await fx.startHub();
  }
});

test('SQL: SMS follows when the last device\'s push failed, never while one may still get through; a deferred push lets it go at once', async () => {
  // No hub runs here: the test plans, claims and settles rows itself, in the
  // orders two devices' answers can come in.
  await hub.stop();
  try {
    const kind = `seq_${uid(3)}`;
    await fx.setPolicy(kind, { ackTimeoutMs: 0, fallback: ['push', 'sms'] });
    const plan = async (ev) => {
      await waitFor(async () => (await fx.db.sql('select event_id from hub.fallback_plan(1000)')).some((r) => Number(r.event_id) === ev),
        { what: `event ${ev} planned` });
      const claimed = await fx.db.sql("select event_id, user_id, address from hub.delivery_claim('push', 1000, 60000, 'test')");
      return claimed.filter((r) => Number(r.event_id) === ev).map((r) => r.address).sort();
    };
    const result = async (ev, user, outcome, detail, address) => (await fx.db.sql(
      "select hub.delivery_result($1, $2, 'push', $3, $4, 0, $5) as next", [ev, user, outcome, detail, address]))[0].next;
    const smsRows = async (ev, user) => (await fx.deliveries(ev, { user, channel: 'sms' })).map((r) => r.status);

    // Both fail: the first leaves SMS waiting for the second; the second queues it.
    const u = await residentWith([`unregistered-${uid(8)}`, `tok-i-${uid(8)}`]);
    const e1 = await fx.db.emit(tenant, kind, [`user:${u.id}`], {});
    const [a1, b1] = await plan(e1);
    assert.deepEqual([a1, b1].sort(), [...u.tokens].sort());
    assert.equal(await result(e1, u.id, 'failed', 'UNREGISTERED', u.tokens[0]), null);
    assert.deepEqual(await smsRows(e1, u.id), [], 'SMS queued while another device\'s push was pending');
    assert.equal(await result(e1, u.id, 'failed', 'http 400', u.tokens[1]), 'sms');
    assert.deepEqual(await smsRows(e1, u.id), ['pending']);
    assert.equal((await unregisteredRow(u.tokens[0])).event_id, String(e1));
    // A late or repeated report changes nothing.
    assert.equal(await result(e1, u.id, 'failed', 'http 400', u.tokens[1]), null);

    // One fails, the other is sent: no SMS, whatever the order.
    for (const order of [['failed', 'sent'], ['sent', 'failed']]) {
      const e = await fx.db.emit(tenant, kind, [`user:${u.id}`], {});
      await plan(e);
      for (const [i, outcome] of order.entries()) {
        assert.equal(await result(e, u.id, outcome, outcome === 'sent' ? 'projects/p/messages/1' : 'http 400', u.tokens[i]), null);
      }
      assert.deepEqual(await smsRows(e, u.id), [], `${order.join(' then ')}: an SMS was queued`);
    }

    // Deferred (circuit open): the SMS goes at once; the push still waits.
    const e3 = await fx.db.emit(tenant, kind, [`user:${u.id}`], {});
    await plan(e3);
    assert.equal(await result(e3, u.id, 'deferred', 'provider unavailable (circuit open)', u.tokens[0]), 'sms');
    assert.deepEqual((await pushRows(e3, u.id)).get(u.tokens[0]).status, 'pending');

    // Without an address (a hub of an earlier version) each report settles
    // one pending row of the user's channel.
    const e4 = await fx.db.emit(tenant, kind, [`user:${u.id}`], {});
    await plan(e4);
    assert.equal(await result(e4, u.id, 'sent', 'projects/p/messages/2', null), null);
    assert.equal(await result(e4, u.id, 'sent', 'projects/p/messages/3', null), null);
    assert.deepEqual([...(await pushRows(e4, u.id)).values()].map((r) => r.status), ['sent', 'sent']);
    assert.equal(await result(e4, u.id, 'sent', 'projects/p/messages/4', null), null);

    await fx.db.sql("update hub.deliveries set status = 'skipped', detail = 'closed by the test', lease_until = null where tenant = $1 and status = 'pending'", [tenant]);
  } finally {
    hub = await fx.startHub();
  }
});

test('hub.unregistered_tokens: the hub\'s role can neither read nor write it; the documented clean-up clears the tenant\'s token and the row', async () => {
  const gone = `unregistered-${uid(8)}`;
  // A user of the shipped layout: its one device is "User"."deviceToken".
  const u = await fx.addUser(tenant, {
    id: `res-${uid()}`, role: 'RESIDENT', unitId: `U${uid(3)}`, deviceToken: gone, phoneNumber: newPhone(),
  });
  const ev = await visitorFor(u.unitId);
  await fx.waitDelivery(ev.id, u.id, 'sms');
  assert.ok(await unregisteredRow(gone), 'the token was not recorded');

  const h = new pg.Client({ connectionString: hubDatabaseUrl(fx.url) });
  await h.connect();
  try {
    for (const [text, what] of [
      ['select * from hub.unregistered_tokens', 'reading'],
      ['delete from hub.unregistered_tokens', 'deleting'],
      [`insert into hub.unregistered_tokens (tenant, device_token, user_id, event_id) values ('${tenant}', 'x', 'y', 1)`, 'inserting'],
    ]) {
      await assert.rejects(h.query(text), (err) => err.code === '42501', `the hub's role may not be ${what} hub.unregistered_tokens`);
    }
  } finally {
    await h.end();
  }

  // docs/fallback.md, "Unregistered tokens": the backend's clean-up of one tenant.
  await fx.db.sql(`
    WITH gone AS (
        DELETE FROM hub.unregistered_tokens WHERE tenant = '${tenant}'
        RETURNING device_token
    )
    UPDATE "${tenant}"."User" u SET "deviceToken" = NULL
      FROM gone WHERE u."deviceToken" = gone.device_token`);
  const [row] = await fx.db.sql(`select "deviceToken" from "${tenant}"."User" where id = $1`, [u.id]);
  assert.equal(row.deviceToken, null);
  assert.equal(await unregisteredRow(gone), undefined);
});

/** Runs psql with ON_ERROR_STOP in one transaction over files (paths under schema/). */
function psqlFiles(url, files) {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-d', url, '-c', 'SET client_min_messages = warning'];
  for (const f of files) args.push('-f', `${sourceDir}/schema/${f}`);
  return new Promise((resolve, reject) => {
    execFile(psqlBinary(), args, { timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`psql failed: ${stderr}`)) : resolve()));
  });
}

test('upgrade: rows keyed (event, user, channel) get their address in the key; applying every step again changes nothing', async () => {
  const name = `fbdev_up_${uid()}`;
  await fx.db.sql(`create database ${name}`);
  const url = fx.url.replace(/\/[^/]*$/, `/${name}`);
  const steps = schemaFiles().filter((f) => /^\d{3}_/.test(f));
  const before = steps.filter((f) => f < '100_');
  assert.ok(steps.includes('100_devices.sql'));
  const c = new pg.Client({ connectionString: url });
  try {
    await psqlFiles(url, before);
    await c.connect();
    await c.query(`insert into hub.deliveries (event_id, tenant, user_id, channel, status, address) values
                     (1, 't', 'u', 'push', 'sent', 'tok-1'), (1, 't', 'u', 'sms', 'sent', '+573001112233'),
                     (1, 't', 'u', 'ws', 'acked', null), (2, 't', 'u', 'push', 'skipped', null)`);
    await psqlFiles(url, steps.filter((f) => f >= '100_'));
    const keyed = async () => (await c.query(`select event_id::int as e, channel, address_key from hub.deliveries order by 1, 2`)).rows;
    const expected = [
      { e: 1, channel: 'push', address_key: 'tok-1' }, { e: 1, channel: 'sms', address_key: '' },
      { e: 1, channel: 'ws', address_key: '' }, { e: 2, channel: 'push', address_key: '' },
    ];
    assert.deepEqual(await keyed(), expected);
    const [{ key }] = (await c.query(`select array_agg(a.attname::text order by k.i) as key
                                         from pg_index x cross join unnest(x.indkey) with ordinality as k(n, i)
                                         join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.n
                                        where x.indrelid = 'hub.deliveries'::regclass and x.indisprimary`)).rows;
    assert.deepEqual(key, ['event_id', 'user_id', 'channel', 'address_key']);

    await psqlFiles(url, steps);
    assert.deepEqual(await keyed(), expected, 'applying every step again changed the rows');
    // A second device of the same user and event is a row of its own; a
    // second phone number is not.
    await c.query("insert into hub.deliveries (event_id, tenant, user_id, channel, status, address) values (1, 't', 'u', 'push', 'pending', 'tok-2')");
    await assert.rejects(c.query("insert into hub.deliveries (event_id, tenant, user_id, channel, status, address) values (1, 't', 'u', 'sms', 'pending', '+573009998877')"),
      (err) => err.code === '23505');
  } finally {
    await c.end().catch(() => {});
    await fx.db.sql(`drop database if exists ${name}`);
  }
});
