// harness.mjs - what every hub_*.test.mjs file imports.
//
// Re-exports the pieces (db.mjs, hub.mjs, client.mjs, token.mjs) and adds
// the few steps every test repeats: log in and expect a welcome, expect an
// error frame of a given code, expect the unauthorized error and close 4001.
// useLifecycle() installs the file's hooks: a failing test prints the output
// of the hubs it used, and the file ends every hub, client and pool it made.

import assert from 'node:assert/strict';
import { beforeEach, afterEach, after } from 'node:test';
import { connect, closeAllClients } from './client.mjs';
import { mintToken } from './token.mjs';
import { startedHubs, stopAllHubs, badlyEndedHubs } from './hub.mjs';
import { closeDb } from './db.mjs';

export * from './client.mjs';
export * from './token.mjs';
export * from './hub.mjs';
export * from './db.mjs';

const LOG_TAIL_LINES = 150;

/** Installs the per-file hooks; call once at the top of a test file. */
export function useLifecycle() {
  let firstHub = 0;
  beforeEach(() => {
    firstHub = startedHubs.length;
  });
  afterEach((t) => {
    if (t.passed) return;
    // Hubs used by this test: started during it, or still running from before.
    const used = startedHubs.filter((h, i) => i >= firstHub || !h.exit);
    for (const h of used) {
      // Print each line once, even when several tests fail on the same hub.
      const from = Math.max(h.printed ?? 0, h.output.length - LOG_TAIL_LINES);
      const lines = h.output.slice(from);
      h.printed = h.output.length;
      if (lines.length === 0) continue;
      process.stderr.write(`\n=== armonia-hub on port ${h.port} (test "${t.name}" failed) ${h.exit ? `exited ${JSON.stringify(h.exit)}` : 'running'}; ${from > 0 ? `lines ${from + 1}..${h.output.length}` : 'all its output'} ===\n${lines.join('\n')}\n=== end ===\n`);
    }
  });
  after(async () => {
    closeAllClients();
    await stopAllHubs();
    await closeDb();
    // A hub that crashed or failed to stop cleanly fails the file, with its output.
    const bad = badlyEndedHubs();
    if (bad.length)
      throw new Error(bad.map((h) => `armonia-hub on port ${h.port} ended badly (${h.hungOnStop ? 'ignored SIGTERM, ' : ''}exit ${JSON.stringify(h.exit)}); last lines:\n${h.output.slice(-60).join('\n')}`).join('\n\n'));
  });
}

/**
 * Connects with a token for claims (signed with the hub's secret) and
 * resolves with the client once its welcome arrived (client.welcome).
 * Fails with the frame received instead, or the close, if there was no
 * welcome. opts go to connect() (format, header, since, label, ...).
 */
export async function login(hub, claims, opts = {}) {
  const token = opts.token ?? mintToken(hub.secret, claims);
  const label = opts.label ?? `${claims.sub ?? '?'}@${claims.tenant ?? '?'}(${opts.format ?? 'json'}${opts.header ? ', header' : ''})`;
  const c = await connect(hub.wsUrl, { tls: hub.tls, ...opts, token, label });
  const f = await c.next({ where: (x) => x?.type === 'welcome' || x?.type === 'error', timeout: opts.timeout ?? 5000 });
  assert.equal(f.type, 'welcome', `${label}: expected a welcome, got ${JSON.stringify(f)}`);
  c.welcome = f;
  c.claims = claims;
  c.token = token;
  return c;
}

/** Takes the next error frame and checks its code (and ref when given). */
export async function expectError(client, code, { ref, timeout } = {}) {
  const f = await client.next({ type: 'error', timeout });
  assert.equal(f.code, code, `${client.label}: expected error code '${code}', got ${JSON.stringify(f)}`);
  assert.equal(typeof f.message, 'string', `${client.label}: error frame without a message: ${JSON.stringify(f)}`);
  assert.ok(f.message.length > 0, `${client.label}: error frame with an empty message: ${JSON.stringify(f)}`);
  if (ref !== undefined) assert.deepEqual(f.ref, ref, `${client.label}: the error does not echo ref ${JSON.stringify(ref)}: ${JSON.stringify(f)}`);
  return f;
}

/**
 * The refusal every client sees the same way: an error frame with code
 * unauthorized, then close code 4001. No welcome may come first.
 */
export async function expectUnauthorized(client, { timeout = 5000 } = {}) {
  const f = await client.next({ where: (x) => x?.type === 'error' || x?.type === 'welcome', timeout });
  assert.equal(f.type, 'error', `${client.label}: expected to be refused, got ${JSON.stringify(f)}`);
  assert.equal(f.code, 'unauthorized', `${client.label}: expected error code 'unauthorized', got ${JSON.stringify(f)}`);
  assert.ok(typeof f.message === 'string' && f.message.length > 0, `${client.label}: error without a message: ${JSON.stringify(f)}`);
  const closed = await client.closedWithin(timeout);
  assert.equal(closed.code, 4001, `${client.label}: expected close 4001 after the unauthorized error, got ${closed.code} '${closed.reason}'`);
  return f;
}

/** ping → pong round trip: proves the connection is open and still served. */
export async function assertUsable(client, ref = `alive-${Math.random().toString(36).slice(2, 8)}`) {
  client.send({ type: 'ping', ref });
  const f = await client.next({ type: 'pong', where: (x) => x.ref === ref });
  assert.deepEqual(f, { type: 'pong', ref });
}

/**
 * Emits a 'marker' event to room 'all' of tenant and waits until each
 * client received it. Events reach a connection in seq order, so anything
 * committed before the marker that a client was going to get has arrived
 * once this resolves: the sleep-free way to check a client got nothing.
 * Resolves with the marker's id.
 */
export async function barrier(database, tenant, clients) {
  const id = await database.emit(tenant, 'marker', ['all'], { barrier: true });
  await Promise.all(clients.map((c) => c.next({ type: 'event', where: (e) => e.id === id })));
  return id;
}

/** The events queued on client (not yet taken), optionally of one kind. */
export function pendingEvents(client, kind) {
  return client.inbox.filter((f) => f?.type === 'event' && (!kind || f.kind === kind));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
