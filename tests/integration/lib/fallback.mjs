// fallback.mjs - what the fallback_*.test.mjs files share (docs/fallback.md).
//
// Each fallback test file runs on a PostgreSQL cluster of its own (a fresh
// temporary directory started with scripts/pg.sh), because hub.policies is
// global to a database: the files shorten the real kinds' ack timeouts
// (panic, visitor, payment, announcement) so the real triggers and the real
// policies are what is tested, and a shared cluster would leak those edits
// into every other test file running in parallel.
//
// The providers are the in-process stand-ins of tests/standins (FCM with its
// OAuth2 token endpoint, Twilio, an SMTP relay), which record every request
// they got; the tests assert on those records (what a resident's phone would
// show) and on hub.deliveries (what an operator would see).
//
// useFallbackFile() installs the file's hooks: on a failed test it prints the
// tail of every hub's output and of the stand-ins' logs; after the file it
// stops the hubs, closes the clients and stand-ins, and stops and removes
// the cluster. Everything is awaited by polling with deadlines (waitFor).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { before, beforeEach, afterEach, after } from 'node:test';
import { startFcm, makeServiceAccount } from '../../standins/fcm.mjs';
import { startTwilio } from '../../standins/twilio.mjs';
import { startSmtp } from '../../standins/smtp.mjs';
import {
  Db, ident, pgScriptRun, startHub, startedHubs, stopAllHubs, badlyEndedHubs, closeAllClients,
} from './harness.mjs';

const LOG_TAIL_LINES = 120;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A short random suffix, so every test's users, tokens and phones are its own. */
export function uid(n = 4) {
  return randomBytes(n).toString('hex');
}

/**
 * A fresh E.164 Colombian mobile number (+57 followed by a ten-digit mobile number starting with 3) that no other
 * test uses. Twilio's magic test numbers are +1500555000x; these are never.
 */
let phoneCounter = 0;
const phoneBase = Math.floor(Math.random() * 9_000_000);
export function newPhone() {
  phoneCounter += 1;
  const n = (phoneBase + phoneCounter * 7919) % 100_000_000;
  return `+573${String(Math.floor(Math.random() * 9) + 1)}${String(n).padStart(8, '0')}`;
}

// Bulk phone numbers: each addUsersBulk() call gets its own million.
let bulkBase = Math.floor(Math.random() * 40) * 1_000_000;
function nextBulkBase() {
  bulkBase = (bulkBase + 1_000_000) % 90_000_000;
  return bulkBase;
}

/**
 * Polls fn() every `interval` ms until it returns a truthy value (resolves
 * with it) or `timeout` ms pass (rejects naming `what` and, when given,
 * what describe() says about the last state).
 */
export async function waitFor(fn, { timeout = 10_000, interval = 50, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    let err;
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      err = e;
    }
    if (Date.now() > deadline) {
      let state = '';
      if (describe) {
        try {
          state = `\n  state: ${await describe()}`;
        } catch (e) {
          state = `\n  (describe failed: ${e.message})`;
        }
      }
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${err ? ` (last error: ${err.message})` : ''}${state}`);
    }
    await sleep(interval);
  }
}

/**
 * The whole fixture of one test file: a private cluster, the three
 * stand-ins, a Db on the cluster. Hubs are started by the tests
 * (startFallbackHub) with the env they need.
 */
export class FallbackFixture {
  constructor(name) {
    this.name = name;
    this.standinLog = [];
    this.printedLog = 0;
  }

  async setUp() {
    this.parent = mkdtempSync(join(tmpdir(), `armonia-${this.name}-`));
    this.pgdir = join(this.parent, 'pg');
    await pgScriptRun('start', this.pgdir);
    this.url = readFileSync(join(this.pgdir, 'url'), 'utf8').trim();
    this.db = new Db(this.url);
    const log = (line) => this.standinLog.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
    this.fcm = await startFcm({ log });
    this.twilio = await startTwilio({ log });
    this.smtp = await startSmtp({ log });
    // The stand-in runs in this process, so the key made here is already trusted.
    this.account = makeServiceAccount({ tokenUri: this.fcm.tokenUri, projectId: 'armonia-test' });
    this.twilioFrom = '+15017122661';
    this.smtpFrom = 'notificaciones@armonia.test';
  }

  async tearDown() {
    closeAllClients();
    // Bounded: a hub whose spawn failed never reports an exit.
    await Promise.race([stopAllHubs(), sleep(20_000)]);
    for (const s of [this.fcm, this.twilio, this.smtp]) if (s) await s.close().catch(() => {});
    if (this.db) await this.db.close();
    if (this.pgdir) await pgScriptRun('stop', this.pgdir).catch((err) => process.stderr.write(`${err.message}\n`));
    if (this.parent) rmSync(this.parent, { recursive: true, force: true });
  }

  /**
   * The hub's provider settings for these stand-ins. channels: which of
   * 'push', 'sms', 'email' to configure (an unconfigured one is left out
   * of the environment entirely).
   */
  providerEnv(channels = ['push', 'sms', 'email']) {
    const env = {};
    if (channels.includes('push')) {
      env.FIREBASE_SERVICE_ACCOUNT_KEY = JSON.stringify(this.account);
      env.HUB_FCM_BASE_URL = this.fcm.url;
    }
    if (channels.includes('sms')) {
      env.TWILIO_ACCOUNT_SID = this.twilio.accountSid;
      env.TWILIO_AUTH_TOKEN = this.twilio.authToken;
      env.TWILIO_PHONE_NUMBER = this.twilioFrom;
      env.HUB_TWILIO_BASE_URL = this.twilio.url;
    }
    if (channels.includes('email')) {
      env.HUB_SMTP_URL = this.smtp.url;
      env.HUB_SMTP_FROM = this.smtpFrom;
    }
    return env;
  }

  /**
   * Starts a hub on this cluster with every provider configured (or those
   * in `channels`) and fast test knobs; env overrides them.
   */
  async startHub({ channels, env = {} } = {}) {
    // startHub() waits for the process's exit after a failed start, which
    // never comes when the spawn itself failed (e.g. HUB_BIN being relinked
    // by a build at that moment): bound the wait so the test fails instead
    // of hanging the file.
    let timer;
    const bound = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`armonia-hub (${process.env.HUB_BIN}) did not start within 30 s (spawn failed?)`)), 30_000);
    });
    try {
      return await Promise.race([this.#spawnHub(channels, env), bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  #spawnHub(channels, env) {
    return startHub({
      databaseUrl: this.url,
      env: {
        HUB_FALLBACK_TICK_MS: 100,
        HUB_RETRY_BASE_MS: 50,
        HUB_RETRY_CAP_MS: 2000,
        // A request the hub gives up on may still have been accepted by the
        // stand-in, and is then sent again (docs/fallback.md §5): on a loaded
        // machine a stand-in in this process can take seconds to answer, so
        // the tests keep the shipped lease and a timeout no answer reaches.
        // Tests of timeouts set their own (fallback_circuit, fallback_resilience).
        HUB_DELIVERY_LEASE_MS: 60_000,
        HUB_PROVIDER_TIMEOUT_MS: 30_000,
        ...this.providerEnv(channels),
        ...env,
      },
    });
  }

  /** Prints what the stand-ins logged since the last print (for a failed test). */
  printStandinLog(testName) {
    const from = Math.max(this.printedLog, this.standinLog.length - LOG_TAIL_LINES);
    const lines = this.standinLog.slice(from);
    this.printedLog = this.standinLog.length;
    if (lines.length) process.stderr.write(`\n=== stand-ins (test "${testName}" failed) ===\n${lines.join('\n')}\n=== end ===\n`);
  }

  // ---- policies -------------------------------------------------------------

  /** Updates (or inserts) the policy of kind; unnamed fields keep their value (or the defaults). */
  async setPolicy(kind, { ackTimeoutMs, fallback, always, fallbackAll, maxAgeMs } = {}) {
    await this.db.sql(
      `insert into hub.policies as p (kind, ack_timeout_ms, fallback, always, fallback_all, max_age_ms)
       values ($1, coalesce($2::int, 0), coalesce($3::text[], '{}'), coalesce($4::text[], '{}'),
               coalesce($5::boolean, false), coalesce($6::int, 3600000))
       on conflict (kind) do update set
         ack_timeout_ms = coalesce($2::int, p.ack_timeout_ms),
         fallback = coalesce($3::text[], p.fallback),
         always = coalesce($4::text[], p.always),
         fallback_all = coalesce($5::boolean, p.fallback_all),
         max_age_ms = coalesce($6::int, p.max_age_ms),
         updated_at = now()`,
      [kind, ackTimeoutMs ?? null, fallback ?? null, always ?? null, fallbackAll ?? null, maxAgeMs ?? null],
    );
  }

  async policy(kind) {
    return (await this.db.sql('select * from hub.policies where kind = $1', [kind]))[0];
  }

  // ---- tenants, users, events ----------------------------------------------

  newTenant(prefix) {
    return this.db.newTenant(prefix);
  }

  /** Inserts a user with an explicit id; resolves with the row as given. */
  async addUser(tenant, {
    id = `u-${uid()}`, name = 'Residente de prueba', role = 'RESIDENT', unitId = null,
    deviceToken = null, phoneNumber = null, email = null, locale,
  } = {}) {
    await this.db.sql(
      `insert into ${ident(tenant)}."User" (id, name, role, "unitId", "deviceToken", "phoneNumber", email, locale)
       values ($1, $2, $3, $4, $5, $6, $7, coalesce($8, 'es-CO'))`,
      [id, name, role, unitId, deviceToken, phoneNumber, email, locale ?? null],
    );
    return { id, name, role, unitId, deviceToken, phoneNumber, email, locale: locale ?? 'es-CO' };
  }

  /**
   * Inserts n users in one INSERT … SELECT generate_series: ids
   * `${prefix}-<i>`, tokens `tok-${prefix}-<i>`, phones +5730<8 digits>
   * unique per prefix (phoneBase), e-mails `${prefix}-<i>@armonia.test`.
   * Resolves with { ids, tokens, phones } (Sets) for counting.
   */
  async addUsersBulk(tenant, n, { prefix = `b${uid(3)}`, role = 'RESIDENT', unitId = null, token = true, phone = true, email = false, phoneBase = nextBulkBase() } = {}) {
    await this.db.sql(
      `insert into ${ident(tenant)}."User" (id, name, role, "unitId", "deviceToken", "phoneNumber", email)
       select $1 || '-' || i, 'Usuario ' || i, $2, $3,
              case when $4 then 'tok-' || $1 || '-' || i end,
              case when $5 then '+5731' || lpad(($7::bigint + i)::text, 8, '0') end,
              case when $6 then $1 || '-' || i || '@armonia.test' end
         from generate_series(1, $8::int) as i`,
      [prefix, role, unitId, token, phone, email, phoneBase, n],
    );
    const ids = new Set();
    const tokens = new Set();
    const phones = new Set();
    for (let i = 1; i <= n; i++) {
      ids.add(`${prefix}-${i}`);
      if (token) tokens.add(`tok-${prefix}-${i}`);
      if (phone) phones.add(`+5731${String(phoneBase + i).padStart(8, '0')}`);
    }
    return { ids, tokens, phones, prefix };
  }

  /** The newest event of kind in tenant (as hub.outbox has it), or undefined. */
  async lastEvent(tenant, kind) {
    const rows = await this.db.sql(
      `select id::bigint as id, kind, rooms, data, ack, created_at, committed_at,
              (extract(epoch from created_at) * 1000)::float8 as created_ms
         from hub.outbox where tenant = $1 and kind = $2 order by id desc limit 1`,
      [tenant, kind],
    );
    if (!rows[0]) return undefined;
    return { ...rows[0], id: Number(rows[0].id) };
  }

  async event(id) {
    const rows = await this.db.sql(
      `select id::bigint as id, kind, tenant, rooms, data, ack, created_at,
              (extract(epoch from created_at) * 1000)::float8 as created_ms
         from hub.outbox where id = $1`, [id]);
    return rows[0] && { ...rows[0], id: Number(rows[0].id) };
  }

  /** Every hub.deliveries row of event id, ordered by user and channel. */
  async deliveries(eventId, { user, channel } = {}) {
    return this.db.sql(
      `select event_id::bigint as event_id, user_id, channel, status, attempts, detail, origin, address,
              locale, leased_by, (extract(epoch from updated_at) * 1000)::float8 as updated_ms,
              (extract(epoch from created_at) * 1000)::float8 as created_ms
         from hub.deliveries
        where event_id = $1 and ($2::text is null or user_id = $2) and ($3::text is null or channel = $3)
        order by user_id, channel`,
      [eventId, user ?? null, channel ?? null],
    );
  }

  /** The one row of (event, user, channel), or undefined. */
  async delivery(eventId, user, channel) {
    return (await this.deliveries(eventId, { user, channel }))[0];
  }

  /** The fallback jobs of event id. */
  async jobs(eventId) {
    return this.db.sql(
      `select phase, due_at, done_at, (extract(epoch from due_at) * 1000)::float8 as due_ms
         from hub.fallback_jobs where event_id = $1 order by phase`, [eventId]);
  }

  /** Resolves once every fallback job of event id was handled (done_at set). */
  async waitJobsDone(eventId, { timeout = 15_000 } = {}) {
    return waitFor(async () => {
      const j = await this.jobs(eventId);
      return j.length > 0 && j.every((r) => r.done_at !== null) && j;
    }, { timeout, what: `the fallback jobs of event ${eventId} to be done`, describe: async () => JSON.stringify(await this.jobs(eventId)) });
  }

  /**
   * Waits until the row (event, user, channel) has one of `statuses`
   * (default: it left 'pending'); resolves with the row.
   */
  async waitDelivery(eventId, user, channel, { statuses, timeout = 15_000 } = {}) {
    return waitFor(async () => {
      const r = await this.delivery(eventId, user, channel);
      if (!r) return null;
      if (statuses ? statuses.includes(r.status) : r.status !== 'pending') return r;
      return null;
    }, {
      timeout,
      what: `hub.deliveries (${eventId}, ${user}, ${channel}) to be ${statuses ? statuses.join('|') : 'settled'}`,
      describe: async () => JSON.stringify(await this.deliveries(eventId)),
    });
  }

  /** Waits until no row of event id is 'pending' and at least `min` rows exist. */
  async waitSettled(eventId, { min = 1, timeout = 20_000 } = {}) {
    return waitFor(async () => {
      const rows = await this.deliveries(eventId);
      return rows.length >= min && rows.every((r) => r.status !== 'pending') && rows;
    }, {
      timeout,
      what: `every delivery of event ${eventId} to settle (at least ${min} rows)`,
      describe: async () => {
        const rows = await this.deliveries(eventId);
        const pending = rows.filter((r) => r.status === 'pending');
        return `${rows.length} rows, ${pending.length} pending: ${JSON.stringify(pending.slice(0, 5))}`;
      },
    });
  }

  /** Counts of hub.deliveries rows by channel and status for event id: {'push/sent': 3, ...}. */
  async deliveryCounts(eventId) {
    const rows = await this.db.sql(
      `select channel || '/' || status as k, count(*)::int as n from hub.deliveries
        where event_id = $1 group by 1 order by 1`, [eventId]);
    return Object.fromEntries(rows.map((r) => [r.k, r.n]));
  }

  // ---- what the stand-ins got -----------------------------------------------

  /** FCM requests addressed to token (every one, whatever the answer). */
  pushesTo(token) {
    return this.fcm.messages.filter((m) => m.token === token);
  }

  /** Twilio requests addressed to phone. */
  smsTo(phone) {
    return this.twilio.messages.filter((m) => m.to === phone);
  }

  /** E-mails the relay accepted for address. */
  mailsTo(address) {
    return this.smtp.messages.filter((m) => m.to.includes(address));
  }
}

/**
 * Creates the fixture and installs the file's hooks; setup(fx) runs once
 * the cluster and stand-ins are up (policies, hubs, tenants). Returns the
 * fixture; its fields are filled in by the time the first test runs.
 */
export function useFallbackFile(name, setup = async () => {}) {
  const fx = new FallbackFixture(name);
  let firstHub = 0;
  // One hook: node:test does not wait for one root-level before() to end
  // before it starts the next, so the file's own setup runs in this one.
  before(async () => {
    await fx.setUp();
    await setup(fx);
  });
  beforeEach(() => {
    firstHub = startedHubs.length;
  });
  afterEach((t) => {
    if (t.passed) return;
    const used = startedHubs.filter((h, i) => i >= firstHub || !h.exit);
    for (const h of used) {
      const from = Math.max(h.printed ?? 0, h.output.length - LOG_TAIL_LINES);
      const lines = h.output.slice(from);
      h.printed = h.output.length;
      if (lines.length === 0) continue;
      process.stderr.write(`\n=== armonia-hub on port ${h.port} (test "${t.name}" failed) ${h.exit ? `exited ${JSON.stringify(h.exit)}` : 'running'}; ${from > 0 ? `lines ${from + 1}..${h.output.length}` : 'all its output'} ===\n${lines.join('\n')}\n=== end ===\n`);
    }
    fx.printStandinLog(t.name);
  });
  after(async () => {
    await fx.tearDown();
    const bad = badlyEndedHubs();
    if (bad.length) {
      throw new Error(bad.map((h) => `armonia-hub on port ${h.port} ended badly (${h.hungOnStop ? 'ignored SIGTERM, ' : ''}exit ${JSON.stringify(h.exit)}); last lines:\n${h.output.slice(-60).join('\n')}`).join('\n\n'));
    }
  });
  return fx;
}

/** The p-th percentile (0..100) of numbers, nearest-rank. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Counts items by key(item): Map(key → count). */
export function countBy(items, key) {
  const m = new Map();
  for (const it of items) {
    const k = key(it);
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/**
 * Asserts that each of `expected` (a Set of addresses) appears exactly once
 * in counts (a Map address → count), naming the first offenders.
 */
export function assertExactlyOnce(counts, expected, what) {
  const missing = [];
  const dup = [];
  for (const a of expected) {
    const n = counts.get(a) ?? 0;
    if (n === 0) missing.push(a);
    else if (n > 1) dup.push(`${a}×${n}`);
  }
  const stray = [...counts.keys()].filter((a) => !expected.has(a));
  assert.ok(missing.length === 0 && dup.length === 0 && stray.length === 0,
    `${what}: ${missing.length} never got one (${missing.slice(0, 5).join(', ')}), ${dup.length} got several (${dup.slice(0, 5).join(', ')}), ${stray.length} unexpected (${stray.slice(0, 5).join(', ')})`);
}

/** Milliseconds of an ISO time a stand-in recorded. */
export function ms(iso) {
  return Date.parse(iso);
}
