// The type declarations, checked by the compiler: test/types/events.ts must
// compile with `tsc --noEmit` under strict settings, which also fails on any
// of its @ts-expect-error lines that compiles (a wrong field that index.d.ts
// lets through). typescript is a devDependency (npm ci).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

test('index.d.ts: per-kind event data narrows on kind, and wrong fields do not compile', async () => {
  let tsc;
  try {
    tsc = createRequire(join(pkgDir, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    assert.fail('typescript is not installed: run `npm ci` in clients/js');
  }
  const out = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', join(pkgDir, 'test', 'types', 'tsconfig.json')], { cwd: pkgDir }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code ?? 1 : 0, text: `${stdout}${stderr}` }));
  });
  assert.equal(out.code, 0, `tsc reported:\n${out.text}`);
});
