// Unit tests of the client's state machine, with a fake clock and a fake
// WebSocket: the test plays the hub frame by frame.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHubClient, HubError } from '../src/index.js';
import { FakeClock, FakeWebSocket, fakeJwt, flush } from './lib/fakes.js';

const URL_ = 'ws://hub.test:3001/ws';

/** A client on fake time; records states, events and errors. */
function setup(opts = {}) {
  const clock = new FakeClock();
  let tokenCalls = 0;
  const tokens = [];
  const getToken =
    opts.getToken ??
    ((ctx) => {
      tokenCalls++;
      const t = fakeJwt({ sub: 'g1', tenant: 't', role: 'guard', exp: Math.floor(clock.now() / 1000) + (opts.ttlS ?? 3600), n: tokenCalls });
      tokens.push({ t, ctx });
      return t;
    });
  const random = opts.random ?? (() => 0.5);
  const hub = createHubClient(URL_, { WebSocket: FakeWebSocket, clock, random, ...opts, getToken });
  const states = [];
  const events = [];
  const errors = [];
  hub.on('state', (s) => states.push(s));
  hub.on('event', (e) => events.push(e));
  hub.on('error', (e) => errors.push(e));
  return { hub, clock, states, events, errors, tokens, get tokenCalls() { return tokenCalls; } };
}

/** Lets the client open a socket, opens it and sends the welcome; returns the socket. */
async function connectNow(welcome = {}) {
  await flush();
  const ws = FakeWebSocket.last;
  assert.ok(ws, 'the client opened no socket');
  ws.open();
  ws.welcome(welcome);
  await flush();
  return ws;
}

const ev = (id, seq, extra = {}) => ({ type: 'event', id, seq, kind: 'panic', priority: 'critical', ack: false, ts: 1, room: 'role:guard', data: {}, ...extra });

beforeEach(() => FakeWebSocket.reset());

test('authenticates with the first frame, never in the URL, in JSON', async () => {
  const s = setup();
  await flush();
  const ws = FakeWebSocket.last;
  assert.equal(ws.url, URL_);
  assert.deepEqual(ws.protocols, ['armonia.v1.json']);
  assert.equal(s.hub.state, 'connecting');
  ws.open();
  assert.equal(ws.sent.length, 1);
  const auth = ws.sent[0];
  assert.equal(auth.type, 'auth');
  assert.equal(auth.token, s.tokens[0].t);
  assert.equal('since' in auth, false, 'no since on a first connection without the option');
  ws.welcome({ last_seq: 77 });
  await flush();
  assert.equal(s.hub.state, 'open');
  assert.equal(s.hub.lastSeq, 77, 'the resume point starts at the tenant newest seq');
  assert.deepEqual(s.states.map((x) => x.state), ['connecting', 'open']);
  await s.hub.close();
});

test('a token in the URL is refused', () => {
  assert.throws(() => createHubClient('ws://h/ws?token=abc', { getToken: () => 'x', WebSocket: FakeWebSocket }), /token/);
});

test('the since option goes in the first auth frame', async () => {
  const s = setup({ since: 41 });
  await flush();
  FakeWebSocket.last.open();
  assert.equal(FakeWebSocket.last.sent[0].since, 41);
  FakeWebSocket.last.welcome({ last_seq: 90 });
  await flush();
  assert.equal(s.hub.lastSeq, 41, 'the resume point stays at since until events arrive');
  await s.hub.close();
});

test('after a drop it resumes from the last delivered seq, rejoins rooms and drops duplicates', async () => {
  const s = setup({ rooms: ['unit:302'] });
  const ws1 = await connectNow({ last_seq: 10 });
  assert.deepEqual(ws1.sentOf('subscribe').map((f) => f.room), ['unit:302']);
  ws1.deliver(ev(1, 11));
  ws1.deliver(ev(2, 12));
  ws1.deliver(ev(2, 12)); // a duplicate frame must not reach the app twice
  assert.deepEqual(s.events.map((e) => e.id), [1, 2]);
  assert.equal(s.hub.lastSeq, 12);

  ws1.serverClose(1006);
  const st = s.states.at(-1);
  assert.equal(st.state, 'reconnecting');
  assert.equal(st.attempt, 1);
  assert.equal(st.delay, 250, 'full jitter: random 0.5 of the 500 ms ceiling');
  assert.equal(st.code, 1006);
  assert.equal(FakeWebSocket.all.length, 1, 'no reconnection before the delay');
  await s.clock.advance(249);
  assert.equal(FakeWebSocket.all.length, 1);
  await s.clock.advance(1);
  const ws2 = FakeWebSocket.last;
  assert.notEqual(ws2, ws1);
  ws2.open();
  assert.equal(ws2.sent[0].type, 'auth');
  assert.equal(ws2.sent[0].since, 12);
  assert.equal(s.tokenCalls, 1, 'the token is reused when the hub did not reject it');
  ws2.welcome({ last_seq: 13 });
  await flush();
  assert.deepEqual(ws2.sentOf('subscribe').map((f) => f.room), ['unit:302']);
  ws2.deliver(ev(2, 12)); // replayed again: the app already has it
  ws2.deliver(ev(3, 13));
  assert.deepEqual(s.events.map((e) => e.id), [1, 2, 3]);
  assert.equal(s.hub.lastSeq, 13);
  await s.hub.close();
});

test('consecutive failures back off exponentially up to 30 s; a stable connection resets it', async () => {
  const s = setup({ random: () => 0.999 });
  await flush();
  const delays = [];
  for (let i = 0; i < 9; i++) {
    FakeWebSocket.last.serverClose(1006);
    const st = s.states.at(-1);
    assert.equal(st.state, 'reconnecting');
    assert.equal(st.attempt, i + 1);
    delays.push(st.delay);
    await s.clock.advance(st.delay);
    await flush();
  }
  assert.deepEqual(delays, [499, 999, 1998, 3996, 7992, 15984, 29970, 29970, 29970]);

  // Open, but drop after 9 s: not stable, the count goes on.
  let ws = FakeWebSocket.last;
  ws.open();
  ws.welcome();
  await s.clock.advance(9_000);
  ws.serverClose(1006);
  assert.equal(s.states.at(-1).attempt, 10);
  await s.clock.advance(s.states.at(-1).delay);
  // Open for 10 s: stable, the next drop starts over at 0.5 s.
  ws = FakeWebSocket.last;
  ws.open();
  ws.welcome();
  await s.clock.advance(10_000);
  ws.serverClose(1006);
  assert.equal(s.states.at(-1).attempt, 1);
  assert.equal(s.states.at(-1).delay, 499);
  await s.hub.close();
});

test('failed reconnect attempts are reconnecting states with attempt, delayMs and reason, not error events', async () => {
  const s = setup();
  const ws1 = await connectNow();
  ws1.fail('read ECONNRESET');
  let st = s.states.at(-1);
  assert.equal(st.state, 'reconnecting');
  assert.equal(st.attempt, 1);
  assert.equal(st.delayMs, 250);
  assert.equal(st.delay, 250, 'the older name stays');
  assert.equal(st.code, 1006);
  assert.match(st.reason, /ECONNRESET/);
  assert.equal(st.error.code, 'transport');
  // The hub stays down: three refused attempts, each one state, never an 'error'.
  for (let attempt = 2; attempt <= 4; attempt++) {
    await s.clock.advance(st.delayMs);
    FakeWebSocket.last.fail('connect ECONNREFUSED 127.0.0.1:3001');
    st = s.states.at(-1);
    assert.equal(st.state, 'reconnecting');
    assert.equal(st.attempt, attempt);
    assert.equal(st.delayMs, Math.floor(0.5 * Math.min(30_000, 500 * 2 ** (attempt - 1))));
    assert.match(st.reason, /ECONNREFUSED/);
    assert.ok(st.error instanceof HubError);
  }
  assert.deepEqual(s.errors, [], 'no error event for attempts the client retries itself');
  // A plain close (no transport error) carries no error.
  await s.clock.advance(st.delayMs);
  const ws = FakeWebSocket.last;
  ws.open();
  ws.welcome();
  await flush();
  ws.serverClose(1001);
  assert.equal(s.states.at(-1).error, undefined);
  assert.equal(s.states.at(-1).reason, 'server shutting down');
  await s.hub.close();
});

test('getToken() throwing while connecting is a reconnecting state with error code token; unauthorized stays an error', async () => {
  let calls = 0;
  const clockRef = {};
  const s = setup({
    getToken: () => {
      calls++;
      if (calls <= 2) throw new Error('backend unreachable');
      return fakeJwt({ sub: 'g1', tenant: 't', role: 'guard', exp: Math.floor(clockRef.clock.now() / 1000) + 3600 });
    },
  });
  clockRef.clock = s.clock;
  await flush();
  let st = s.states.at(-1);
  assert.equal(st.state, 'reconnecting');
  assert.equal(st.error.code, 'token');
  assert.match(st.reason, /getToken\(\) failed: backend unreachable/);
  await s.clock.advance(st.delayMs);
  st = s.states.at(-1);
  assert.equal(st.state, 'reconnecting');
  assert.equal(st.attempt, 2);
  assert.equal(st.error.code, 'token');
  assert.equal(FakeWebSocket.all.length, 0);
  await s.clock.advance(st.delayMs);
  const ws = FakeWebSocket.last;
  ws.open();
  assert.deepEqual(s.errors, []);
  // The hub refusing the token is for the app to know: an 'error', then the 4001 close.
  ws.deliver({ type: 'error', code: 'unauthorized', message: 'missing claim userId' });
  ws.serverClose(4001, 'unauthorized');
  assert.deepEqual(s.errors.map((e) => e.code), ['unauthorized']);
  assert.equal(s.states.at(-1).state, 'reconnecting');
  assert.equal(s.states.at(-1).error, undefined);
  await s.hub.close();
});

test('close 4001 asks getToken() again before reconnecting; other codes do not', async () => {
  const s = setup();
  let ws = await connectNow();
  ws.serverClose(4008, 'slow');
  assert.equal(s.states.at(-1).code, 4008);
  await s.clock.advance(s.states.at(-1).delay);
  ws = FakeWebSocket.last;
  ws.open();
  assert.equal(s.tokenCalls, 1);
  ws.welcome();
  await flush();
  ws.deliver({ type: 'error', code: 'unauthorized', message: 'token expired' });
  ws.serverClose(4001, '');
  assert.equal(s.errors.at(-1).code, 'unauthorized');
  assert.equal(s.states.at(-1).code, 4001);
  await s.clock.advance(s.states.at(-1).delay);
  assert.equal(s.tokenCalls, 2, 'a new token is asked for after 4001');
  assert.equal(s.tokens[1].ctx.reason, 'unauthorized');
  FakeWebSocket.last.open();
  assert.equal(FakeWebSocket.last.sent[0].token, s.tokens[1].t);
  await s.hub.close();
});

test('1001 (server draining) waits a jittered delay of up to 5 s, not an instant storm', async () => {
  const s = setup({ random: () => 0.5 });
  const ws = await connectNow();
  ws.serverClose(1001, 'shutting down');
  const st = s.states.at(-1);
  assert.equal(st.state, 'reconnecting');
  assert.equal(st.code, 1001);
  assert.equal(st.delay, 2500);
  await s.clock.advance(2499);
  assert.equal(FakeWebSocket.all.length, 1);
  await s.clock.advance(1);
  assert.equal(FakeWebSocket.all.length, 2);
  await s.hub.close();
});

test('pings every 20 s; a connection silent for 45 s is dropped and replaced', async () => {
  const s = setup();
  const ws = await connectNow();
  ws.autoPong = false;
  await s.clock.advance(20_000);
  assert.equal(ws.sentOf('ping').length, 1);
  ws.deliver({ type: 'pong' }); // the last frame: t = 20 s
  await s.clock.advance(20_000);
  assert.equal(ws.sentOf('ping').length, 2);
  await s.clock.advance(24_999); // t = 64.999 s
  assert.equal(ws.terminated, false, 'not dead before 45 s of silence');
  await s.clock.advance(1); // t = 65 s
  assert.equal(ws.terminated, true, 'the silent socket is abandoned');
  const st = s.states.find((x) => x.state === 'reconnecting');
  assert.equal(st.code, 4000);
  assert.match(st.reason, /no frame/);
  await s.clock.advance(st.delay);
  assert.equal(FakeWebSocket.all.length, 2, 'a new socket was opened');
  await s.hub.close();
});

test('frames keep a connection alive', async () => {
  const s = setup();
  const ws = await connectNow();
  ws.autoPong = false;
  for (let i = 0; i < 10; i++) {
    await s.clock.advance(30_000);
    ws.deliver({ type: 'pong' });
  }
  assert.equal(ws.terminated, false);
  assert.equal(s.hub.state, 'open');
  await s.hub.close();
});

test('no welcome within 15 s: the attempt is abandoned', async () => {
  const s = setup();
  await flush();
  FakeWebSocket.last.open();
  await s.clock.advance(15_000);
  assert.equal(FakeWebSocket.all[0].terminated, true);
  assert.equal(s.states.at(-1).state, 'reconnecting');
  await s.hub.close();
});

test('refreshes the token in-band shortly before exp, on the same socket', async () => {
  const s = setup({ ttlS: 600, rooms: ['unit:1'] });
  const ws = await connectNow();
  assert.equal(s.tokenCalls, 1);
  await s.clock.advance(539_000);
  assert.equal(s.tokenCalls, 1, 'not before exp - 60 s');
  await s.clock.advance(1_000);
  assert.equal(s.tokenCalls, 2);
  assert.equal(s.tokens[1].ctx.reason, 'refresh');
  const auths = ws.sentOf('auth');
  assert.equal(auths.length, 2, 'a second auth frame on the same socket');
  assert.equal(auths[1].token, s.tokens[1].t);
  assert.equal(FakeWebSocket.all.length, 1);
  ws.deliver({ type: 'welcome', session: 's1', user: 'u1', tenant: 't', role: 'guard', rooms: ['all', 'unit:1'], last_seq: 5, ref: auths[1].ref });
  await flush();
  assert.equal(s.hub.state, 'open');
  assert.equal(ws.sentOf('subscribe').length, 1, 'a refresh does not subscribe again');
  // The next refresh is planned from the new token.
  await s.clock.advance(600_000 - 60_000);
  assert.equal(s.tokenCalls, 3);
  await s.hub.close();
});

test('subscribe resolves on the hub reply; forbidden rejects with .code and is not retried', async () => {
  const s = setup();
  const ws = await connectNow();
  const ok = s.hub.subscribe('unit:302');
  const no = s.hub.subscribe('role:admin');
  const [sub1, sub2] = ws.sentOf('subscribe');
  ws.deliver({ type: 'error', code: 'forbidden', message: 'guards may not join role:admin', ref: sub2.ref });
  ws.deliver({ type: 'subscribed', room: 'unit:302', ref: sub1.ref });
  assert.equal(await ok, 'unit:302');
  await assert.rejects(no, (err) => err instanceof HubError && err.code === 'forbidden' && err.room === 'role:admin');
  assert.deepEqual(s.hub.rooms, ['unit:302']);
  assert.equal(s.errors.length, 0, 'a rejected promise is the report: no error event too');
  await assert.rejects(s.hub.subscribe('bad room!'), (err) => err.code === 'bad_request');
  await s.hub.close();
});

test('the extra rooms go in every auth frame; rooms the welcome lists are not subscribed again; a refusal naming the room forgets it', async () => {
  const s = setup({ rooms: ['unit:302', 'unit:303'] });
  await flush();
  const ws = FakeWebSocket.last;
  ws.open();
  const auth = ws.sent[0];
  assert.deepEqual(auth.rooms, ['unit:302', 'unit:303']);
  const p = s.hub.subscribe('unit:303');
  ws.deliver({ type: 'error', code: 'forbidden', message: 'this role may not subscribe to that room', room: 'unit:303', ref: auth.ref });
  await assert.rejects(p, (err) => err instanceof HubError && err.code === 'forbidden' && err.room === 'unit:303');
  ws.welcome({ rooms: ['all', 'unit:302'] });
  await flush();
  assert.equal(ws.sentOf('subscribe').length, 0, 'a room joined at auth was subscribed again');
  assert.deepEqual(s.hub.rooms, ['unit:302']);
  assert.equal(s.errors.length, 0, 'the rejected promise was the report');

  // A refusal nobody waits for is an error event; a hub that ignored rooms gets subscribes.
  ws.serverClose(1006);
  await s.clock.advance(s.states.at(-1).delay);
  const ws2 = FakeWebSocket.last;
  ws2.open();
  assert.deepEqual(ws2.sent[0].rooms, ['unit:302']);
  assert.equal(typeof ws2.sent[0].since, 'number');
  ws2.welcome({ rooms: ['all'] });
  await flush();
  assert.deepEqual(ws2.sentOf('subscribe').map((f) => f.room), ['unit:302']);
  await s.hub.close();

  const t = setup({ rooms: ['role:admin'] });
  await flush();
  const ws3 = FakeWebSocket.last;
  ws3.open();
  ws3.deliver({ type: 'error', code: 'forbidden', message: 'no', room: 'role:admin', ref: ws3.sent[0].ref });
  assert.deepEqual(t.errors.map((e) => [e.code, e.room]), [['forbidden', 'role:admin']]);
  assert.deepEqual(t.hub.rooms, []);
  await t.hub.close();
});

test('a subscribe made while disconnected is sent on the next connection', async () => {
  const s = setup();
  await flush();
  const p = s.hub.subscribe('unit:9');
  const ws = await connectNow();
  const [sub] = ws.sentOf('subscribe');
  assert.equal(sub.room, 'unit:9');
  ws.deliver({ type: 'subscribed', room: 'unit:9', ref: sub.ref });
  assert.equal(await p, 'unit:9');
  const u = s.hub.unsubscribe('unit:9');
  const [unsub] = ws.sentOf('unsubscribe');
  ws.deliver({ type: 'unsubscribed', room: 'unit:9', ref: unsub.ref });
  assert.equal(await u, 'unit:9');
  ws.serverClose(1006);
  await s.clock.advance(s.states.at(-1).delay);
  const ws2 = await connectNow();
  assert.equal(ws2.sentOf('subscribe').length, 0, 'an unsubscribed room is not joined again');
  await s.hub.close();
});

test('autoAck acks events that ask for it, once, and again after a replay', async () => {
  const s = setup({ autoAck: true });
  const ws = await connectNow();
  ws.deliver(ev(5, 20, { ack: true }));
  ws.deliver(ev(6, 21, { ack: false }));
  assert.deepEqual(ws.sentOf('ack').map((a) => a.id), [5]);
  ws.serverClose(1006);
  await s.clock.advance(s.states.at(-1).delay);
  const ws2 = await connectNow();
  ws2.deliver(ev(5, 20, { ack: true }));
  assert.deepEqual(ws2.sentOf('ack').map((a) => a.id), [5], 'the duplicate is acked again but not delivered');
  assert.deepEqual(s.events.map((e) => e.id), [5, 6]);
  await s.hub.close();
});

test('acks made while disconnected are sent after the next welcome', async () => {
  const s = setup();
  const ws = await connectNow();
  ws.serverClose(1006);
  s.hub.ack(8);
  s.hub.ack(9);
  assert.throws(() => s.hub.ack(0), TypeError);
  await s.clock.advance(s.states.at(-1).delay);
  const ws2 = await connectNow();
  assert.deepEqual(ws2.sentOf('ack').map((a) => a.id), [8, 9]);
  ws2.deliver({ type: 'error', code: 'bad_request', message: 'no event 9', ref: 'ack:9' });
  assert.equal(s.errors.at(-1).ackId, 9);
  await s.hub.close();
});

test('resume_gap is reported with oldestSeq and the replay is delivered', async () => {
  const s = setup({ since: 3 });
  const ws = await connectNow();
  ws.deliver({ type: 'error', code: 'resume_gap', message: 'events after 3 are gone', oldest_seq: 50 });
  ws.deliver(ev(60, 50));
  assert.equal(s.errors[0].code, 'resume_gap');
  assert.equal(s.errors[0].oldestSeq, 50);
  assert.deepEqual(s.events.map((e) => e.seq), [50]);
  await s.hub.close();
});

test('resume_gap with newestSeq: a since beyond the hub\'s newest is dropped for the welcome\'s last_seq', async () => {
  const s = setup({ since: 1_000_000 });
  const ws1 = await connectNow({ last_seq: 40 });
  assert.equal(ws1.sent[0].since, 1_000_000);
  ws1.deliver({ type: 'error', code: 'resume_gap', message: 'since is beyond the newest event', newest_seq: 40 });
  assert.equal(s.errors[0].code, 'resume_gap');
  assert.equal(s.errors[0].newestSeq, 40);
  assert.equal(s.hub.lastSeq, 40, 'the impossible resume point is forgotten');
  ws1.deliver(ev(7, 41));
  assert.equal(s.hub.lastSeq, 41);
  ws1.serverClose(1006);
  await s.clock.advance(250);
  const ws2 = FakeWebSocket.last;
  ws2.open();
  assert.equal(ws2.sent[0].since, 41, 'the next resume starts from what was delivered, not from the old since');
  await s.hub.close();
});

test('close() stops for good; getToken() returning nothing stops too', async () => {
  const s = setup();
  const ws = await connectNow();
  const pending = assert.rejects(s.hub.subscribe('unit:1'), (e) => e.code === 'closed');
  const done = s.hub.close();
  assert.equal(ws.closedBy.code, 1000);
  await done;
  await pending;
  assert.equal(s.hub.state, 'closed');
  await s.clock.advance(120_000);
  assert.equal(FakeWebSocket.all.length, 1, 'no reconnection after close()');

  FakeWebSocket.reset();
  const t = setup({ getToken: () => null });
  await flush();
  assert.equal(t.hub.state, 'closed');
  assert.equal(FakeWebSocket.all.length, 0);
  assert.equal(t.states.at(-1).reason, 'no token');
});

test('a listener that throws does not stop delivery', async () => {
  const s = setup();
  const ws = await connectNow();
  s.hub.on('event', () => {
    throw new Error('boom');
  });
  ws.deliver(ev(1, 1));
  ws.deliver(ev(2, 2));
  assert.deepEqual(s.events.map((e) => e.id), [1, 2]);
  assert.equal(s.errors.filter((e) => e.code === 'listener').length, 2);
  await s.hub.close();
});

test('msgpack: binary frames through an injected codec library', async () => {
  const { encode, decode } = await import('@msgpack/msgpack');
  const clock = new FakeClock();
  const hub = createHubClient(URL_, { WebSocket: FakeWebSocket, clock, getToken: () => fakeJwt({ exp: 9e9 }), format: 'msgpack', msgpack: { encode, decode } });
  const got = [];
  hub.on('event', (e) => got.push(e));
  await flush();
  const ws = FakeWebSocket.last;
  assert.deepEqual(ws.protocols, ['armonia.v1.msgpack']);
  assert.equal(ws.binaryType, 'arraybuffer');
  ws.open();
  assert.equal(decode(ws.sent[0]).type, 'auth');
  const u8 = encode({ type: 'welcome', session: 's', last_seq: 1 });
  ws.onmessage({ data: u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength) });
  ws.onmessage({ data: encode(ev(1, 2)) });
  await flush();
  assert.equal(hub.state, 'open');
  assert.deepEqual(got.map((e) => e.id), [1]);
  await hub.close();
});
