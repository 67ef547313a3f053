// production_guide.test.mjs - the README's "From a fresh Debian 12 server
// to a monitored hub" runs as written. The block between the guide:begin and
// guide:end markers is taken from README.md and run by bash, with only what
// a test machine cannot do replaced, each replacement named here:
//
//   sudo apt install ./armonia-hub_….deb  the package's files installed
//                        under a scratch root with `cmake --install` (the
//                        .deb holds the same files and apt can install it:
//                        scripts/package-check.sh);
//   /usr/…, /etc/…       paths under that scratch root;
//   sudo -u postgres, sudo   dropped (PGUSER=postgres, and the test's own
//                        private PostgreSQL through PGHOST and PGPORT, where
//                        the guide's server has its local cluster);
//   port 9101, and the default PORT 3001   free ports (PORT added to the
//                        environment file), so a demo or another hub on this
//                        machine does not stand in the way;
//   systemctl enable --now armonia-hub   what the unit runs: ExecStart with
//                        its EnvironmentFile, then waiting until the hub
//                        listens, as Type=notify does.
//
// Every other line runs unchanged: createdb, migrate, the role's SQL, the
// environment file, --check-config, and the curl scrapes.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { useLifecycle, hubBin, sourceDir, pgScriptRun, psqlBinary, Db, freePort } from './lib/harness.mjs';

useLifecycle();

const scratch = mkdtempSync(join(tmpdir(), 'armonia-guide-'));
let pgdir;
after(async () => {
  const pidFile = join(scratch, 'hub.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100; i++) {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 100));
      }
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  if (pgdir) await pgScriptRun('stop', pgdir).catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
});

/** The guide's shell block, as README.md has it. */
function guideBlock() {
  const readme = readFileSync(join(sourceDir, 'README.md'), 'utf8');
  const m = readme.match(/<!-- guide:begin -->\n```sh\n([\s\S]*?)```\n<!-- guide:end -->/);
  assert.ok(m, 'README.md has no guide block between <!-- guide:begin --> and <!-- guide:end -->');
  return m[1];
}

test('the README\'s production guide, run as written: package files, migrate, the hub\'s role, the environment file, --check-config, start, /healthz and /metrics', { timeout: 240_000 }, async () => {
  const root = join(scratch, 'root');
  const build = dirname(hubBin);
  execFileSync('cmake', ['--install', build, '--prefix', join(root, 'usr')], { stdio: 'pipe' });
  assert.ok(existsSync(join(root, 'usr', 'bin', 'armonia-hub')));

  // A private cluster; its database armonia (which scripts/pg.sh sets up
  // for the tests) goes, so the guide's createdb and migrate start fresh.
  pgdir = join(scratch, 'pg');
  await pgScriptRun('start', pgdir);
  const url = readFileSync(join(pgdir, 'url'), 'utf8').trim();
  const port = new URL(url).port;
  const admin = new Db(url.replace(/\/armonia$/, '/postgres'));
  await admin.sql('DROP DATABASE armonia WITH (FORCE)');
  await admin.close();

  const block = guideBlock();
  const apt = /^sudo apt install \.\/armonia-hub_[0-9.]+_amd64\.deb$/m;
  const start = /^sudo systemctl enable --now armonia-hub$/m;
  assert.match(block, apt);
  assert.match(block, start);
  const [publicPort, internalPort] = [await freePort(), await freePort()];
  assert.match(block, /^HUB_INTERNAL_PORT=9101$/m);
  const script = block
    .replace(/^HUB_INTERNAL_PORT=9101$/m, `HUB_INTERNAL_PORT=9101\nPORT=${publicPort}`)
    .replaceAll('9101', String(internalPort))
    .replace(apt, `: the files of the package are under ${root}`)
    .replaceAll('sudo -u postgres ', '')
    .replaceAll('sudo ', '')
    .replaceAll(' /usr/', ` ${root}/usr/`)
    .replaceAll('/etc/armonia-hub', `${root}/etc/armonia-hub`)
    .replace(/^systemctl enable --now armonia-hub$/m, () => [
      `(set -a; . ${root}/etc/armonia-hub/env; exec armonia-hub) >${scratch}/hub.log 2>&1 & echo $! >${scratch}/hub.pid`,
      `for i in $(seq 300); do curl -fsS -o /dev/null http://127.0.0.1:${internalPort}/healthz 2>/dev/null && break; sleep 0.1; done`,
    ].join('\n'));
  writeFileSync(join(scratch, 'guide.sh'), script);

  const env = {
    PATH: `${join(root, 'usr', 'bin')}:${dirname(psqlBinary())}:${process.env.PATH}`,
    HOME: scratch,
    LANG: 'C.UTF-8',
    PGHOST: '127.0.0.1',
    PGPORT: port,
    PGUSER: 'postgres',
  };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
  const r = await new Promise((resolve) => {
    const p = spawn('bash', ['-euo', 'pipefail', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.once('close', (code) => resolve({ code, out, err }));
  });
  const hubLog = existsSync(join(scratch, 'hub.log')) ? readFileSync(join(scratch, 'hub.log'), 'utf8') : '';
  const shown = `--- script ---\n${script}\n--- stdout ---\n${r.out}\n--- stderr ---\n${r.err}\n--- hub ---\n${hubLog}`;
  assert.equal(r.code, 0, shown);
  assert.match(r.out, /^applied 010_outbox /m, shown);
  assert.match(r.out, /^# armonia-hub [0-9.]+: the configuration is valid/m, shown);
  assert.match(r.out, /^DATABASE_URL=.*user=armonia_hub_app password=\*+ /m, shown);
  assert.doesNotMatch(r.out, /change-me/, 'the database password is shown');
  assert.doesNotMatch(r.out, /the-secret-the-backend-signs-tokens-with/, 'the JWT secret is shown');
  assert.match(r.out, /\{"status":"ok"\}/, shown);
  assert.match(r.out, /^armonia_db_listener_up 1$/m, shown);
  assert.match(r.out, /^armonia_connections 0$/m, shown);
  // The hub logged in as the guide's role, not as a superuser.
  const db = new Db(url.replace(/\/armonia$/, '/postgres'));
  const rows = await db.sql("SELECT usename FROM pg_stat_activity WHERE datname = 'armonia' AND application_name <> 'psql'");
  await db.close();
  assert.ok(rows.length > 0 && rows.every((x) => x.usename === 'armonia_hub_app'), JSON.stringify(rows));
});
