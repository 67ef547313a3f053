#!/usr/bin/env node
// tls.mjs - the hub's CPU per delivered message with TLS in the hub
// (HUB_TLS_CERT_FILE) beside plain ws://, in one run.
//
//   node bench/tls.mjs [--conns N] [--rate EVENTS_PER_S] [--seconds S] [--rounds R]
//
// For each round, a plain hub and a TLS hub (alternating which goes first,
// so the machine's drift over minutes falls on both) are started fresh on
// the same PostgreSQL; N clients (Node's `ws`, JSON subprotocol, room "all"
// of one tenant) connect and authenticate; events are emitted at a fixed
// rate for S seconds (one statement of several hub.emit() rows every 50 ms)
// and every client must receive every event. The figure is the hub's CPU
// (utime + stime from /proc/<pid>/stat, from the first emit until the last
// receipt) divided by the messages delivered: fair at any rate, as long as
// the clients keep up (checked: a round where they fall behind is reported).
// The Node clients are the load generator here because the C one
// (armonia-loadgen) speaks no TLS; they share the machine with the hub, the
// same way for both variants.
//
// Needs tests/integration's node_modules (`cd tests/integration && npm ci`),
// the openssl command, and HUB_BIN (default build/dev/armonia-hub);
// HUB_PGDIR names a cluster directory (default: a temporary one, started
// and stopped here).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? Number(argv[i + 1]) : def;
};
const CONNS = opt('--conns', 100);
const RATE = opt('--rate', 100); // events per second, each to every connection
const SECONDS = opt('--seconds', 10);
const ROUNDS = opt('--rounds', 2);
const TICK_MS = 50;

process.env.HUB_BIN ??= join(root, 'build', 'dev', 'armonia-hub');
const tmp = mkdtempSync(join(tmpdir(), 'hub-tls-bench-'));
const ownCluster = !process.env.HUB_PGDIR;
process.env.HUB_PGDIR ??= join(tmp, 'pg');

const lib = join(root, 'tests', 'integration', 'lib');
const { startHub } = await import(join(lib, 'hub.mjs'));
const { db, closeDb, pgScriptRun } = await import(join(lib, 'db.mjs'));
const { connect, closeAllClients } = await import(join(lib, 'client.mjs'));
const { mintToken } = await import(join(lib, 'token.mjs'));

/** A self-signed P-256 certificate for 127.0.0.1 in tmp. */
function makeCert() {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: tmp, stdio: 'ignore' });
  return { cert: join(tmp, 'cert.pem'), key: join(tmp, 'key.pem'), ca: readFileSync(join(tmp, 'cert.pem'), 'utf8') };
}

/** utime + stime of pid in µs. */
function cpuUs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * (1e6 / 100); // clock ticks of 10 ms
}

/** One measurement: a fresh hub (tls or plain), CONNS clients, RATE events/s for SECONDS. */
async function measure(variant, database, tenant, cert) {
  const env = { HUB_LOG_LEVEL: 'warn', HUB_RATE_LIMIT: 1000, HUB_RATE_BURST: 1000, HUB_MAX_CONNS_PER_IP: 0, HUB_MAX_HANDSHAKES_PER_IP_S: 0 };
  const tls = variant === 'tls' ? { ca: cert.ca } : undefined;
  if (tls) Object.assign(env, { HUB_TLS_CERT_FILE: cert.cert, HUB_TLS_KEY_FILE: cert.key });
  const hub = await startHub({ env, tls });
  const clients = [];
  for (let i = 0; i < CONNS; i += 50) {
    const batch = [];
    for (let k = i; k < Math.min(CONNS, i + 50); k++) {
      const token = mintToken(hub.secret, { sub: `b${k}`, tenant, role: 'resident', units: [`u${k}`] });
      batch.push(connect(hub.wsUrl, { token, tls, label: `c${k}` }).then(async (c) => {
        await c.next({ type: 'welcome', timeout: 20_000 });
        return c;
      }));
    }
    clients.push(...(await Promise.all(batch)));
  }
  // Count events as they come; frames are not kept (the inbox would grow).
  let received = 0;
  for (const c of clients) {
    c.ws.removeAllListeners('message');
    c.ws.on('message', () => received++);
  }
  const events = RATE * SECONDS;
  const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
  const pad = 'Visitante en porteria: Juan Perez, placa ABC-123, para la unidad 101'.padEnd(160, '.');
  const cpu0 = cpuUs(hub.proc.pid);
  const t0 = Date.now();
  let sent = 0;
  while (sent < events) {
    const n = Math.min(perTick, events - sent);
    await database.sql(`select hub.emit($1, 'bench', array['all'], jsonb_build_object('i', i, 'msg', $2::text), 'normal', false)
                          from generate_series(1, $3::int) as i`, [tenant, pad, n]);
    sent += n;
    const due = t0 + (sent / RATE) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const want = events * CONNS;
  const deadline = Date.now() + 30_000;
  while (received < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const elapsed = (Date.now() - t0) / 1000;
  const cpu = cpuUs(hub.proc.pid) - cpu0;
  closeAllClients();
  await hub.stop();
  return {
    variant, conns: CONNS, events, delivered: received, expected: want,
    seconds: elapsed, msgs_s: received / elapsed, hub_cpu_us_per_msg: cpu / Math.max(1, received),
    hub_cpu_share: cpu / 1e6 / elapsed, kept_up: received === want && elapsed < SECONDS * 1.5,
  };
}

const started = new Date();
const load0 = loadavg();
const cert = makeCert();
const database = await db();
const tenant = await database.newTenant('tlsbench');
const results = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of r % 2 ? ['tls', 'plain'] : ['plain', 'tls']) {
      const m = await measure(v, database, tenant, cert);
      console.error(`[tls-bench] round ${r + 1}/${ROUNDS} ${v}: ${m.hub_cpu_us_per_msg.toFixed(2)} CPU-µs/msg, ${Math.round(m.msgs_s)} msgs/s, ${m.delivered}/${m.expected}${m.kept_up ? '' : ' (DID NOT KEEP UP)'}`);
      results.push({ round: r + 1, ...m });
    }
  }
} finally {
  await closeDb();
  if (ownCluster) await pgScriptRun('stop', process.env.HUB_PGDIR).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const by = (v) => results.filter((x) => x.variant === v);
const mp = median(by('plain').map((x) => x.hub_cpu_us_per_msg));
const mt = median(by('tls').map((x) => x.hub_cpu_us_per_msg));
const cpu = cpus();
console.log(`Hub CPU per delivered message, TLS in the hub beside plain, ${started.toISOString()}
Machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}
Command: node bench/tls.mjs ${argv.join(' ')}   (${CONNS} connections, ${RATE} events/s for ${SECONDS} s = ${RATE * CONNS} msgs/s offered, ${ROUNDS} rounds)

| variant | hub CPU-µs/msg, each round | median | vs plain | delivered msgs/s, each round | kept up |
|---|---|---|---|---|---|
| plain ws:// | ${by('plain').map((x) => x.hub_cpu_us_per_msg.toFixed(2)).join(', ')} | ${mp.toFixed(2)} | 1.00× | ${by('plain').map((x) => Math.round(x.msgs_s)).join(', ')} | ${by('plain').every((x) => x.kept_up) ? 'yes' : 'no'} |
| wss:// (TLS in the hub) | ${by('tls').map((x) => x.hub_cpu_us_per_msg.toFixed(2)).join(', ')} | ${mt.toFixed(2)} | ${(mt / mp).toFixed(2)}× | ${by('tls').map((x) => Math.round(x.msgs_s)).join(', ')} | ${by('tls').every((x) => x.kept_up) ? 'yes' : 'no'} |
`);
console.log(JSON.stringify(results));
process.exit(0);
