// `relu-serve make-model --help` exits 0 (its --seed default was a BigInt, which
// commander's help printed with JSON.stringify and threw).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));

test('make-model --help prints the options and exits 0', () => {
  const r = spawnSync(process.execPath, [cli, 'make-model', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /--seed <n>/);
});
