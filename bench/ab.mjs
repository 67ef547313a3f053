#!/usr/bin/env node
// ab.mjs - two hub binaries compared in one run: rounds of bench/run.mjs
// (hub and limit server, the same load generator), A and B alternating
// which goes first, so that the machine's drift over minutes falls on both.
//
//   node bench/ab.mjs --a OLD_BIN --b NEW_BIN [--rounds N] [--full] [--out DIR]
//                     [--scenarios idle,broadcast]
//
// Each round runs `run.mjs --no-build --systems hub,limit` once with
// HUB_BIN=A and once with HUB_BIN=B (the tools come from build/bench-tools:
// run `node bench/run.mjs --smoke` once first to build them). It prints,
// per figure, every round's value for A and B, their medians and B / A,
// and the same for each binary's ratio to the limit server measured in its
// own run (the steadier comparison on a shared machine). Rounds default to
// 3; --quick sizes unless --full.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const A = opt('--a'), B = opt('--b');
if (!A || !B) {
  console.error('usage: node bench/ab.mjs --a OLD_BIN --b NEW_BIN [--rounds N] [--full] [--out DIR] [--scenarios idle,broadcast]');
  process.exit(2);
}
const ROUNDS = Number(opt('--rounds', '3'));
const OUT = resolve(opt('--out', join(here, 'results', 'ab')));
const SCENARIOS = opt('--scenarios', 'idle,broadcast');
const MODE = argv.includes('--full') ? '--full' : '--quick';

const FIGURES = [
  ['bpc', 'bytes/conn (idle)', (v) => `${Math.round(v)} B`],
  ['rate', 'connect+auth /s', (v) => `${Math.round(v)}`],
  ['sat', 'saturation msgs/s', (v) => `${Math.round(v)}`],
  ['cpu', 'server CPU-µs/msg', (v) => v.toFixed(2)],
  ['p99', 'p99 @50 % (µs)', (v) => `${Math.round(v)}`],
  ['pp99', 'panic p99 (µs)', (v) => `${Math.round(v)}`],
];

const median = (v) => {
  const s = v.filter((x) => x != null).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One run.mjs run of bin; resolves with latest.json's summary. */
function once(label, bin, round) {
  const out = join(OUT, `${label}-${round}`);
  mkdirSync(out, { recursive: true });
  const args = [join(here, 'run.mjs'), MODE, '--no-build', '--systems', 'hub,limit', '--scenarios', SCENARIOS,
    '--connect-repeats', '0', '--pairs', '1', '--out', out];
  console.error(`[ab] round ${round + 1}/${ROUNDS}: ${label} (${bin})`);
  const r = spawnSync(process.execPath, args, { env: { ...process.env, HUB_BIN: resolve(bin) }, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`run.mjs for ${label} failed (${r.status})`);
  return JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')).summary;
}

const runs = { A: [], B: [] };
for (let i = 0; i < ROUNDS; i++) {
  const order = i % 2 ? ['B', 'A'] : ['A', 'B'];
  for (const label of order) runs[label].push(once(label, label === 'A' ? A : B, i));
}

const fmt = (f, v) => (v == null ? 'n/a' : f(v));
let md = `A: \`${A}\`  \nB: \`${B}\`  \n${ROUNDS} rounds, ${MODE.slice(2)} sizes, scenarios ${SCENARIOS}, alternating which goes first.\n\n`;
md += '| figure | A, each round | B, each round | A median | B median | B / A | A / limit, median | B / limit, median | (B/limit) / (A/limit) |\n|---|---|---|---|---|---|---|---|---|\n';
for (const [k, name, f] of FIGURES) {
  const hubA = runs.A.map((s) => s.hub?.[k] ?? null), hubB = runs.B.map((s) => s.hub?.[k] ?? null);
  const relA = runs.A.map((s) => (s.hub?.[k] != null && s.limit?.[k] ? s.hub[k] / s.limit[k] : null));
  const relB = runs.B.map((s) => (s.hub?.[k] != null && s.limit?.[k] ? s.hub[k] / s.limit[k] : null));
  const [ma, mb, ra, rb] = [median(hubA), median(hubB), median(relA), median(relB)];
  const q = (x, y) => (x != null && y != null && x !== 0 ? `${(y / x).toFixed(3)}×` : 'n/a');
  md += `| ${name} | ${hubA.map((v) => fmt(f, v)).join(', ')} | ${hubB.map((v) => fmt(f, v)).join(', ')} | ${fmt(f, ma)} | ${fmt(f, mb)} | ${q(ma, mb)} | ${ra?.toFixed(3) ?? 'n/a'} | ${rb?.toFixed(3) ?? 'n/a'} | ${q(ra, rb)} |\n`;
}
console.log(md);
