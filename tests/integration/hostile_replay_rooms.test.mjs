// hostile_replay_rooms.test.mjs - a resume by a connection that has left
// every room (issue 16, item 1).
//
// The replay query names the connection's rooms as a text[] literal. A
// client that authenticates with since and, in the same write, leaves all,
// user:<sub> and role:<role> has no room when the first replay page is
// asked for; the literal for no rooms was one byte too small (a heap
// overflow: ASan aborts the sanitizer build, a release build corrupts its
// heap silently). Now such a connection is caught up at once, without a
// query, and continues live in the rooms it joins later.
//
// The four frames go out in one write on a raw socket, as an attacker
// would send them, so they are all read before the replay's first page
// (the tenant is known to the hub already, so the auth frame is taken at
// once, without a database round trip).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useLifecycle, startHub, db, mintToken, login, assertUsable, httpGet } from './lib/harness.mjs';
import { RawClient, maskedText } from './lib/raw.mjs';

useLifecycle();

let database;
let hub;

before(async () => {
  database = await db();
  hub = await startHub();
});

test('auth with since:0 and leaving every automatic room in the same write: the hub survives, the replay is empty, and the connection goes live in rooms it joins later', async () => {
  const tenant = await database.newTenant('noroom');
  const sub = `guard-${randomBytes(3).toString('hex')}`;
  const token = mintToken(hub.secret, { sub, tenant, role: 'guard' });
  // Another connection of the tenant first: the hub then knows the tenant
  // and authenticates the raw client's auth frame at once, so the frames
  // after it are read while the replay's first query is on its way.
  const warm = await login(hub, { sub: 'guard-warm', tenant, role: 'guard' });
  // Something to replay, had the connection kept its rooms (routed live
  // already: the replay is all the raw client could get it from).
  const before = await database.emit(tenant, 'note', ['all'], { n: 1 });
  await warm.next({ type: 'event', where: (e) => e.id === before, timeout: 15_000 });
  const raw = await RawClient.open(hub.port);
  try {
    raw.sock.write(Buffer.concat([
      maskedText(JSON.stringify({ type: 'auth', token, since: 0, ref: 'a' })),
      maskedText(JSON.stringify({ type: 'unsubscribe', room: 'all' })),
      maskedText(JSON.stringify({ type: 'unsubscribe', room: `user:${sub}` })),
      maskedText(JSON.stringify({ type: 'unsubscribe', room: 'role:guard' })),
    ]));
    const welcome = await raw.until((f) => f.type === 'welcome' || f.type === 'error', 'a welcome');
    assert.equal(welcome.type, 'welcome', `expected a welcome, got ${JSON.stringify(welcome)}`);
    await raw.until((f) => f.type === 'unsubscribed' && f.room === 'role:guard', 'the last unsubscribed');
    // A second resume, asked for now, is answered after the raw client's:
    // once it has its replayed event, the raw client's first page was asked
    // for (in no room) too.
    const second = await login(hub, { sub: 'guard-2', tenant, role: 'guard' }, { since: 0 });
    await second.next({ type: 'event', where: (e) => e.id === before, timeout: 15_000 });
    raw.send({ type: 'ping', ref: 'p1' });
    await raw.until((f) => f.type === 'pong' && f.ref === 'p1', 'a pong after the replay');
    assert.equal(hub.exit, null, `the hub exited: ${JSON.stringify(hub.exit)}`);

    // It got nothing from the outbox: it was in no room.
    assert.ok(!raw.frames.some((f) => f.type === 'event'), `events replayed to a connection in no room: ${JSON.stringify(raw.frames)}`);
    assert.ok(!raw.frames.some((f) => f.type === 'error' && f.code !== 'resume_gap'), `errors: ${JSON.stringify(raw.frames)}`);

    // It is live: an event to a room it joins now arrives, the older one does not.
    raw.send({ type: 'subscribe', room: 'all' });
    await raw.until((f) => f.type === 'subscribed' && f.room === 'all', 'subscribed all');
    const after = await database.emit(tenant, 'note', ['all'], { n: 2 });
    const ev = await raw.until((f) => f.type === 'event', 'the live event');
    assert.equal(ev.id, after, `expected the live event ${after} (not the earlier ${before}), got ${JSON.stringify(ev)}`);
  } finally {
    raw.destroy();
  }

  // The hub still serves everyone else.
  const r = await httpGet(hub.port, '/healthz');
  assert.equal(r.status, 200, `/healthz: ${r.status} ${r.body}`);
  const c = await login(hub, { sub: 'guard-3', tenant, role: 'guard' }, { since: 0 });
  await c.next({ type: 'event', where: (e) => e.id === before, timeout: 15_000 });
  await assertUsable(c);
  await assertUsable(warm);
});
