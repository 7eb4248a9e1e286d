// Config keys the older config tests left out: sparseThreshold and sparseMaxBatch from
// each source, list parsing from text, and where relative paths are resolved from
// (file: the package root, so the file works from any cwd; env and flags: the cwd).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, defaultConfigPath } from '../../server/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rs-config-keys-'));
let n = 0;
function file(obj: unknown): string {
  const f = path.join(dir, `c${n++}.json`);
  writeFileSync(f, JSON.stringify(obj));
  return f;
}
// configs/default.json sits one level under the package root.
const packageRoot = path.dirname(path.dirname(defaultConfigPath));

test('sparseThreshold: file, env and flag; null and empty text mean "the model\'s own"', () => {
  assert.equal(loadConfig({ file: file({ model: 'm' }), env: {} }).sparseThreshold, null);
  assert.equal(loadConfig({ file: file({ model: 'm', sparseThreshold: 0.25 }), env: {} }).sparseThreshold, 0.25);
  assert.equal(loadConfig({ file: file({ model: 'm', sparseThreshold: 0.25 }), env: { RELU_SERVE_SPARSE_THRESHOLD: '-0.5' } }).sparseThreshold, -0.5);
  assert.equal(loadConfig({ file: file({ model: 'm', sparseThreshold: 0.25 }), env: { RELU_SERVE_SPARSE_THRESHOLD: '' } }).sparseThreshold, null);
  assert.equal(loadConfig({ file: file({ model: 'm' }), env: {}, flags: { sparseThreshold: '1e-3' } }).sparseThreshold, 0.001);
  assert.throws(() => loadConfig({ file: file({ model: 'm' }), env: { RELU_SERVE_SPARSE_THRESHOLD: 'high' } }), /sparseThreshold \(from environment RELU_SERVE_SPARSE_THRESHOLD\) must be a number or null/);
  assert.throws(() => loadConfig({ file: file({ model: 'm', sparseThreshold: '0.5' }), env: {} }), /sparseThreshold .* must be a number or null/);
});

test('sparseMaxBatch: integer in [0, 65536] from each source', () => {
  assert.equal(loadConfig({ file: file({ model: 'm' }), env: {} }).sparseMaxBatch, 0);
  assert.equal(loadConfig({ file: file({ model: 'm', sparseMaxBatch: 4 }), env: {} }).sparseMaxBatch, 4);
  assert.equal(loadConfig({ file: file({ model: 'm', sparseMaxBatch: 4 }), env: { RELU_SERVE_SPARSE_MAX_BATCH: '65536' } }).sparseMaxBatch, 65536);
  assert.equal(loadConfig({ file: file({ model: 'm' }), env: {}, flags: { sparseMaxBatch: '0' } }).sparseMaxBatch, 0);
  assert.throws(() => loadConfig({ file: file({ model: 'm' }), env: { RELU_SERVE_SPARSE_MAX_BATCH: '65537' } }), /sparseMaxBatch .* must be in \[0, 65536\], got 65537/);
  assert.throws(() => loadConfig({ file: file({ model: 'm', sparseMaxBatch: -1 }), env: {} }), /sparseMaxBatch .* must be in \[0, 65536\], got -1/);
  assert.throws(() => loadConfig({ file: file({ model: 'm', sparseMaxBatch: 1.5 }), env: {} }), /sparseMaxBatch .* must be an integer/);
});

test('lists: comma-separated text is trimmed and empty items dropped; a file needs a JSON array', () => {
  const f = file({ model: 'm', apiKeys: ['k1'] });
  assert.deepEqual(loadConfig({ file: f, env: {} }).apiKeys, ['k1']);
  assert.deepEqual(loadConfig({ file: f, env: { RELU_SERVE_API_KEYS: ' a ,b,, c ' } }).apiKeys, ['a', 'b', 'c']);
  assert.deepEqual(loadConfig({ file: f, env: { RELU_SERVE_API_KEYS: '' } }).apiKeys, []);
  assert.deepEqual(loadConfig({ file: f, env: {}, flags: { apiKeys: 'x,y' } }).apiKeys, ['x', 'y']);
  assert.throws(() => loadConfig({ file: file({ model: 'm', apiKeys: 'a,b' }), env: {} }), /apiKeys .* must be a list of non-empty strings/);
  assert.throws(() => loadConfig({ file: file({ model: 'm', apiKeys: ['a', ''] }), env: {} }), /apiKeys .* must be a list of non-empty strings/);
});

test('relative paths: from the package root in the file, from the cwd in env and flags; absolute ones kept', () => {
  const f = file({ model: 'models/x.gguf', placement: 'p.rspl', chatTemplate: '/abs/t.jinja' });
  const c = loadConfig({ file: f, env: {}, cwd: '/srv/run' });
  assert.equal(c.model, path.join(packageRoot, 'models/x.gguf'));
  assert.equal(c.placement, path.join(packageRoot, 'p.rspl'));
  assert.equal(c.chatTemplate, '/abs/t.jinja');
  const e = loadConfig({ file: f, env: { RELU_SERVE_MODEL: 'y.gguf' }, flags: { placement: '../q.rspl' }, cwd: '/srv/run' });
  assert.equal(e.model, '/srv/run/y.gguf');
  assert.equal(e.placement, '/srv/q.rspl');
});
