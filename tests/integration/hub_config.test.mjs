// hub_config.test.mjs - how armonia-hub refuses bad configuration and
// documents its flags. None of these starts a working hub, so no database
// is needed: each run must stop at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runHub, useLifecycle } from './lib/harness.mjs';

useLifecycle();

// Valid values for everything required, so each case breaks exactly one thing.
// The database is never reached: bad configuration stops the hub before.
const good = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/armonia',
  JWT_SECRET_KEY: 'config-test-secret',
  PORT: '39999',
  HUB_BIND: '127.0.0.1',
};

/** Exit status 2 and exactly one non-empty line on stderr that names `name`. */
function assertConfigError(r, name) {
  const shown = `exit ${r.code} signal ${r.signal}\nstderr: ${JSON.stringify(r.stderr)}\nstdout: ${JSON.stringify(r.stdout)}`;
  assert.equal(r.timedOut, false, `the hub kept running instead of refusing the configuration:\n${shown}`);
  assert.equal(r.code, 2, `expected exit status 2:\n${shown}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `expected one line on stderr:\n${shown}`);
  assert.match(lines[0], new RegExp(`\\b${name}\\b`), `the stderr line does not name ${name}:\n${shown}`);
}

test('missing DATABASE_URL: exit 2, one stderr line naming DATABASE_URL', async () => {
  assertConfigError(await runHub({ env: { ...good, DATABASE_URL: undefined } }), 'DATABASE_URL');
});

test('missing JWT_SECRET_KEY: exit 2, one stderr line naming JWT_SECRET_KEY', async () => {
  assertConfigError(await runHub({ env: { ...good, JWT_SECRET_KEY: undefined } }), 'JWT_SECRET_KEY');
});

test('both missing: exit 2 and a line naming one of them', async () => {
  const r = await runHub({ env: { ...good, DATABASE_URL: undefined, JWT_SECRET_KEY: undefined } });
  assert.equal(r.code, 2, `expected exit status 2, got ${r.code}; stderr: ${r.stderr}`);
  assert.match(r.stderr, /DATABASE_URL|JWT_SECRET_KEY/);
});

test('unparsable DATABASE_URL: exit 2 naming DATABASE_URL', async () => {
  assertConfigError(await runHub({ env: { ...good, DATABASE_URL: 'this is not a connection string' }, timeout: 5000 }), 'DATABASE_URL');
  assertConfigError(await runHub({ env: { ...good, DATABASE_URL: 'postgresql://%zz@127.0.0.1/armonia' }, timeout: 5000 }), 'DATABASE_URL');
});

test('PORT=abc: exit 2 naming PORT', async () => {
  assertConfigError(await runHub({ env: { ...good, PORT: 'abc' } }), 'PORT');
});

test('PORT out of range (70000): exit 2 naming PORT', async () => {
  assertConfigError(await runHub({ env: { ...good, PORT: '70000' } }), 'PORT');
});

test('HUB_MAX_FRAME_BYTES=lots: exit 2 naming HUB_MAX_FRAME_BYTES', async () => {
  assertConfigError(await runHub({ env: { ...good, HUB_MAX_FRAME_BYTES: 'lots' } }), 'HUB_MAX_FRAME_BYTES');
});

test('HUB_LOG_LEVEL=loud: exit 2 naming HUB_LOG_LEVEL', async () => {
  assertConfigError(await runHub({ env: { ...good, HUB_LOG_LEVEL: 'loud' } }), 'HUB_LOG_LEVEL');
});

test('--help: exit 0, lists --port and every setting', async () => {
  const r = await runHub({ args: ['--help'], env: {} });
  assert.equal(r.code, 0, `--help should exit 0, got ${r.code}; stderr: ${r.stderr}`);
  const text = r.stdout + r.stderr;
  assert.match(text, /--port\b/, `--help does not list --port:\n${text}`);
  for (const v of ['DATABASE_URL', 'JWT_SECRET_KEY', 'PORT', 'HUB_BIND', 'HUB_LOG_LEVEL', 'HUB_MAX_FRAME_BYTES', 'HUB_MAX_QUEUE_BYTES', 'HUB_AUTH_TIMEOUT_MS', 'HUB_RATE_LIMIT', 'HUB_RATE_BURST'])
    assert.ok(text.includes(v), `--help does not mention ${v}:\n${text}`);
});

test('a flag overrides its variable: --port=abc is refused naming --port', async () => {
  const r = await runHub({ env: good, args: ['--port=abc'] });
  assert.equal(r.code, 2, `expected exit status 2, got ${r.code}; stderr: ${r.stderr}`);
  assert.match(r.stderr, /port/i, `the error line does not name the port: ${r.stderr}`);
});

test('bad exposure settings (origins, per-address caps): exit 2 naming the variable', async () => {
  const cases = [
    ['HUB_ALLOWED_ORIGINS', 'https://app.example.com/'],
    ['HUB_ALLOWED_ORIGINS', 'app.example.com'],
    ['HUB_ALLOWED_ORIGINS', 'https://ok.example, https://x.example/path'],
    ['HUB_ALLOWED_ORIGINS', 'https://x.example:99999999'],
    ['HUB_MAX_CONNS_PER_IP', '-1'],
    ['HUB_MAX_HANDSHAKES_PER_IP_S', 'many'],
    ['HUB_HANDSHAKE_BURST_PER_IP', '0'],
    ['HUB_MAX_TRACKED_IPS', '1'],
    ['HUB_EXEMPT_ADDRESSES', 'localhost'],
  ];
  for (const [name, value] of cases) assertConfigError(await runHub({ env: { ...good, [name]: value } }), name);
});
