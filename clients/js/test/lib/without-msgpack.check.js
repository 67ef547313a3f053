// without-msgpack.check.js - run by unit.msgpack.test.js under
// block-msgpack.js: the package loads and speaks JSON without
// @msgpack/msgpack, and asking for MessagePack says what to install.
// Exits non-zero (an assertion) when either fails.
import assert from 'node:assert/strict';
import { createHubClient } from '../../src/index.js';
import { FakeClock, FakeWebSocket, fakeJwt, flush } from './fakes.js';

await assert.rejects(import('@msgpack/msgpack'), { code: 'ERR_MODULE_NOT_FOUND' }, 'the block is in place');

const getToken = () => fakeJwt({ sub: 'g1', tenant: 't', role: 'guard', exp: 9e9 });

/**
 * Flushes until cond() holds (10 s at most): module hooks run on a thread
 * of their own, so the failed import settles after an unknown number of
 * turns of the event loop on a loaded machine.
 */
async function until(cond, what) {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await flush();
  }
}

// MessagePack asked for: one 'error' (config) naming the package, then closed; no socket.
{
  const hub = createHubClient('ws://hub.test/ws', { WebSocket: FakeWebSocket, clock: new FakeClock(), getToken, format: 'msgpack' });
  const errors = [];
  const states = [];
  hub.on('error', (e) => errors.push(e));
  hub.on('state', (s) => states.push(s));
  await until(() => hub.state === 'closed', 'the msgpack client to stop');
  await flush();
  assert.equal(errors.length, 1, `one error: ${errors.map((e) => e.message)}`);
  assert.equal(errors[0].code, 'config');
  assert.match(errors[0].message, /format 'msgpack' needs the @msgpack\/msgpack package/);
  assert.match(errors[0].message, /npm install @msgpack\/msgpack/);
  assert.equal(hub.state, 'closed');
  assert.equal(states.at(-1).state, 'closed');
  assert.equal(FakeWebSocket.all.length, 0, 'no socket opened');
}

// JSON: connects as usual.
{
  const hub = createHubClient('ws://hub.test/ws', { WebSocket: FakeWebSocket, clock: new FakeClock(), getToken });
  const errors = [];
  hub.on('error', (e) => errors.push(e));
  await until(() => FakeWebSocket.all.length === 1, 'the JSON client to open a socket');
  const ws = FakeWebSocket.last;
  assert.deepEqual(ws.protocols, ['armonia.v1.json']);
  ws.open();
  assert.equal(ws.sent[0].type, 'auth');
  ws.welcome();
  await until(() => hub.state === 'open', 'the welcome');
  ws.deliver({ type: 'event', id: 1, seq: 1, kind: 'visitor', priority: 'high', ack: true, ts: 1, room: 'unit:1', data: { name: 'Ana' } });
  assert.deepEqual(errors, []);
  await hub.close();
}
console.log('ok: JSON without @msgpack/msgpack');
