// hub_config.test.mjs - how armonia-hub refuses bad configuration and
// documents its flags, says its version, shows the settings it would run
// with (--check-config, secrets masked) and names the setting a misspelt
// variable or option meant. None of these starts a working hub, so no
// database is needed: each run must stop at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

// ---- --version, --check-config, --print-env-example, misspelt names ----

test('--version: exit 0, the version of CMakeLists.txt and the libraries the hub runs on', async () => {
  const r = await runHub({ args: ['--version'], env: {} });
  assert.equal(r.code, 0, `--version should exit 0, got ${r.code}; stderr: ${r.stderr}`);
  const cmake = readFileSync(join(process.env.HUB_SOURCE_DIR, 'CMakeLists.txt'), 'utf8');
  const version = cmake.match(/project\(armonia_hub VERSION ([0-9.]+)/)[1];
  assert.match(r.stdout, new RegExp(`^armonia-hub ${version.replaceAll('.', '\\.')}\\n`), r.stdout);
  for (const lib of [/^libwebsockets [0-9]/m, /^libpq [0-9]/m, /^OpenSSL [0-9]/m, /^libcurl [0-9]/m])
    assert.match(r.stdout, lib, `--version does not name ${lib}:\n${r.stdout}`);
});

const secrets = {
  DATABASE_URL: 'postgresql://hub:db-pass-1234@127.0.0.1:1/armonia',
  JWT_SECRET_KEY: 'jwt-secret-5678',
  TWILIO_ACCOUNT_SID: 'AC0123',
  TWILIO_AUTH_TOKEN: 'twilio-token-9012',
  TWILIO_PHONE_NUMBER: '+15550000000',
  FIREBASE_SERVICE_ACCOUNT_KEY: '{"private_key":"fcm-key-3456"}',
  HUB_SMTP_URL: 'smtp://relay:smtp-url-pass-7890@127.0.0.1:25',
  HUB_SMTP_FROM: 'hub@example.com',
  HUB_SMTP_USER: 'relay',
  HUB_SMTP_PASSWORD: 'smtp-pass-1357',
};

test('--check-config: exit 0, every effective setting, secrets masked', async () => {
  const r = await runHub({ env: { ...good, ...secrets, HUB_RETENTION_S: '60' }, args: ['--check-config', '--port=4000'] });
  assert.equal(r.code, 0, `--check-config should exit 0 on a valid configuration, got ${r.code}; stderr: ${r.stderr}`);
  const lines = new Map(r.stdout.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  assert.equal(lines.get('HUB_RETENTION_S'), '60', 'the variable is not the effective value');
  assert.equal(lines.get('PORT'), '4000', 'the flag does not override the variable');
  assert.equal(lines.get('HUB_PURGE_INTERVAL_MS'), '60000', 'a default is not shown');
  assert.equal(lines.get('HUB_LOG_LEVEL'), 'info');
  assert.equal(lines.get('HUB_SMTP_USER'), 'relay');
  assert.match(lines.get('DATABASE_URL'), /\bhost=127\.0\.0\.1\b/, 'DATABASE_URL is not shown');
  assert.match(lines.get('DATABASE_URL'), /\bdbname=armonia\b/, 'DATABASE_URL is not shown');
  assert.match(lines.get('DATABASE_URL'), /\bpassword=\*{4}/, 'the database password is not shown as masked');
  assert.equal(lines.get('HUB_SMTP_URL'), 'smtp://relay:****@127.0.0.1:25');
  for (const name of ['JWT_SECRET_KEY', 'TWILIO_AUTH_TOKEN', 'FIREBASE_SERVICE_ACCOUNT_KEY', 'HUB_SMTP_PASSWORD'])
    assert.equal(lines.get(name), '****', `${name} is not masked`);
  for (const secret of ['db-pass-1234', 'jwt-secret-5678', 'twilio-token-9012', 'fcm-key-3456', 'smtp-url-pass-7890', 'smtp-pass-1357'])
    assert.ok(!(r.stdout + r.stderr).includes(secret), `--check-config shows the secret ${secret}:\n${r.stdout}`);
  assert.match(r.stdout, /^# HUB_JWT_AUDIENCE is not set$/m);
});

test('--check-config on a bad configuration: exit 2 and the very line the start prints', async () => {
  for (const env of [{ ...good, PORT: 'abc' }, { ...good, JWT_SECRET_KEY: undefined }, { ...good, HUB_ALLOWED_ORIGINS: 'app.example.com' }]) {
    const start = await runHub({ env });
    const check = await runHub({ env, args: ['--check-config'] });
    assert.equal(check.code, 2, `--check-config should exit 2, got ${check.code}; stderr: ${check.stderr}`);
    assert.equal(check.stderr, start.stderr);
    assert.equal(check.stdout, '', 'a refused configuration printed settings');
  }
});

test('a misspelt HUB_* variable is a warning naming the setting meant; the configuration stays valid', async () => {
  const r = await runHub({ env: { ...good, HUB_RETENTON_S: '60', HUB_PORT: '4000', HUB_NOTHING_LIKE_IT: '1' }, args: ['--check-config'] });
  assert.equal(r.code, 0, `a misspelt variable must not stop the hub, got ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.includes('armonia-hub: warning: unknown setting HUB_RETENTON_S (did you mean HUB_RETENTION_S?)'), r.stderr);
  assert.ok(lines.includes('armonia-hub: warning: unknown setting HUB_PORT (did you mean PORT?)'), r.stderr);
  assert.ok(lines.includes('armonia-hub: warning: unknown setting HUB_NOTHING_LIKE_IT (see --help)'), r.stderr);
  assert.equal(lines.length, 3, r.stderr);
  assert.match(r.stdout, /^HUB_RETENTION_S=86400$/m, 'the misspelt variable was taken for the setting');
});

test('a misspelt option: exit 2, one line naming the option meant', async () => {
  const r = await runHub({ env: good, args: ['--retenton-s=60'] });
  assertConfigError(r, 'retention-s');
  assert.equal(r.stderr.trim(), "armonia-hub: unknown option '--retenton-s=60' (did you mean --retention-s?)");
});

test('--print-env-example: exit 0, every setting of --help, commented, with its default', async () => {
  const r = await runHub({ args: ['--print-env-example'], env: {} });
  assert.equal(r.code, 0, `got ${r.code}; stderr: ${r.stderr}`);
  const help = (await runHub({ args: ['--help'], env: {} })).stdout;
  const names = [...help.matchAll(/^ {2}--[a-z0-9-]+ +([A-Z][A-Z0-9_]+) /gm)].map((m) => m[1]);
  assert.ok(names.length > 40, `too few settings found in --help:\n${help}`);
  for (const n of names) assert.match(r.stdout, new RegExp(`^#${n}=`, 'm'), `${n} is missing from the example`);
  assert.match(r.stdout, /^#HUB_RETENTION_S=86400$/m);
  assert.match(r.stdout, /^#PORT=3001$/m);
  assert.ok(r.stdout.split('\n').every((l) => l === '' || l.startsWith('#')), 'an uncommented line: every setting must keep its default until edited');
});
