// Hyperparameters that only look valid after a careless conversion: a u64 head count
// narrowed to 32 bits (2^32 + 2 read as 2) and an infinite RoPE base. Both must be
// refused at load with a message naming the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Model } from '../../server/engine/engine.js';
import { writeGguf } from '../../server/gguf/writer.js';
import { testDir } from '../engine/models.js';
import { tinyParts, toSpec } from '../engine/spec.js';
import type { TypedValue } from '../../server/gguf/encoder.js';

async function refused(key: string, value: TypedValue, re: RegExp, name: string): Promise<void> {
  const p = tinyParts();
  p.metadata.set(key, value);
  const path = join(testDir, `hparam-${name}.gguf`);
  await writeGguf(path, toSpec(p));
  await assert.rejects(Model.load(path), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'RS_ERR_FORMAT', e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('head_count_kv = 2^32 + 2 (u64) is refused, not read as 2', async () => {
  await refused('llama.attention.head_count_kv', { type: 'u64', value: (1n << 32n) + 2n }, /head_count_kv' = 4294967298/, 'kv-u64');
  // The control: the same count as a small u64 loads (2 query heads, 2 KV heads).
  const p = tinyParts();
  p.metadata.set('llama.attention.head_count_kv', { type: 'u64', value: 2n });
  const path = join(testDir, 'hparam-kv-ok.gguf');
  await writeGguf(path, toSpec(p));
  // KV width 16 in the spec's tensors needs 1 KV head: 2 is refused later, by tensor shape, not by this check.
  await Model.load(path).then((m) => m.dispose(), (e: Error) => assert.doesNotMatch(e.message, /head_count_kv' =/));
});

test('rope.freq_base = inf (f32 and f64) is refused', async () => {
  await refused('llama.rope.freq_base', { type: 'f32', value: Infinity }, /rope\.freq_base must be a positive finite number/, 'rope-inf32');
  await refused('llama.rope.freq_base', { type: 'f64', value: Infinity }, /rope\.freq_base must be a positive finite number/, 'rope-inf64');
  // 1e300 as f64 overflows the float the engine keeps.
  await refused('llama.rope.freq_base', { type: 'f64', value: 1e300 }, /rope\.freq_base/, 'rope-huge');
});
