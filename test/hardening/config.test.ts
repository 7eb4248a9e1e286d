// Config-file hardening: a UTF-8 BOM is accepted, an out-of-range number is reported as
// itself (1e400 parses as Infinity, which JSON.stringify printed as "null"), and an
// invalid apiKeys list never reaches the error message (it is logged at start-up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, readConfigFile } from '../../server/config.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-cfg-'));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.json`);
  writeFileSync(p, text);
  return p;
}

test('a config file with a UTF-8 byte order mark is read', () => {
  const cfg = readConfigFile(file('\ufeff{"port": 9000}'));
  assert.equal(cfg.port, 9000);
});

test('"port": 1e400 is reported as Infinity, not null', () => {
  assert.throws(() => readConfigFile(file('{"port": 1e400}')), (e: Error) => {
    assert.match(e.message, /port .* got Infinity/);
    return true;
  });
});

test('an invalid apiKeys list is not echoed in the error', () => {
  const secret = 'sk-live-very-secret-key';
  for (const text of [`{"apiKeys": ["${secret}", 5]}`, `{"apiKeys": "${secret}"}`, `{"apiKeys": ["${secret}", ""]}`]) {
    assert.throws(() => readConfigFile(file(text)), (e: Error) => {
      assert.match(e.message, /apiKeys/);
      assert.doesNotMatch(e.message, /very-secret/);
      return true;
    });
  }
  assert.throws(() => loadConfig({ file: file('{"model": "m.gguf"}'), env: { RELU_SERVE_API_KEYS: ',' }, flags: { apiKeys: 7 } }), (e: Error) => {
    assert.doesNotMatch(e.message, /7/);
    return true;
  });
});

test('mmap: a boolean in the file, true/false in the environment', () => {
  assert.equal(loadConfig({ file: file('{"model": "m.gguf", "mmap": false}'), env: {} }).mmap, false);
  assert.equal(loadConfig({ file: file('{"model": "m.gguf"}'), env: { RELU_SERVE_MMAP: 'false' } }).mmap, false);
  assert.equal(loadConfig({ file: file('{"model": "m.gguf"}'), env: {} }).mmap, true);
  assert.throws(() => loadConfig({ file: file('{"model": "m.gguf", "mmap": "no"}'), env: {} }), /mmap .* true or false/);
});
