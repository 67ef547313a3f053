// net.mjs - the loopback plumbing the bench scripts (run.mjs,
// pg-envelope.mjs) share: a free port for a server, and a GET that never
// throws (a server still starting answers status 0).

import { createServer } from 'node:net';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';

// Ports are drawn from outside the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port the kernel chose with listen(0)
// lies inside that range, where every outgoing connection of every other
// process also takes its local port, so between our check and the server's
// bind() a client socket could take it ("Address already in use"). Outside
// it, only another listener can, and the draw is random over thousands of
// ports. scripts/pg.sh keeps the 680 ports just above the range for its
// clusters; this draws below it (or, on a machine whose range starts too
// low, above pg.sh's block).
const PORT_SPAN = 12000;
const PG_BLOCK = 680;

function portWindow() {
  let lo = 32768;
  let hi = 60999;
  try {
    [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  } catch {}
  if (lo - 1000 - PORT_SPAN >= 1024) return [lo - 1000 - PORT_SPAN, lo - 1000];
  const first = hi + 1 + PG_BLOCK;
  return [first, Math.min(65535, first + PORT_SPAN)];
}

// Ports this process handed out: never handed out twice, so two calls
// before either server binds get different ports.
const handedOut = new Set();

function bindable(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * A TCP port nobody listens on right now on 127.0.0.1, outside the
 * ephemeral range. A server that still fails to bind it lost a race with
 * another listener: its caller may draw again.
 */
export async function freePort() {
  const [lo, hi] = portWindow();
  for (let tries = 0; tries < 200; tries++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${lo}-${hi}`);
}

/** GET path on 127.0.0.1:port: {status, body}, status 0 when it failed or took over 2 s. */
export function httpGet(port, path) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
