// hub_health.test.mjs - /healthz follows the database listener, and the
// hub rides out a database restart without dropping its clients
// (docs/protocol.md "HTTP on the same port"). This file stops its database,
// so it uses a cluster of its own (a fresh directory), never the shared
// HUB_PGDIR one.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  useLifecycle, startHub, login, httpGet, waitHealth, assertUsable, pgScriptRun, Db,
} from './lib/harness.mjs';

useLifecycle();

let parent, pgdir, url, database, tenant, hub, guard;

before(async () => {
  parent = mkdtempSync(join(tmpdir(), 'armonia-health-'));
  pgdir = join(parent, 'pg');
  await pgScriptRun('start', pgdir);
  url = readFileSync(join(pgdir, 'url'), 'utf8').trim();
  database = new Db(url);
  tenant = await database.newTenant('health');
  hub = await startHub({ databaseUrl: url });
  guard = await login(hub, { sub: 'g-health', tenant, role: 'guard' });
});

after(async () => {
  if (database) await database.close();
  if (pgdir) await pgScriptRun('stop', pgdir).catch((err) => process.stderr.write(`${err.message}\n`));
  if (parent) rmSync(parent, { recursive: true, force: true });
});

test('/healthz → 200 {"status":"ok"} while the database is up', async () => {
  const r = await httpGet(hub.port, '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
});

test('database stopped → /healthz 503 within 10 s; the WebSocket client stays connected and served', async () => {
  await pgScriptRun('stop', pgdir);
  const r = await waitHealth(hub.port, 503, 10_000, () => hub.exit && JSON.stringify(hub.exit));
  assert.equal(r.status, 503);
  assert.equal(guard.closeInfo, null, `the client was disconnected: ${JSON.stringify(guard.closeInfo)}`);
  await assertUsable(guard);
  const again = await httpGet(hub.port, '/healthz');
  assert.equal(again.status, 503, 'healthz went back to 200 with the database still down');
});

test('database started again → /healthz 200 within 15 s; an event emitted afterwards reaches the still-connected client', async () => {
  await pgScriptRun('start', pgdir);
  const newUrl = readFileSync(join(pgdir, 'url'), 'utf8').trim();
  assert.equal(newUrl, url, 'scripts/pg.sh start gave the cluster a new address: the hub cannot be expected to follow');
  await waitHealth(hub.port, 200, 15_000, () => hub.exit && JSON.stringify(hub.exit));
  assert.equal(guard.closeInfo, null, `the client was disconnected: ${JSON.stringify(guard.closeInfo)}`);
  // A fresh pool: the old one's connections died with the server.
  await database.close();
  database = new Db(url);
  const id = await database.emit(tenant, 'panic', ['role:guard'], { unitId: '101' }, { priority: 'critical', ack: true });
  const e = await guard.next({ type: 'event', where: (f) => f.id === id, timeout: 10_000 });
  assert.equal(e.kind, 'panic');
  assert.equal(e.room, 'role:guard');
  await assertUsable(guard);
});
