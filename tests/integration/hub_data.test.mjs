// hub_data.test.mjs - event data reaches clients with every number intact
// (docs/protocol.md "Event data and numbers"): whatever hub.emit() accepts is delivered, live
// and on resume, in both subprotocols; a row written around hub.emit() that
// cannot be delivered is logged with its id and counted on /metrics.
//
// Frames are checked as the bytes the hub wrote: JSON.parse and the default
// MessagePack decoding would round the very numbers under test.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { useLifecycle, startHub, db, connect, mintToken, httpGet, barrier } from './lib/harness.mjs';

useLifecycle();

const TIMEOUT_MS = 15_000;
// Numbers jansson could not hold: beyond int64, beyond double, more digits than double.
const BIG = '{"amount": 9223372036854775808, "x": 1e400, "y": 12345678901234567890.123, "cuota": {"n": -9223372036854775809, "u": 18446744073709551615}}';

let hub, database, T, user;

before(async () => {
  database = await db();
  T = await database.newTenant('data');
  user = await database.insertUser(T, { name: 'Residente 101', role: 'RESIDENT', unitId: '101' });
  hub = await startHub();
});

/**
 * Connects in format with the raw bytes of every frame kept (client.raw,
 * in arrival order, captured before any decoding), resumes from since when
 * given, and resolves once the welcome arrived.
 */
async function open(format, since) {
  const token = mintToken(hub.secret, { sub: user, tenant: T, role: 'resident', units: ['101'] });
  const c = await connect(hub.wsUrl, { format, token, since, label: `${format}${since === undefined ? '' : ` since ${since}`}` });
  c.raw = [];
  c.ws.on('message', (data, isBinary) => c.raw.push({ isBinary, buf: Buffer.isBuffer(data) ? data : Buffer.concat(data) }));
  const w = await c.next({ where: (f) => f?.type === 'welcome' || f?.type === 'error', timeout: TIMEOUT_MS });
  assert.equal(w.type, 'welcome', `${c.label}: expected a welcome, got ${JSON.stringify(w)}`);
  return c;
}

/** Waits for the event with id on c and returns the raw bytes of its frame. */
async function rawEvent(c, id) {
  await c.next({ type: 'event', where: (e) => e.id === id, timeout: TIMEOUT_MS });
  const raw = c.raw.find((r) => {
    const f = r.isBinary ? decode(r.buf, { useBigInt64: true }) : JSON.parse(r.buf.toString('utf8'));
    return f.type === 'event' && Number(f.id) === id;
  });
  assert.ok(raw, `${c.label}: the frame of event ${id} was not captured`);
  return raw;
}

/** Emits data (JSON text, given to hub.emit() as written); resolves with {id, seq, text}: text as PostgreSQL keeps it. */
async function emitText(kind, data) {
  const [{ id }] = await database.sql('select hub.emit($1, $2, $3::text[], $4::jsonb) as id', [T, kind, ['all'], data]);
  const [row] = await database.sql('select seq, data::text as text from hub.outbox where id = $1', [id]);
  return { id: Number(id), seq: Number(row.seq), text: row.text };
}

/** The data text of a JSON frame must be PostgreSQL's text, blanks between tokens dropped. */
function assertJsonFrame(c, raw, text) {
  assert.equal(raw.isBinary, false, `${c.label}: event in a binary frame`);
  const frame = raw.buf.toString('utf8');
  const compact = text.replace(/": /g, '":').replace(/, "/g, ',"');
  assert.ok(frame.endsWith(`,"data":${compact}}`), `${c.label}: the frame does not carry the data as written.\n  frame: ${frame.slice(0, 300)}…\n  data:  ${compact.slice(0, 300)}…`);
  for (const n of ['9223372036854775808', `1${'0'.repeat(400)}`, '12345678901234567890.123', '-9223372036854775809', '18446744073709551615'])
    assert.ok(frame.includes(n), `${c.label}: the frame lost the number ${n.slice(0, 40)}: ${frame.slice(0, 300)}…`);
}

/** In MessagePack: exact integers, 1e400 as its text, the long decimal as float64. */
function assertMsgpackFrame(c, raw) {
  assert.equal(raw.isBinary, true, `${c.label}: event in a text frame`);
  const f = decode(raw.buf, { useBigInt64: true });
  const d = f.data;
  assert.equal(d.amount, 9223372036854775808n, `${c.label}: amount ${d.amount}`);
  assert.equal(d.x, `1${'0'.repeat(400)}`, `${c.label}: x must be the number's text, got ${String(d.x).slice(0, 40)}`);
  assert.equal(d.y, 12345678901234567890.123, `${c.label}: y ${d.y}`);
  assert.equal(d.cuota.n, '-9223372036854775809', `${c.label}: cuota.n ${d.cuota.n}`);
  assert.equal(d.cuota.u, 18446744073709551615n, `${c.label}: cuota.u ${d.cuota.u}`);
}

test('numbers beyond int64 and double are delivered live and on resume, JSON as written, MessagePack exact', async () => {
  const live = { json: await open('json'), msgpack: await open('msgpack') };
  const ev = await emitText('payment', BIG);
  assert.ok(ev.text.includes('9223372036854775808'), `PostgreSQL kept ${ev.text.slice(0, 120)}`);

  assertJsonFrame(live.json, await rawEvent(live.json, ev.id), ev.text);
  assertMsgpackFrame(live.msgpack, await rawEvent(live.msgpack, ev.id));

  const resumed = { json: await open('json', ev.seq - 1), msgpack: await open('msgpack', ev.seq - 1) };
  assertJsonFrame(resumed.json, await rawEvent(resumed.json, ev.id), ev.text);
  assertMsgpackFrame(resumed.msgpack, await rawEvent(resumed.msgpack, ev.id));
  for (const c of [...Object.values(live), ...Object.values(resumed)]) c.close();
});

test('strings with escapes and unicode, empty and nested containers arrive unchanged in both formats', async () => {
  const clients = { json: await open('json'), msgpack: await open('msgpack') };
  const want = {
    s: 'línea 1\nlínea 2 "comillas" \\ / \t € 😀 \u0001',
    empty: {},
    list: [],
    nested: { a: [1, [2, [3, { b: [true, false, null, -0.5, 1.5e300] }]]] },
  };
  const ev = await emitText('visitor', JSON.stringify(want));
  for (const c of Object.values(clients)) {
    const raw = await rawEvent(c, ev.id);
    const f = raw.isBinary ? decode(raw.buf) : JSON.parse(raw.buf.toString('utf8'));
    assert.deepEqual(f.data, want, `${c.label}: data changed`);
    c.close();
  }
});

async function metric(name) {
  const r = await httpGet(hub.port, '/metrics');
  const line = r.body.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} missing from /metrics`);
  return Number(line.split(' ')[1]);
}

test('rows written around hub.emit() that cannot be delivered are logged with their id and counted; later events flow', async () => {
  const c = await open('json');
  const rows = await database.sql(
    `with r as (insert into hub.outbox (tenant, kind, rooms, data)
                values ($1, 'broken', '{all}', '[1, 2]'), ($1, 'broken', '{all,NULL}', '{"a": 1}')
                returning id)
     select id, pg_notify('hub_outbox', '') from r`, [T]);
  const ids = rows.map((r) => Number(r.id));
  await barrier(database, T, [c]);
  assert.deepEqual(c.inbox.filter((f) => f?.kind === 'broken'), [], 'a broken row was delivered');
  assert.equal(await metric('armonia_events_undeliverable_total'), 2);
  for (const id of ids)
    assert.ok(hub.output.some((l) => l.includes(`event ${id} cannot be delivered`)), `no error logged for event ${id}:\n${hub.output.slice(-20).join('\n')}`);
  c.close();
});
