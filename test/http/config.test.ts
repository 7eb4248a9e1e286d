import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError, defaultConfigPath, redactConfig } from '../../server/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rs-config-'));
function file(obj: unknown): string {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return f;
}

test('the shipped default config is valid', () => {
  const c = loadConfig({ file: defaultConfigPath, env: {} });
  assert.ok(path.isAbsolute(c.model));
  assert.equal(c.port, 8080);
});

test('file < env < flags', () => {
  const f = file({ model: 'm.gguf', port: 1000, parallel: 2 });
  const c = loadConfig({ file: f, env: { RELU_SERVE_PORT: '2000', RELU_SERVE_PARALLEL: '3' }, flags: { port: '3000' }, cwd: '/tmp' });
  assert.equal(c.port, 3000);
  assert.equal(c.parallel, 3);
  const c2 = loadConfig({ file: f, env: { RELU_SERVE_API_KEYS: 'a, b', RELU_SERVE_MODEL: 'x.gguf' }, cwd: '/srv' });
  assert.deepEqual(c2.apiKeys, ['a', 'b']);
  assert.equal(c2.model, '/srv/x.gguf');
  assert.deepEqual(redactConfig(c2).apiKeys, ['***', '***']);
});

test('bad values fail with the key and where it came from', () => {
  assert.throws(() => loadConfig({ file: file({ model: 'm', port: 'eighty' }), env: {} }), (e: Error) => e instanceof ConfigError && /port .*must be an integer/.test(e.message));
  assert.throws(() => loadConfig({ file: file({ model: 'm', prot: 1 }), env: {} }), /unknown key 'prot'/);
  assert.throws(() => loadConfig({ file: file({ model: 'm' }), env: { RELU_SERVE_PARALLEL: '0' } }), /parallel \(from environment RELU_SERVE_PARALLEL\) must be in \[1, 256\]/);
  assert.throws(() => loadConfig({ file: file({ model: 'm' }), env: {}, flags: { logLevel: 'loud' } }), /logLevel \(from command line\) must be one of/);
  assert.throws(() => loadConfig({ file: file('{not json'), env: {} }), /not valid JSON/);
  assert.throws(() => loadConfig({ file: path.join(dir, 'missing.json'), env: {} }), /cannot read config file/);
  assert.throws(() => loadConfig({ file: file({}), env: {} }), /no model/);
  assert.throws(() => loadConfig({ file: file({ model: 'm', parallel: 8, batchSize: 4 }), env: {} }), /batchSize \(4\) must be at least parallel \(8\)/);
});

test('device settings: keys, env and flags; budgets and sizes are checked at start', () => {
  const f = file({ model: 'm.gguf', device: 'emu', vramBudget: '40%', placement: 'p.rspl' });
  const c = loadConfig({ file: f, env: { RELU_SERVE_STATS: 's.rsst', RELU_SERVE_EMU_LATENCY_US: '50' }, flags: { vramBudget: '6GiB' }, cwd: '/srv' });
  assert.equal(c.device, 'emu');
  assert.equal(c.vramBudget, '6GiB');
  assert.ok(path.isAbsolute(c.placement!), 'a path in the file is resolved');
  assert.equal(c.stats, '/srv/s.rsst');
  assert.equal(c.emuLatencyUs, 50);
  assert.equal(loadConfig({ file: file({ model: 'm' }), env: {} }).device, 'auto');
  assert.throws(() => loadConfig({ file: file({ model: 'm' }), env: { RELU_SERVE_DEVICE: 'tpu' } }), /device \(from environment RELU_SERVE_DEVICE\) must be one of "auto", "cpu", "cuda", "emu"/);
  assert.throws(() => loadConfig({ file: file({ model: 'm' }), env: {}, flags: { vramBudget: 'lots' } }), (e: Error) => e instanceof ConfigError && /vramBudget: cannot read "lots" as a size/.test(e.message));
  assert.throws(() => loadConfig({ file: file({ model: 'm', vramBudget: '150%' }), env: {} }), /vramBudget: .*a share of free memory must be in \(0%, 100%\]/);
  assert.throws(() => loadConfig({ file: file({ model: 'm', emuMemory: 'big' }), env: {} }), /emuMemory: cannot read "big" as a size/);
});
