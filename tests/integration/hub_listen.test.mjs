// hub_listen.test.mjs - the hub's own listening socket (hub/listener.c):
// a port already taken stops the hub with a line naming it; running out
// of file descriptors pauses accepting instead of spinning, and the
// connections waiting in the kernel's queue meanwhile are served, none
// lost, once descriptors are free again.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { useLifecycle, startHub, runHub, db, connect, mintToken, assertUsable, sleep } from './lib/harness.mjs';

useLifecycle();

const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU milliseconds (user + system) a process has used so far. */
function cpuMs(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / HZ;
}

let database, tenant;

before(async () => {
  database = await db();
  tenant = await database.newTenant('listen');
});

test('PORT already in use: the hub exits 1 with a line naming the address', async () => {
  const taken = createServer();
  await new Promise((r) => taken.listen(0, '127.0.0.1', r));
  const { port } = taken.address();
  try {
    const r = await runHub({
      env: { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/armonia', JWT_SECRET_KEY: 'listen-test-secret', PORT: port, HUB_BIND: '127.0.0.1' },
    });
    const shown = `exit ${r.code} signal ${r.signal}\nstderr: ${r.stderr}`;
    assert.equal(r.timedOut, false, `the hub kept running on a port already in use:\n${shown}`);
    assert.equal(r.code, 1, `expected exit status 1:\n${shown}`);
    assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: Address already in use`), shown);
  } finally {
    taken.close();
  }
});

test('out of file descriptors: accepting pauses without spinning; the queued connections are welcomed once some close', async () => {
  // 64 descriptors: the hub's own (stdio, event loop, database, listener)
  // leave room for a few dozen clients; 80 are opened at once.
  const hub = await startHub({ wrap: ['prlimit', '--nofile=64'] });
  const total = 80;
  const welcomed = new Set();
  const clients = [];
  const pending = [];
  for (let i = 0; i < total; i++) {
    const token = mintToken(hub.secret, { sub: `fd-${i}`, tenant, role: 'resident' });
    pending.push(
      connect(hub.wsUrl, { token, label: `fd-${i}`, handshakeTimeout: 30_000 }).then(async (c) => {
        clients[i] = c;
        const f = await c.next({ where: (x) => x?.type === 'welcome' || x?.type === 'error', timeout: 30_000 });
        assert.equal(f.type, 'welcome', `fd-${i}: expected a welcome, got ${JSON.stringify(f)}`);
        welcomed.add(i);
      }),
    );
  }
  // Wait until the count stops growing: the descriptors are used up.
  let last = -1;
  for (let still = 0; still < 5; ) {
    await sleep(200);
    if (welcomed.size === last) still++;
    else (still = 0), (last = welcomed.size);
  }
  const stuck = total - welcomed.size;
  assert.ok(stuck > 0 && welcomed.size > 0, `expected the descriptor limit to hold some of ${total} connections back; ${welcomed.size} were welcomed`);
  assert.match(hub.logs(), /cannot accept connections \(Too many open files\); pausing/, 'no warning about running out of descriptors');

  // Paused, not spinning: a second of waiting costs the hub little CPU.
  const cpu0 = cpuMs(hub.proc.pid);
  await sleep(1000);
  const spent = cpuMs(hub.proc.pid) - cpu0;
  assert.ok(spent < 400, `the hub used ${spent} ms of CPU in 1 s while unable to accept (spinning?)`);

  // The connections it holds are still served.
  const first = [...welcomed][0];
  await assertUsable(clients[first]);

  // Closing some frees descriptors: every waiting connection gets its welcome.
  const closing = [...welcomed].slice(0, stuck + 5);
  await Promise.all(closing.map((i) => (clients[i].close(), clients[i].closed)));
  await Promise.all(pending);
  assert.equal(welcomed.size, total, `${total - welcomed.size} connections were never welcomed`);
  assert.equal(hub.exit, null, `the hub exited: ${JSON.stringify(hub.exit)}`);
});
