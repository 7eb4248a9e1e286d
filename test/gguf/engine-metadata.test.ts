// Metadata of every value type written by the TS writer, read back by the engine's C++
// loader (the reader the server really uses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syntheticModelSpec } from '../../server/gguf/synthetic-model.js';
import { writeGguf } from '../../server/gguf/writer.js';
import type { TypedValue } from '../../server/gguf/encoder.js';

function root(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const addonBuilt = existsSync(join(root(), 'build', 'Release', 'relu_serve.node'));

const EXTRA: [string, TypedValue][] = [
  ['x.u8', { type: 'u8', value: 200 }],
  ['x.i8', { type: 'i8', value: -100 }],
  ['x.u16', { type: 'u16', value: 60000 }],
  ['x.i16', { type: 'i16', value: -30000 }],
  ['x.u32', { type: 'u32', value: 4000000000 }],
  ['x.i32', { type: 'i32', value: -2000000000 }],
  ['x.f32', { type: 'f32', value: 1.5 }],
  ['x.bool', { type: 'bool', value: true }],
  ['x.str', { type: 'string', value: 'ünïcode ▁ 😀' }],
  ['x.u64', { type: 'u64', value: 2n ** 63n + 5n }],
  ['x.u64s', { type: 'u64', value: 7 }],
  ['x.i64', { type: 'i64', value: -(2n ** 62n) }],
  ['x.f64', { type: 'f64', value: 0.1 }],
  ['x.arr.i16', { type: 'array', elemType: 'i16', value: [-1, 2, -3] }],
  ['x.arr.str', { type: 'array', elemType: 'string', value: ['a', '', 'ç'] }],
  ['x.arr.bool', { type: 'array', elemType: 'bool', value: [false, true] }],
  [
    'x.arr.nested',
    {
      type: 'array',
      elemType: 'array',
      value: [
        { type: 'array', elemType: 'u8', value: [1, 2] },
        { type: 'array', elemType: 'f32', value: [0.5] },
      ],
    },
  ],
];

test('the engine loader reads back every metadata type the writer writes', { skip: !addonBuilt && 'native addon not built' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rs-meta-'));
  try {
    const spec = await syntheticModelSpec({ arch: 'llama', size: 'tiny', type: 'f32', seed: 1 });
    const path = join(dir, 'm.gguf');
    await writeGguf(path, { ...spec, metadata: [...spec.metadata, ...EXTRA] });
    const { Model } = await import('../../server/engine/engine.js');
    const model = await Model.load(path);
    try {
      const m = model.metadata;
      assert.equal(m.get('x.u8'), 200);
      assert.equal(m.get('x.i8'), -100);
      assert.equal(m.get('x.u16'), 60000);
      assert.equal(m.get('x.i16'), -30000);
      assert.equal(m.get('x.u32'), 4000000000);
      assert.equal(m.get('x.i32'), -2000000000);
      assert.equal(m.get('x.f32'), 1.5);
      assert.equal(m.get('x.bool'), true);
      assert.equal(m.get('x.str'), 'ünïcode ▁ 😀');
      assert.equal(m.get('x.u64'), 2n ** 63n + 5n);
      assert.equal(m.get('x.u64s'), 7);
      assert.equal(m.get('x.i64'), -(2n ** 62n));
      assert.equal(m.get('x.f64'), 0.1);
      assert.deepEqual(m.get('x.arr.i16'), [-1, 2, -3]);
      assert.deepEqual(m.get('x.arr.str'), ['a', '', 'ç']);
      assert.deepEqual(m.get('x.arr.bool'), [false, true]);
      assert.deepEqual(m.get('x.arr.nested'), [[1, 2], [0.5]]);
      assert.equal(m.get('llama.embedding_length'), 64);
      assert.equal(model.info.nEmbd, 64);
      assert.equal(model.info.nLayer, 2);
      assert.equal(model.info.nHeadKv, 2);
      assert.equal(model.info.ggufVersion, 3);
    } finally {
      model.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
