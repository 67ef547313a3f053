// What `npm pack` puts in the package is what package.json and the README
// promise: the client (src/), its types, the guard console, the licence, and
// nothing of the tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));

test('package.json: MIT with a LICENSE file, repository, the console described and shipped', () => {
  assert.equal(pkg.license, 'MIT');
  const license = readFileSync(join(pkgDir, 'LICENSE'), 'utf8');
  assert.match(license, /^MIT License/);
  assert.match(license, /Copyright \(c\) \d{4} Armonía Hub contributors/);
  assert.equal(pkg.repository?.type, 'git');
  assert.equal(pkg.repository?.directory, 'clients/js');
  assert.match(pkg.description, /console/);
  assert.ok(pkg.files.includes('console/'), 'the description names the console: it ships');
  assert.equal(pkg.dependencies, undefined, 'no runtime dependency');
});

test('npm pack --dry-run lists src/, console/, index.d.ts, README.md, LICENSE and no tests', async () => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = await new Promise((resolve, reject) => {
    execFile(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: pkgDir, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`npm pack failed: ${err.message}\n${stderr}`)) : resolve(stdout));
  });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  for (const want of ['LICENSE', 'README.md', 'package.json', 'index.d.ts', 'src/index.js', 'src/client.js', 'src/codec.js',
    'console/index.html', 'console/console.js', 'console/console.css'])
    assert.ok(files.includes(want), `${want} is not in the package: ${files.join(', ')}`);
  assert.deepEqual(files.filter((f) => f.startsWith('test/') || f.startsWith('node_modules/')), [], 'tests are not shipped');
  // Every file the package names as an entry point is in it.
  assert.ok(files.includes(pkg.main.replace(/^\.\//, '')));
  assert.ok(files.includes(pkg.types.replace(/^\.\//, '')));
});
