// proc.mjs - CPU time of processes from /proc, for the bench scripts
// (run.mjs, pg-envelope.mjs): one process, or a PostgreSQL cluster as a whole;
// the children of a process; a process's time waiting for a CPU.

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

/** The pids of the processes whose parent is ppid (this kernel has no /proc/<pid>/task/<tid>/children). */
export function childPids(ppid) {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(e));
    } catch {}
  }
  return out;
}

/**
 * CPU time (µs) pid has run and has waited on a run queue for a CPU
 * (/proc/<pid>/schedstat): how much of a latency is the scheduler's.
 */
export function schedUs(pid) {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { run: run / 1000, wait: wait / 1000 };
  } catch {
    return { run: 0, wait: 0 };
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
  for (const pid of childPids(pm)) sum += procCpuUs(pid) || 0;
  return sum;
}
