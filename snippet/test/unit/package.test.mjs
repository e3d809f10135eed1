// The npm package: what `npm pack` ships, its types checked by tsc on a
// typed usage example, and its version tied to the API's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
const dir = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'));

test('npm pack ships the entries, the script-tag file, the adapters and their types, nothing else', async () => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir });
  const [packed] = JSON.parse(stdout);
  assert.deepEqual(packed.files.map((f) => f.path).sort(), [
    'README.md',
    'adapters/driver.d.ts', 'adapters/driver.mjs', 'adapters/shepherd.d.ts', 'adapters/shepherd.mjs',
    'index.d.ts', 'index.mjs', 'package.json', 'waymark.js',
  ]);
  assert.equal(pkg.private, undefined, 'publishable');
  assert.deepEqual(Object.keys(pkg.dependencies || {}), [], 'the package needs nothing at run time');
  for (const lib of ['driver.js', 'shepherd.js']) {
    assert.ok(pkg.devDependencies[lib], `${lib} is pinned for the tests only`);
    assert.equal(pkg.peerDependenciesMeta[lib].optional, true, `${lib} is optional for users`);
  }
  // Every export resolves to a shipped file.
  const shipped = new Set(packed.files.map((f) => './' + f.path));
  for (const [name, target] of Object.entries(pkg.exports)) {
    for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
      assert.ok(shipped.has(file), `export ${name}: ${file} is not shipped`);
    }
  }
});

test('the package version follows the API version (docs/openapi.yaml)', () => {
  const spec = readFileSync(new URL('../docs/openapi.yaml', dir), 'utf8');
  const api = /^info:\n(?:  .*\n)*?  version: "?(\d+)"?/m.exec(spec)?.[1];
  assert.ok(api, 'docs/openapi.yaml has info.version');
  assert.equal(pkg.version.split('.')[0], api);
});

test('the typed usage example compiles, and the misuses are refused', async () => {
  // tsc exits non-zero on any error, including an @ts-expect-error that
  // expected one in vain.
  await run(new URL('node_modules/.bin/tsc', dir).pathname, ['-p', 'test/types'], { cwd: dir });
});

test('the module entry imports without a window (server-side rendering) and does nothing', async () => {
  const m = await import('../../index.mjs');
  assert.deepEqual(Object.keys(m).sort(), ['feedback', 'init', 'on', 'once', 'state', 'track']);
  assert.equal(await m.init('ws1', { user: { username: 'u' }, endpoint: 'https://api.example' }), null);
  assert.equal(m.track('tour', 't', 'started'), undefined);
  assert.equal(await m.once('tour', 't', () => assert.fail('shown')), false);
  assert.equal(m.state(), null);
  await assert.rejects(m.feedback({ text: 'x' }));
});
