// net.mjs - the loopback plumbing the bench scripts (run.mjs,
// pg-envelope.mjs) share: a free port for a server, and a GET that never
// throws (a server still starting answers status 0).

import { createServer } from 'node:net';
import { request } from 'node:http';

/** A TCP port nobody listens on right now on 127.0.0.1 (the kernel's choice). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
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
