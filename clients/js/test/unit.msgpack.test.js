// MessagePack is optional (a peer dependency marked optional): without
// @msgpack/msgpack the package loads and JSON works, and format 'msgpack'
// fails with a clear error; with it, the library is imported only when
// format 'msgpack' is asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCodec } from '../src/codec.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

test('package.json: @msgpack/msgpack is an optional peer dependency, not a dependency', () => {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(pkg.dependencies?.['@msgpack/msgpack'], undefined);
  assert.ok(pkg.peerDependencies?.['@msgpack/msgpack'], 'declared as a peer');
  assert.equal(pkg.peerDependenciesMeta?.['@msgpack/msgpack']?.optional, true);
});

test('without @msgpack/msgpack (resolution blocked): JSON works, msgpack says what to install', async () => {
  const out = await new Promise((resolve) => {
    execFile(process.execPath, ['--import', './test/lib/block-msgpack.js', 'test/lib/without-msgpack.check.js'], { cwd: pkgDir },
      (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, text: `${stdout}${stderr}` }));
  });
  assert.equal(out.code, 0, out.text);
  assert.match(out.text, /ok: JSON without @msgpack\/msgpack/);
});

test('with @msgpack/msgpack installed: format msgpack loads it on demand', async () => {
  const codec = await loadCodec('msgpack');
  assert.equal(codec.subprotocol, 'armonia.v1.msgpack');
  const bytes = codec.encode({ type: 'ping' });
  assert.ok(bytes instanceof Uint8Array);
  assert.deepEqual(codec.decode(bytes), { type: 'ping' });
  assert.equal((await loadCodec('json')).subprotocol, 'armonia.v1.json');
});
