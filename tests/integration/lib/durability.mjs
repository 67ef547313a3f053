// durability.mjs - helpers for the durability_*.test.mjs files and
// bench/durability.mjs: resume, restarts, database outages, bursts.
//
// A Stream is a lean WebSocket client for long event streams. The general
// Client (client.mjs) keeps every frame in an inbox that next() scans, which
// is right for a handful of frames and quadratic for 100,000; a Stream keeps
// only the seq, id and arrival time of each event (plus every non-event
// frame), and its waits take O(1) conditions (a count, a last seq, an id),
// checked on every frame. Every test compares what a stream got with the
// truth in hub.outbox (expectedEvents + assertSameSeqs).
//
// Also: producers that keep emitting across database outages, private
// clusters, a /healthz watcher, a "database accepts connections" poller,
// an RSS sampler for a hub process, and the two measurements the bench
// repeats (recovery time after a database outage, peak RSS in a 100k burst).

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import pg from 'pg';
import { mintToken } from './token.mjs';
import { Db, pgScriptRun } from './db.mjs';
import { httpGet } from './hub.mjs';

/*
 * Set by CTest for the AddressSanitizer + UBSan build: the same behaviour is
 * asserted, but memory and speed bounds allow for the sanitizers' cost
 * (shadow memory, quarantined frees, several times slower code).
 */
export const SANITIZED = process.env.HUB_SANITIZED === '1';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Monotonic milliseconds (arrival times and measurements use this clock). */
export const nowMs = () => performance.now();

const openStreams = new Set();

/** Terminates every Stream still open. */
export function closeAllStreams() {
  for (const s of [...openStreams]) s.terminate();
  openStreams.clear();
}

/** Registers an `after` hook that terminates the streams this file opened. */
export function useStreams() {
  after(() => closeAllStreams());
}

function brief(frame) {
  const t = JSON.stringify(frame);
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

export class Stream {
  constructor(ws, label) {
    this.ws = ws;
    this.label = label;
    this.seqs = []; // seq of every event frame, in arrival order
    this.ids = []; // id of every event frame, in arrival order
    this.arrivals = []; // nowMs() when each event frame arrived
    this.idSet = new Set();
    this.duplicates = 0; // event frames whose id was already received
    this.outOfOrder = 0; // event frames whose seq was not above the previous one
    this.frames = []; // every non-event frame: {at: events received before it, frame}
    this.lastFrames = []; // the last few frames of any type, for failure messages
    this.problems = []; // undecodable or binary frames
    this.closeInfo = null;
    this.closedAt = null;
    this.waiters = new Set();
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.closedAt = nowMs();
        openStreams.delete(this);
        resolve(this.closeInfo);
        this.#wake();
      });
    });
    ws.on('message', (data, isBinary) => this.#receive(data, isBinary));
    openStreams.add(this);
  }

  #receive(data, isBinary) {
    const at = nowMs();
    let f;
    try {
      if (isBinary) throw new Error('binary frame on a JSON connection');
      f = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data).toString('utf8'));
    } catch (err) {
      this.problems.push(err.message);
      this.#wake();
      return;
    }
    if (f?.type === 'event') {
      const n = this.seqs.length;
      if (n && !(f.seq > this.seqs[n - 1])) this.outOfOrder++;
      if (this.idSet.has(f.id)) this.duplicates++;
      this.idSet.add(f.id);
      this.seqs.push(f.seq);
      this.ids.push(f.id);
      this.arrivals.push(at);
      if (this.onEvent) this.onEvent(f);
    } else {
      this.frames.push({ at: this.seqs.length, frame: f });
    }
    this.lastFrames.push(f);
    if (this.lastFrames.length > 6) this.lastFrames.shift();
    this.#wake();
  }

  #wake() {
    for (const w of [...this.waiters]) w();
  }

  get count() {
    return this.seqs.length;
  }

  /** seq of the last event received (0 when none). */
  get lastSeq() {
    return this.seqs.length ? this.seqs[this.seqs.length - 1] : 0;
  }

  describe() {
    return `${this.label}: ${this.count} events (last seq ${this.lastSeq}), ${this.duplicates} duplicates, ${this.outOfOrder} out of order, ` +
      `${this.closeInfo ? `closed ${this.closeInfo.code} '${this.closeInfo.reason}'` : 'open'}; ` +
      `other frames: ${this.frames.slice(-5).map((x) => brief(x.frame)).join(', ') || 'none'}; last frames: ${this.lastFrames.map(brief).join(', ')}`;
  }

  /**
   * Resolves once pred() is true (checked now and after every frame).
   * Rejects after timeout ms, or when the connection closes first (unless
   * closeOk), naming what arrived.
   */
  until(pred, { timeout = 10_000, what = 'the condition', closeOk = false } = {}) {
    return new Promise((resolve, reject) => {
      let timer;
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const check = () => {
        if (this.problems.length) {
          finish();
          reject(new Error(`${this.label}: the hub broke the wire format: ${this.problems.join('; ')}`));
        } else if (pred()) {
          finish();
          resolve();
        } else if (this.closeInfo && !closeOk) {
          finish();
          reject(new Error(`connection closed before ${what}; ${this.describe()}`));
        }
      };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${what} within ${timeout} ms; ${this.describe()}`));
      }, timeout);
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves when the event with this id has arrived. */
  untilId(id, opts = {}) {
    return this.until(() => this.idSet.has(id), { what: `event id ${id}`, ...opts });
  }

  /** Resolves when an event with seq >= seq has arrived. */
  untilSeq(seq, opts = {}) {
    return this.until(() => this.lastSeq >= seq, { what: `an event with seq >= ${seq}`, ...opts });
  }

  /** Resolves with the first non-event frame satisfying pred (not removed). */
  async frame(pred, opts = {}) {
    let found;
    await this.until(() => (found = this.frames.find((x) => pred(x.frame))) !== undefined, { what: 'the expected frame', ...opts });
    return found;
  }

  /** The non-event frames of one type received so far. */
  framesOf(type) {
    return this.frames.filter((x) => x.frame?.type === type).map((x) => x.frame);
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  /** ping → pong: the connection is open and served. */
  async ping(timeout = 5000) {
    const ref = `p-${Math.random().toString(36).slice(2, 10)}`;
    this.send({ type: 'ping', ref });
    await this.frame((f) => f?.type === 'pong' && f.ref === ref, { timeout, what: `pong ${ref}` });
  }

  /** Resolves with {code, reason} once closed; rejects after timeout ms. */
  async closedWithin(timeout = 10_000) {
    await this.until(() => this.closeInfo !== null, { timeout, what: 'the close', closeOk: true });
    return this.closeInfo;
  }

  close(code = 1000) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
  }

  terminate() {
    this.ws.terminate();
  }

  /** Stops reading from the TCP socket (the hub sees a slow reader). */
  pauseReading() {
    this.ws._socket.pause();
  }

  resumeReading() {
    this.ws._socket.resume();
  }
}

/**
 * Opens a JSON connection to hub with a token for claims and resolves with
 * a Stream once its welcome arrived (stream.welcome). Authenticates with an
 * auth frame (carrying since when given) or, with header: true, with
 * Authorization and ?since= on the URL. sinceRaw puts a value in the auth
 * frame or the URL exactly as given (for the bad_request cases).
 * wsOptions go to the ws constructor as they are (ca for wss://,
 * localAddress for a client address of loopback other than 127.0.0.1).
 */
export async function openStream(hub, claims, { since, sinceRaw, header = false, label, timeout = 10_000, wsUrl, wsOptions = {} } = {}) {
  const token = mintToken(hub.secret, claims);
  const url = new URL(wsUrl ?? hub.wsUrl);
  const s = since ?? sinceRaw;
  if (header && s !== undefined) url.searchParams.set('since', String(s));
  const headers = header ? { Authorization: `Bearer ${token}` } : {};
  const ws = new WebSocket(url.toString(), ['armonia.v1.json'], { ...wsOptions, headers, handshakeTimeout: 5000 });
  const stream = new Stream(ws, label ?? `${claims.sub}${header ? ' (header auth)' : ''}`);
  await new Promise((resolve, reject) => {
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      ws.on('error', () => {});
      req.destroy();
      reject(new Error(`${stream.label}: upgrade refused with HTTP ${res.statusCode}`));
    });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      resolve();
    });
  });
  if (!header) {
    const auth = { type: 'auth', token };
    if (s !== undefined) auth.since = s;
    stream.send(auth);
  }
  const w = await stream.frame((f) => f?.type === 'welcome' || (f?.type === 'error' && f.code === 'unauthorized'), { timeout, what: 'welcome' });
  assert.equal(w.frame.type, 'welcome', `${stream.label}: expected a welcome, got ${brief(w.frame)}`);
  stream.welcome = w.frame;
  stream.claims = claims;
  return stream;
}

/**
 * The events of tenant that a connection in rooms must get, from
 * hub.outbox: {seqs, ids}, ordered by seq, with after < seq <= upto.
 */
export async function expectedEvents(database, tenant, rooms, { after = 0, upto } = {}) {
  const rows = await database.sql(
    `select o.seq::text as s, o.id::text as i from hub.outbox o
      where o.tenant = $1 and o.rooms && $2::text[] and o.seq > $3 and ($4::bigint is null or o.seq <= $4)
      order by o.seq`,
    [tenant, rooms, after, upto ?? null],
  );
  return { seqs: rows.map((r) => Number(r.s)), ids: rows.map((r) => Number(r.i)) };
}

/**
 * Asserts got (seqs in arrival order) equals expected exactly, with a
 * short description of the difference instead of a 100,000-line diff.
 */
export function assertSameSeqs(label, got, expected) {
  if (got.length === expected.length && got.every((v, i) => v === expected[i])) return;
  const gotSet = new Set(got);
  const expSet = new Set(expected);
  const missing = expected.filter((v) => !gotSet.has(v));
  const extra = got.filter((v) => !expSet.has(v));
  const seen = new Set();
  const dups = [];
  for (const v of got) {
    if (seen.has(v)) dups.push(v);
    seen.add(v);
  }
  let unordered = 0;
  for (let i = 1; i < got.length; i++) if (!(got[i] > got[i - 1])) unordered++;
  let first = 0;
  while (first < got.length && first < expected.length && got[first] === expected[first]) first++;
  const around = (a) => JSON.stringify(a.slice(Math.max(0, first - 3), first + 5));
  assert.fail(
    `${label}: received ${got.length} events, expected ${expected.length}; ` +
      `${missing.length} missing (first: ${JSON.stringify(missing.slice(0, 10))}), ` +
      `${extra.length} not expected (first: ${JSON.stringify(extra.slice(0, 10))}), ` +
      `${dups.length} duplicates (first: ${JSON.stringify(dups.slice(0, 10))}), ${unordered} out of order; ` +
      `first difference at index ${first}: got ${around(got)}, expected ${around(expected)}`,
  );
}

/**
 * Emits a marker event to 'all' of tenant and waits until every stream got
 * it. Events arrive in seq order, so everything committed before it has
 * arrived too. Resolves with {id, seq} of the marker.
 */
export async function streamBarrier(database, tenant, streams, { timeout = 20_000 } = {}) {
  const id = await database.emit(tenant, 'marker', ['all'], { barrier: true });
  await Promise.all(streams.map((s) => s.untilId(id, { timeout })));
  const [row] = await database.sql('select seq::text as seq from hub.outbox where id = $1', [id]);
  return { id, seq: Number(row.seq) };
}

/**
 * Checks a stream against the outbox: it received exactly the events of
 * tenant for its rooms with after < seq <= upto (upto: the barrier's seq),
 * each once, in seq order. got defaults to the stream's seqs; pass a
 * concatenation for a client that reconnected.
 */
export async function assertExactStream(database, tenant, stream, { after = 0, upto, rooms, got } = {}) {
  const exp = await expectedEvents(database, tenant, rooms ?? stream.welcome.rooms, { after, upto });
  assertSameSeqs(stream.label, got ?? stream.seqs, exp.seqs);
  return exp;
}

/** Emits n events in one statement; resolves with {first, last, ids?} ids. */
export async function emitMany(database, tenant, n, { rooms = ['all'], kind = 'bulk', payload = 0, on } = {}) {
  const text = `select min(id)::text as first, max(id)::text as last, count(*)::int as n from (
      select hub.emit($1, $2, $3::text[], jsonb_build_object('i', i, 'pad', repeat('x', $5)), 'normal', false) as id
        from generate_series(1, $4) i) s`;
  const params = [tenant, kind, rooms, n, payload];
  const rows = on ? (await on.query(text, params)).rows : await database.sql(text, params);
  assert.equal(rows[0].n, n);
  return { first: Number(rows[0].first), last: Number(rows[0].last) };
}

/** The newest seq of tenant in hub.outbox (0 when none). */
export async function tenantLastSeq(database, tenant) {
  const [r] = await database.sql('select coalesce(max(seq), 0)::text as s from hub.outbox where tenant = $1', [tenant]);
  return Number(r.s);
}

/** hub.outbox_horizon.purged_through. */
export async function purgedThrough(database) {
  const [r] = await database.sql('select coalesce((select purged_through from hub.outbox_horizon), 0)::text as p');
  return Number(r.p);
}

/**
 * A producer that keeps emitting one event per transaction on its own
 * connection until stop(), riding out database outages: on an error it
 * reconnects (every retryMs) and goes on. rooms(i) names the rooms of the
 * i-th event. Whatever it believes, hub.outbox is the truth a test compares
 * with: a commit whose answer was lost may or may not have happened.
 * stop() resolves with {ok, errors}.
 */
export function startProducer(url, tenant, { rooms = () => ['all'], kind = 'tick', intervalMs = 2, retryMs = 50 } = {}) {
  let stopping = false;
  const st = { ok: 0, errors: 0, lastError: null };
  const run = (async () => {
    let c = null;
    let i = 0;
    while (!stopping) {
      try {
        if (!c) {
          c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
          c.on('error', () => {});
          await c.connect();
        }
        await c.query('select hub.emit($1, $2, $3::text[], $4::jsonb)', [tenant, kind, rooms(i), JSON.stringify({ i })]);
        st.ok++;
        i++;
        if (intervalMs) await sleep(intervalMs);
      } catch (err) {
        st.errors++;
        st.lastError = err.message;
        if (c) await c.end().catch(() => {});
        c = null;
        await sleep(retryMs);
      }
    }
    if (c) await c.end().catch(() => {});
  })();
  st.stop = async () => {
    stopping = true;
    await run;
    return { ok: st.ok, errors: st.errors, lastError: st.lastError };
  };
  return st;
}

/**
 * A PostgreSQL cluster of this file's own (a fresh temp directory), for
 * tests that stop, restart or starve the database, or purge its outbox.
 * Resolves with {dir, url, db, restart(), stop(), start(), destroy()}.
 */
export async function privateCluster(prefix = 'armonia-dur-') {
  const parent = mkdtempSync(join(tmpdir(), prefix));
  const dir = join(parent, 'pg');
  await pgScriptRun('start', dir);
  const url = readFileSync(join(dir, 'url'), 'utf8').trim();
  const cl = {
    dir,
    url,
    db: new Db(url),
    restart: () => pgScriptRun('restart', dir),
    stop: () => pgScriptRun('stop', dir),
    start: () => pgScriptRun('start', dir),
    /** A fresh pool (the old one's connections die with the server). */
    async reconnect() {
      await cl.db.close();
      cl.db = new Db(url);
      return cl.db;
    },
    async destroy() {
      await cl.db.close();
      await pgScriptRun('stop', dir).catch((err) => process.stderr.write(`${err.message}\n`));
      rmSync(parent, { recursive: true, force: true });
    },
  };
  return cl;
}

/** true when a new connection to url can run a query now. */
export async function dbAccepts(url, timeout = 1000) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeout });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Watches a database: polls every everyMs with a new connection and
 * records when it first refused (downAt) and when it first accepted again
 * after that (upAt), both nowMs(). up() resolves with upAt.
 */
export function watchDb(url, { everyMs = 20, onUp } = {}) {
  const w = { downAt: null, upAt: null, stopped: false };
  let resolveUp;
  const upP = new Promise((r) => (resolveUp = r));
  (async () => {
    while (!w.stopped) {
      const ok = await dbAccepts(url, 500);
      const t = nowMs();
      if (!ok && w.downAt === null) w.downAt = t;
      if (ok && w.downAt !== null) {
        w.upAt = t;
        if (onUp) await onUp(t);
        resolveUp(t);
        return;
      }
      await sleep(everyMs);
    }
  })();
  w.up = () => upP;
  w.stop = () => {
    w.stopped = true;
  };
  return w;
}

/**
 * Polls GET /healthz every everyMs and records each answer's status with
 * its time; stop() ends it. statuses() lists the distinct statuses in the
 * order they were first seen.
 */
export function watchHealth(port, { everyMs = 50 } = {}) {
  const h = { log: [], stopped: false };
  const run = (async () => {
    while (!h.stopped) {
      let status;
      try {
        status = (await httpGet(port, '/healthz', { timeout: 1000 })).status;
      } catch (err) {
        status = `error: ${err.message}`;
      }
      h.log.push({ t: nowMs(), status });
      await sleep(everyMs);
    }
  })();
  h.stop = async () => {
    h.stopped = true;
    await run;
  };
  h.statuses = () => {
    const out = [];
    for (const x of h.log) if (out[out.length - 1] !== x.status) out.push(x.status);
    return out;
  };
  return h;
}

/** VmRSS and VmHWM (kB) of a process, from /proc/<pid>/status. */
export function readRss(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number((text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm')) ?? [])[1]);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** Samples a process's RSS every everyMs; stop() resolves with {peakRssKb, hwmKb, startRssKb, samples}. */
export function sampleRss(pid, { everyMs = 25 } = {}) {
  const first = readRss(pid);
  const s = { peakRssKb: first.rssKb, startRssKb: first.rssKb, hwmKb: first.hwmKb, samples: 1 };
  const timer = setInterval(() => {
    try {
      const r = readRss(pid);
      s.peakRssKb = Math.max(s.peakRssKb, r.rssKb);
      s.hwmKb = Math.max(s.hwmKb, r.hwmKb);
      s.samples++;
    } catch {}
  }, everyMs);
  s.stop = () => {
    clearInterval(timer);
    try {
      const r = readRss(pid);
      s.peakRssKb = Math.max(s.peakRssKb, r.rssKb);
      s.hwmKb = Math.max(s.hwmKb, r.hwmKb);
    } catch {}
    return s;
  };
  return s;
}

/** Resolves like promise, or rejects naming `what` when it takes longer than ms. */
export async function within(ms, what, promise) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Takes the database of cluster away and back while stream is connected
 * to hub, and measures recovery: from the moment the database accepts
 * connections again (polled every 20 ms with new connections) to the
 * first event the stream receives after that. At that moment a probe
 * event is emitted to room 'all' through the poller's pool, so there is
 * an event to deliver even without a producer.
 *
 * how: 'restart' (scripts/pg.sh restart: pg_ctl restart -m fast),
 *      'stop' (scripts/pg.sh stop, downMs of outage, scripts/pg.sh start),
 *      'terminate' (pg_terminate_backend of the hub's connections; the
 *      database never stops accepting, so recovery is measured from the
 *      terminate).
 * duringOutage: with 'stop', an async function run while the database is down.
 * Resolves with {recoveryMs, probeMs, healthStatuses, terminated, probeId,
 * unseenDown (the poller never saw the database down)}.
 */
export async function outageAndRecovery(cluster, hub, stream, tenant, { how = 'restart', downMs = 5000, timeout = 30_000, duringOutage } = {}) {
  const health = watchHealth(hub.port);
  const before = stream.count;
  let upAt;
  let terminated;
  let probeId;
  let unseenDown = false;
  try {
    if (how === 'terminate') {
      const rows = await cluster.db.sql("select pg_terminate_backend(pid) as t from pg_stat_activity where application_name like 'armonia-hub%'");
      terminated = rows.filter((r) => r.t).length;
      upAt = nowMs();
      probeId = await cluster.db.emit(tenant, 'probe', ['all'], { how });
    } else {
      const watcher = watchDb(cluster.url);
      try {
        if (how === 'restart') {
          await cluster.restart();
        } else {
          await cluster.stop();
          // The outage itself: the database is away for downMs on purpose
          // (duringOutage, when given, checks things meanwhile).
          await Promise.all([sleep(downMs), duringOutage?.()]);
          await cluster.start();
        }
        if (watcher.downAt === null) {
          // Too quick for the poller to see it down: count from now (this
          // only makes the measured recovery shorter than the truth).
          upAt = nowMs();
          unseenDown = true;
        } else {
          await within(timeout, 'the database accepting connections again', watcher.up());
          upAt = watcher.upAt;
        }
      } finally {
        watcher.stop();
      }
      const database = await cluster.reconnect();
      probeId = await database.emit(tenant, 'probe', ['all'], { how });
    }
    await stream.untilId(probeId, { timeout });
  } finally {
    await health.stop();
  }
  let i = before;
  while (i < stream.count && stream.arrivals[i] < upAt) i++;
  const firstAfter = stream.arrivals[i];
  const probeAt = stream.arrivals[stream.ids.lastIndexOf(probeId)];
  return {
    recoveryMs: Math.round(firstAfter - upAt),
    probeMs: Math.round(probeAt - upAt),
    healthStatuses: health.statuses(),
    terminated,
    probeId,
    unseenDown,
  };
}

/**
 * Commits n events to room in one statement (one transaction) while
 * stream is connected to hub, sampling the hub's RSS until the stream
 * has them all. Resolves with {commitMs, deliverMs, peakRssKb, hwmKb,
 * startRssKb, first, last}.
 */
export async function burstWithRss(database, hub, stream, tenant, { n = 100_000, rooms = ['all'], payload = 0, timeout = 60_000 } = {}) {
  const sampler = sampleRss(hub.proc.pid);
  const t0 = nowMs();
  let r;
  let t1;
  try {
    r = await emitMany(database, tenant, n, { rooms, kind: 'burst', payload });
    t1 = nowMs();
    await stream.untilId(r.last, { timeout });
  } finally {
    sampler.stop();
  }
  const t2 = nowMs();
  return { commitMs: Math.round(t1 - t0), deliverMs: Math.round(t2 - t0), peakRssKb: sampler.peakRssKb, hwmKb: sampler.hwmKb, startRssKb: sampler.startRssKb, first: r.first, last: r.last };
}

/** GET /metrics of a hub, parsed into {name: number}. */
export async function hubMetrics(port) {
  const r = await httpGet(port, '/metrics');
  const out = {};
  for (const line of r.body.split('\n')) {
    const m = line.match(/^([a-z_]+)\s+(-?[0-9.e+]+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * Resolves once the hub has written at least minSent frames in all
 * (armonia_frames_sent_total) and then nothing more for stillMs while
 * the caller knows there is more to send: a connection that does not read
 * is backed up. (armonia_frames_queued_total counts live frames only, not
 * replayed ones, so the stall of frames_sent is what is observed.)
 */
export async function hubBackedUp(port, { minSent = 100, stillMs = 300, timeout = 15_000 } = {}) {
  const deadline = nowMs() + timeout;
  let last = null;
  let since = nowMs();
  for (;;) {
    const m = await hubMetrics(port);
    const sent = m.armonia_frames_sent_total;
    if (last === null || sent !== last) {
      last = sent;
      since = nowMs();
    } else if (sent >= minSent && nowMs() - since >= stillMs) {
      return { sent, queuedLive: m.armonia_frames_queued_total };
    }
    if (nowMs() > deadline) throw new Error(`the hub did not back up within ${timeout} ms: ${JSON.stringify(m)}`);
    await sleep(50);
  }
}
