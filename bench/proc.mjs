// proc.mjs - CPU time of processes from /proc, for the bench scripts
// (run.mjs, pg-envelope.mjs): one process, or a PostgreSQL cluster as a whole.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** utime + stime of pid in µs, or NaN when it is gone. */
export function procCpuUs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / HZ; // utime + stime
  } catch {
    return NaN;
  }
}

/**
 * CPU µs of a PostgreSQL cluster: the postmaster and every process it
 * started (backends, WAL writer, autovacuum …), those still running and
 * those that have exited (the postmaster reaps its children, so their time
 * is in its cutime and cstime): a producer's backend that ends with its
 * session before the measurement's last reading still counts.
 */
export function clusterCpuUs(dataDir) {
  let pm;
  try {
    pm = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return NaN;
  }
  let sum;
  try {
    const s = readFileSync(`/proc/${pm}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    sum = ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1e6) / HZ; // u + s + children's cu + cs
  } catch {
    return NaN;
  }
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pm) sum += ((Number(f[11]) + Number(f[12])) * 1e6) / HZ;
    } catch {}
  }
  return sum;
}
