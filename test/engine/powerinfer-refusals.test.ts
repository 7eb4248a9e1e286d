// PowerInfer (PWRI) files the loader must refuse, each with RS_ERR_FORMAT and a message
// naming the tensor or key: predictor halves missing or unmatched, an absurd predictor
// rank, a non-finite threshold, no down matrix in either layout. The control case (a
// two-layer PWRI file with predictors on every layer) loads.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Model } from '../../server/engine/engine.js';
import { writeGguf } from '../../server/gguf/writer.js';
import { testDir } from './models.js';
import { D, FF, tinyParts, toSpec, type SpecParts } from './spec.js';

const RANK = 17;
let n = 0;

function f32(count: number, fill = 0.01): Uint8Array {
  return new Uint8Array(new Float32Array(count).fill(fill).buffer);
}

/** Two layers, each with fc1 {D, RANK} and fc2 {RANK, FF}, in a PWRI file. */
function pwriParts(): SpecParts {
  const p = tinyParts();
  p.metadata.set('llama.block_count', { type: 'u32', value: 2 });
  p.metadata.set('powerinfer.sparse_threshold', { type: 'f32', value: 0 });
  const layer1 = p.tensors.filter((t) => t.name.startsWith('blk.0.')).map((t) => ({ ...t, name: t.name.replace('blk.0.', 'blk.1.') }));
  p.tensors.push(...layer1);
  for (const l of [0, 1]) {
    p.tensors.push({ name: `blk.${l}.fc1.weight`, dims: [D, RANK], type: 'f32', data: f32(D * RANK) });
    p.tensors.push({ name: `blk.${l}.fc2.weight`, dims: [RANK, FF], type: 'f32', data: f32(RANK * FF) });
  }
  return p;
}

async function load(p: SpecParts): Promise<Model> {
  const path = join(testDir, `pwri-${n++}.gguf`);
  await writeGguf(path, toSpec(p, { magic: 'PWRI' }));
  return Model.load(path);
}

function refused(p: SpecParts, message: RegExp) {
  return assert.rejects(load(p), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'RS_ERR_FORMAT', `code for: ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
}

const without = (p: SpecParts, name: string) => ((p.tensors = p.tensors.filter((t) => t.name !== name)), p);

test('control: a two-layer PWRI file with predictors on both layers loads', async () => {
  const m = await load(pwriParts());
  assert.equal(m.info.isPowerInfer, true);
  assert.equal(m.info.hasPredictors, true);
  m.dispose();
});

test('fc2 without fc1 is refused, naming both tensors', async () => {
  await refused(without(pwriParts(), 'blk.1.fc1.weight'), /tensor 'blk\.1\.fc2\.weight' has no matching 'blk\.1\.fc1\.weight'/);
});

test('a layer without its predictor is refused when other layers have one', async () => {
  const p = without(without(pwriParts(), 'blk.1.fc1.weight'), 'blk.1.fc2.weight');
  await refused(p, /layer 1 has no predictor \(blk\.1\.fc1\.weight\) although other layers do/);
});

test('an absurd predictor rank is refused', async () => {
  const p = pwriParts();
  const fc1 = p.tensors.find((t) => t.name === 'blk.0.fc1.weight')!;
  fc1.dims = [D, 65537];
  fc1.data = f32(D * 65537);
  await refused(p, /tensor 'blk\.0\.fc1\.weight' has an absurd predictor rank 65537/);
});

for (const value of [NaN, Infinity]) {
  test(`a sparse threshold of ${value} is refused`, async () => {
    const p = pwriParts();
    p.metadata.set('powerinfer.sparse_threshold', { type: 'f32', value });
    await refused(p, /powerinfer\.sparse_threshold is not finite/);
  });
}

test('no down matrix in either layout is refused, naming both names', async () => {
  await refused(without(pwriParts(), 'blk.0.ffn_down.weight'), /missing tensor 'blk\.0\.ffn_down\.weight' \(nor is there a PowerInfer 'blk\.0\.ffn_down_t\.weight'\)/);
});
