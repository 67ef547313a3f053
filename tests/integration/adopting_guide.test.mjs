// adopting_guide.test.mjs - docs/adopting.md runs as written. Every ```sql
// block of the guide is run by psql against the "backend's database", and
// every ```sh block by bash, in the guide's order, in one working
// directory. The other blocks (the TypeScript, the app's JavaScript, the
// Prisma schema) are illustrations and are not run. What a test machine
// cannot have is replaced, each replacement named here:
//
//   the backend's database    a private PostgreSQL (scripts/pg.sh) whose
//                        database armonia is dropped and created empty, so
//                        the guide's own blocks make the tenant and migrate;
//                        DATABASE_URL is its superuser, standing for the
//                        role the backend's migrations run as;
//   /usr/share/armonia-hub    the package's files installed under a scratch
//                        root with `cmake --install` (as production_guide);
//   127.0.0.1/armonia    the private cluster's address, 127.0.0.1:<port>;
//   port 3001            a free port;
//   BACKEND_DIR/.env     a scratch .env holding what the backend's has: the
//                        JWT secret and the provider credentials, which
//                        point at the FCM and Twilio stand-ins;
//   an app                    between steps 5 and 9, while the guide's hub
//                        runs, Ana's app connects with socket.io-client (as
//                        step 6 shows) and a token shaped like the
//                        backend's, and gets her payment's status change;
//   the providers' base URLs   HUB_FCM_BASE_URL and HUB_TWILIO_BASE_URL,
//                        the stand-ins', appended to hub.env before step 9
//                        (the real ones are the hub's defaults).
//
// Each block has a deadline; its output is shown when it fails. After the
// guide, the stand-ins are asked what a resident's phones got.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { useLifecycle, hubBin, sourceDir, psqlBinary, Db, freePort, mintToken } from './lib/harness.mjs';
import { FallbackFixture, waitFor } from './lib/fallback.mjs';
import { io } from 'socket.io-client';

useLifecycle();

const BLOCK_TIMEOUT_MS = 90_000;
const fx = new FallbackFixture('adopting');
const groups = [];

after(async () => {
  // Whatever a block left running (the hub, the guard's watcher) goes too.
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {}
  }
  await fx.tearDown();
});

/** The guide's blocks, in order: {lang, text, line}. */
function guideBlocks() {
  const text = readFileSync(join(sourceDir, 'docs', 'adopting.md'), 'utf8');
  const blocks = [];
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = re.exec(text)); ) {
    blocks.push({ lang: m[1], text: m[2], line: text.slice(0, m.index).split('\n').length });
  }
  return blocks;
}

/** Runs argv with env in cwd; resolves with {code, out, err}; kills its group after the deadline. */
function run(argv, { env, cwd }) {
  return new Promise((resolve) => {
    const p = spawn(argv[0], argv.slice(1), { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    groups.push(p.pid);
    let out = '';
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {}
    }, BLOCK_TIMEOUT_MS);
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    // 'exit', not 'close': a block's background jobs keep its pipes open.
    p.once('exit', (code) => {
      clearTimeout(timer);
      setTimeout(() => resolve({ code, out, err, timedOut }), 50);
    });
  });
}

/**
 * Ana's app on socket.io-client, with the backend's token shape, gets the
 * payment event the attached trigger emits when her payment completes.
 */
async function anasApp(hubPort, secret) {
  const token = mintToken(secret, { userId: 'clres00000000000000302a', schemaName: 'conjunto_las_palmas', role: 'RESIDENT', units: ['302'], iat: Math.floor(Date.now() / 1000) });
  const socket = io(`http://127.0.0.1:${hubPort}`, { transports: ['websocket'], auth: { token }, reconnection: false });
  const db = new Db(fx.url);
  try {
    const welcome = await new Promise((resolve, reject) => {
      socket.once('welcome', resolve);
      socket.once('connect_error', (err) => reject(new Error(`Ana's app was refused: ${err.message} (${err.data?.code})`)));
    });
    assert.equal(welcome.role, 'resident');
    assert.ok(welcome.rooms.includes('unit:302'), JSON.stringify(welcome));
    const got = new Promise((resolve) => socket.on('payment', (e) => resolve(e)));
    await db.sql(`INSERT INTO conjunto_las_palmas."Payment" (id, "userId", amount) VALUES ('clpay0000000000000001', 'clres00000000000000302a', 250000)`);
    await db.sql(`UPDATE conjunto_las_palmas."Payment" SET status = 'COMPLETED' WHERE id = 'clpay0000000000000001'`);
    const e = await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error('no payment event on Ana\'s Socket.IO app within 20 s')), 20_000))]);
    assert.equal(e.kind, 'payment');
    assert.equal(e.data.status, 'COMPLETED');
    assert.equal(e.data.paymentId, 'clpay0000000000000001');
    // Sent over Socket.IO counts as reached, as over /ws: the delivery log
    // says so, and the payment's fallback (push, e-mail) has no one to reach.
    await waitFor(async () => {
      const rows = await db.sql(`SELECT status FROM hub.deliveries WHERE event_id = $1 AND user_id = $2 AND channel = 'ws'`, [e.id, 'clres00000000000000302a']);
      return rows.length === 1 && rows[0].status === 'sent';
    }, { what: 'the ws delivery of Ana\'s payment recorded as sent', timeout: 20_000 });
  } finally {
    socket.close();
    await db.close();
  }
}

test('docs/adopting.md, run as written: a Prisma-laid-out tenant, migrate, attach, audience, the backend\'s tokens, a live panic, emit, policies, providers a visitor pushed to each device, and the dead token cleaned', { timeout: 600_000 }, async () => {
  await fx.setUp();
  const work = join(fx.parent, 'work');
  mkdirSync(work);
  symlinkSync(join(sourceDir, 'tools'), join(work, 'tools'));

  // The package's files, as production_guide installs them.
  const root = join(fx.parent, 'root');
  execFileSync('cmake', ['--install', dirname(hubBin), '--prefix', join(root, 'usr')], { stdio: 'pipe' });

  // An empty database armonia: the guide's blocks create the tenant and migrate.
  const pgPort = new URL(fx.url).port;
  await fx.db.close();
  fx.db = null;
  const admin = new Db(fx.url.replace(/\/armonia$/, '/postgres'));
  await admin.sql('DROP DATABASE armonia WITH (FORCE)');
  await admin.sql('CREATE DATABASE armonia');
  await admin.close();

  // The backend's .env: its JWT secret and provider credentials.
  const backend = join(fx.parent, 'backend');
  mkdirSync(backend);
  const secret = `backend-${Math.random().toString(36).slice(2)}-secret-of-at-least-32-bytes`;
  const providers = fx.providerEnv(['push', 'sms']);
  writeFileSync(join(backend, '.env'), [
    `DATABASE_URL=${fx.url}`,
    `JWT_SECRET_KEY=${secret}`,
    `FIREBASE_SERVICE_ACCOUNT_KEY='${providers.FIREBASE_SERVICE_ACCOUNT_KEY}'`,
    `TWILIO_ACCOUNT_SID=${providers.TWILIO_ACCOUNT_SID}`,
    `TWILIO_AUTH_TOKEN=${providers.TWILIO_AUTH_TOKEN}`,
    `TWILIO_PHONE_NUMBER=${providers.TWILIO_PHONE_NUMBER}`,
    '',
  ].join('\n'));

  const hubPort = await freePort();
  const env = {
    PATH: `${join(root, 'usr', 'bin')}:${dirname(psqlBinary())}:${process.env.PATH}`,
    HOME: fx.parent,
    LANG: 'C.UTF-8',
    DATABASE_URL: fx.url,
    BACKEND_DIR: backend,
  };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
  const substitute = (s) => s
    .replaceAll('/usr/share/armonia-hub', join(root, 'usr', 'share', 'armonia-hub'))
    .replaceAll('127.0.0.1/armonia', `127.0.0.1:${pgPort}/armonia`)
    .replaceAll('3001', String(hubPort));

  const blocks = guideBlocks();
  const runnable = blocks.filter((b) => b.lang === 'sql' || b.lang === 'sh');
  assert.ok(runnable.length >= 10, `docs/adopting.md has only ${runnable.length} sql and sh blocks`);
  for (const b of blocks) assert.ok(['sql', 'sh', 'js', 'ts', 'prisma'].includes(b.lang), `docs/adopting.md:${b.line}: a block of language "${b.lang}" is neither run nor an illustration`);

  const transcript = [];
  let providersAdded = false;
  for (const [k, b] of runnable.entries()) {
    // Step 9 restarts the hub with the providers: Ana's app first, then
    // the providers' base URLs.
    if (!providersAdded && b.lang === 'sh' && b.text.includes('FIREBASE_SERVICE_ACCOUNT_KEY')) {
      await anasApp(hubPort, secret);
      appendFileSync(join(work, 'hub.env'), `HUB_FCM_BASE_URL=${providers.HUB_FCM_BASE_URL}\nHUB_TWILIO_BASE_URL=${providers.HUB_TWILIO_BASE_URL}\n`);
      providersAdded = true;
    }
    const file = join(work, `block-${k}.${b.lang}`);
    writeFileSync(file, substitute(b.text));
    const argv = b.lang === 'sql'
      ? [psqlBinary(), fx.url, '-X', '-q', '-A', '-v', 'ON_ERROR_STOP=1', '-f', file]
      : ['bash', '-euo', 'pipefail', file];
    const r = await run(argv, { env, cwd: work });
    transcript.push({ line: b.line, ...r });
    const hubLog = existsSync(join(work, 'hub.log')) ? readFileSync(join(work, 'hub.log'), 'utf8') : '';
    assert.ok(r.code === 0 && !r.timedOut,
      `docs/adopting.md:${b.line} (${b.lang}) ${r.timedOut ? `did not finish within ${BLOCK_TIMEOUT_MS} ms` : `exited ${r.code}`}\n` +
      `--- block ---\n${substitute(b.text)}\n--- stdout ---\n${r.out}\n--- stderr ---\n${r.err}\n--- hub.log ---\n${hubLog.slice(-4000)}`);
  }
  assert.ok(providersAdded, 'the guide never gives the hub the providers\' credentials');

  const out = transcript.map((t) => t.out).join('\n');
  // Step 1: migrate applied the steps; step 4: the settings, the secret masked.
  assert.match(out, /^applied 010_outbox /m);
  assert.match(out, /^HUB_JWT_CLAIM_SUB=userId$/m);
  assert.doesNotMatch(out, new RegExp(secret), 'the JWT secret was printed');
  // Step 5: the guard's socket got the panic, with the resident's name.
  assert.match(out, /"kind":"panic".*"userName":"Ana Gómez"/);
  // Step 9: both of Ana's devices got the visitor, each once; no SMS (push reached her).
  await waitFor(() => fx.pushesTo('fcm-ana-phone-0001').length >= 1 && fx.pushesTo('fcm-ana-tablet-0002').length >= 1,
    { what: 'a push on each of Ana\'s devices' });
  assert.equal(fx.pushesTo('fcm-ana-phone-0001').length, 1);
  assert.equal(fx.pushesTo('fcm-ana-tablet-0002').length, 1);
  assert.equal(fx.smsTo('+573001110302').length, 0);
  // The old phone's token was refused, recorded, and cleaned by the guide's job.
  assert.ok(fx.pushesTo('unregistered-ana-old-phone-0003').length >= 1, 'the old phone\'s token was never tried');
  assert.match(out, /conjunto_las_palmas\|clres00000000000000302a\|unregistered-ana-old-phone-0003\|1/);
  const db = new Db(fx.url);
  try {
    assert.deepEqual(await db.sql('SELECT token FROM conjunto_las_palmas."Device" ORDER BY token'),
      [{ token: 'fcm-ana-phone-0001' }, { token: 'fcm-ana-tablet-0002' }]);
    assert.deepEqual(await db.sql('SELECT * FROM hub.unregistered_tokens'), []);
  } finally {
    await db.close();
  }
  assert.doesNotMatch(out, /AC[0-9a-f]{32}.*TWILIO_AUTH_TOKEN=[^*\s]{8}/, 'a Twilio credential was printed');
});
