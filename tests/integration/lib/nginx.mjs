// nginx.mjs - nginx in front of hubs under test, with the shipped
// configuration deploy/nginx/armonia-hub.conf.
//
// startNginx() lays out a directory of its own the way that file expects
// (its header says how): it writes the two site files the file includes,
// armonia-hub/upstream.conf (one `server 127.0.0.1:PORT max_fails=1
// fail_timeout=10s;` line per hub, as armonia-hub/upstream.conf.example
// has them) and armonia-hub/site.conf (listen on a free loopback port with
// ssl, a certificate made with openssl), plus an nginx.conf whose http {}
// holds only paths (pid, logs, temp directories) and includes the shipped
// file. The shipped file is copied there byte for byte (and compared)
// rather than included from the source tree, because nginx, when started by
// root, runs as nobody here, and a clone may sit in a directory nobody
// cannot enter. Nothing runs as root: as root, nginx itself is started as
// nobody with the whole directory given to nobody.

import { spawn, execFileSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './hub.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const shippedConf = join(process.env.HUB_SOURCE_DIR ?? join(here, '..', '..', '..'), 'deploy', 'nginx', 'armonia-hub.conf');

/** The uid and gid nginx runs as: nobody when we are root, else ourselves. */
const NOBODY = 65534;
const asUser = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {};

const running = new Set();
process.on('exit', () => {
  for (const n of running) {
    try {
      n.proc.kill('SIGKILL');
    } catch {}
  }
});

/** Finds the nginx binary (Debian installs it in /usr/sbin). */
function nginxBin() {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) {
    if (existsSync(p)) return p;
  }
  throw new Error('nginx is not installed (scripts/deps.sh installs Debian\'s nginx)');
}

/**
 * A self-signed certificate for 127.0.0.1 and localhost, valid one day,
 * made with the openssl command in dir: {cert, key, pem} (pem: the
 * certificate's text, a client's `ca`).
 */
export function makeCert(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}

/** Resolves once a TLS handshake with 127.0.0.1:port succeeds; rejects after timeout ms. */
async function waitTls(port, ca, timeout, isDead) {
  const deadline = Date.now() + timeout;
  let last = 'no answer yet';
  for (;;) {
    const dead = isDead();
    if (dead) throw new Error(`nginx exited (${dead}) before it listened`);
    try {
      await new Promise((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
          s.end();
          resolve();
        });
        s.once('error', reject);
      });
      return;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`nginx did not accept TLS on port ${port} within ${timeout} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

class NginxProcess {
  constructor(proc, dir, port, cert) {
    this.proc = proc;
    this.dir = dir;
    this.port = port;
    this.cert = cert;
    this.wsUrl = `wss://127.0.0.1:${port}/ws`;
    this.output = [];
    this.exit = null;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
      this.exit = { code, signal };
      running.delete(this);
      resolve(this.exit);
    }));
    for (const s of [proc.stdout, proc.stderr]) s.setEncoding('utf8').on('data', (d) => this.output.push(d));
  }

  /** nginx's error log (startup failures, upstreams it gave up on). */
  errorLog() {
    try {
      return readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Options for ws or https: trust this nginx's certificate, from localAddress. */
  tls(localAddress = '127.0.0.1') {
    return { ca: this.cert.pem, localAddress };
  }

  /** GET path over https through nginx from localAddress; resolves with {status, body}. */
  get(path, { localAddress = '127.0.0.1', timeout = 3000 } = {}) {
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: this.port, path, ca: this.cert.pem, localAddress, servername: 'localhost', timeout }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${path} through nginx timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** Fast shutdown (SIGTERM); resolves once nginx exited, and removes its directory. */
  async stop() {
    if (!this.exit) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Starts nginx with the shipped configuration in front of the hubs on
 * 127.0.0.1 at hubPorts; resolves once it accepts TLS. The returned object
 * has port, wsUrl, tls(localAddress), get(path), errorLog(), stop().
 */
export async function startNginx(hubPorts) {
  const dir = mkdtempSync(join(tmpdir(), 'armonia-nginx-'));
  const site = join(dir, 'armonia-hub');
  mkdirSync(site);
  const cert = makeCert(dir);
  const port = await freePort();
  // The two files armonia-hub.conf includes, relative to nginx.conf's directory.
  writeFileSync(join(site, 'upstream.conf'), hubPorts.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=10s;\n`).join(''));
  writeFileSync(join(site, 'site.conf'), `listen 127.0.0.1:${port} ssl;\nserver_name localhost;\nssl_certificate ${cert.cert};\nssl_certificate_key ${cert.key};\n`);
  copyFileSync(shippedConf, join(dir, 'armonia-hub.conf'));
  if (!readFileSync(join(dir, 'armonia-hub.conf')).equals(readFileSync(shippedConf))) throw new Error('the copy of armonia-hub.conf differs from the shipped file');
  // Only paths: where a packaged nginx would write under /var, and one
  // worker (the machine has two cores, shared with the hubs and PostgreSQL).
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${join(dir, `${t}_temp`)};\n`).join('');
  writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} info;
events {
    worker_connections 1024;
}
http {
    access_log ${join(dir, 'access.log')};
${temp}    include armonia-hub.conf;
}
`);
  if (asUser.uid !== undefined) {
    const own = (p) => {
      chownSync(p, NOBODY, NOBODY);
      for (const e of readdirSync(p, { withFileTypes: true })) {
        if (e.isDirectory()) own(join(p, e.name));
        else chownSync(join(p, e.name), NOBODY, NOBODY);
      }
    };
    own(dir);
  }
  const proc = spawn(nginxBin(), ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'pipe', 'pipe'], ...asUser });
  const n = new NginxProcess(proc, dir, port, cert);
  running.add(n);
  try {
    await waitTls(port, cert.pem, 10_000, () => n.exit && JSON.stringify(n.exit));
  } catch (err) {
    proc.kill('SIGKILL');
    await n.exited;
    err.message += `\n--- nginx output ---\n${n.output.join('')}\n--- error.log ---\n${n.errorLog()}`;
    throw err;
  }
  return n;
}
