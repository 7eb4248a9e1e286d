// Stats and placement files: round trips, refusal of corrupt / foreign files, and
// PowerInfer's .generated.gpuidx layout read back with the GGUF header reader.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelIdentity } from '../../server/profiler/model-identity.js';
import {
  decodeStats,
  encodeStats,
  mergeStats,
  readStatsFile,
  writeStatsFile,
  type ActivationStats,
} from '../../server/profiler/stats-format.js';
import {
  decodePlacement,
  encodePlacement,
  placementFileFromPlan,
  readPlacementFile,
  writePlacementFile,
  writePowerInferGpuIdx,
} from '../../server/profiler/placement-format.js';
import { planPlacement } from '../../server/profiler/placement-plan.js';
import { writeFileAtomic } from '../../server/profiler/binary-io.js';
import { readGgufHeader } from '../../server/gguf/header-reader.js';
import { powerLawCounts, syntheticModel } from './synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-prof-fmt-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = syntheticModel({ nLayer: 3, nFf: 64, nEmbd: 32 });
const id = modelIdentity(model);

function stats(extra: Partial<ActivationStats> = {}): ActivationStats {
  return { identity: id, tokens: 1000, source: 'profile', counts: powerLawCounts(3, 64, 1000, 0.8, 5), ...extra };
}

test('model fingerprint changes with any tensor type, shape or name, not with tensor order', () => {
  const base = modelIdentity(model).hash;
  const reordered = { ...model, tensors: [...model.tensors].reverse() };
  assert.deepEqual(modelIdentity(reordered).hash, base);
  const requant = syntheticModel({ nLayer: 3, nFf: 64, nEmbd: 32, ffnTypes: () => ['q8_0', 'f16', 'f16'] });
  assert.notDeepEqual(modelIdentity(requant).hash, base);
  const renamed = { ...model, tensors: model.tensors.map((t, i) => (i === 3 ? { ...t, name: 'x' } : t)) };
  assert.notDeepEqual(modelIdentity(renamed).hash, base);
  assert.notDeepEqual(modelIdentity(syntheticModel({ nLayer: 3, nFf: 96, nEmbd: 32 })).hash, base);
});

test('stats round-trip (u32 and u64 counts, with and without predictor stats)', () => {
  const s = stats();
  assert.deepEqual(decodeStats(encodeStats(s)), { ...s, predictor: undefined });
  const big = stats({ counts: s.counts.map((c) => c.map((v) => v * 2 ** 33)), tokens: 2 ** 40 });
  assert.deepEqual(decodeStats(encodeStats(big)).counts, big.counts);
  const pred = stats({ predictor: [0, 1, 2].map((l) => ({ truePositive: 10 + l, falsePositive: 3, falseNegative: l })) });
  assert.deepEqual(decodeStats(encodeStats(pred)).predictor, pred.predictor);
  const path = join(dir, 'a.rsst');
  writeStatsFile(path, s);
  assert.deepEqual(readStatsFile(path, { identity: id, nLayer: 3, nFf: 64 }).counts, s.counts);
});

test('stats files that are corrupt, truncated, foreign or from another model are refused clearly', () => {
  const good = encodeStats(stats());
  const path = join(dir, 'b.rsst');
  assert.throws(() => decodeStats(Buffer.from('GGUF0000000000000000')), /not a relu-serve stats file \(magic "GGUF"/);
  const v2 = Buffer.from(good);
  v2.writeUInt32LE(2, 4);
  assert.throws(() => decodeStats(v2), /version 2 is not supported/);
  assert.throws(() => decodeStats(good.subarray(0, good.length - 100)), /checksum mismatch/);
  const flipped = Buffer.from(good);
  flipped[200] ^= 1;
  assert.throws(() => decodeStats(flipped), /checksum mismatch/);
  assert.throws(() => decodeStats(good.subarray(0, 5)), /too short/);
  writeStatsFile(path, stats());
  const other = modelIdentity(syntheticModel({ nLayer: 3, nFf: 64, nEmbd: 32, name: 'other', ffnTypes: () => ['q4_0', 'q4_0', 'q4_0'] }));
  assert.throws(() => readStatsFile(path, { identity: other, nLayer: 3, nFf: 64 }), /made for a different model: it is for "synthetic"/);
  assert.throws(() => readStatsFile(join(dir, 'missing.rsst')), /cannot read stats file/);
  assert.throws(() => encodeStats(stats({ counts: [Float64Array.of(1.5)] })), /not a non-negative integer/);
});

test('stats merge adds counts and tokens and refuses another model', () => {
  const a = stats();
  const m = mergeStats(a, a);
  assert.equal(m.tokens, 2000);
  assert.equal(m.counts[1][7], 2 * a.counts[1][7]);
  const other = { ...a, identity: { ...id, hash: new Uint8Array(32) } };
  assert.throws(() => mergeStats(a, other), /different model/);
});

test('placement file round-trips and is tied to the model; gpuidx matches PowerInfer layout', async () => {
  const s = stats();
  const plan = planPlacement({ ...model, identity: id }, s, { budget: 110_000, nCtx: 64, nBatch: 4 });
  assert.ok(plan.layers.some((l) => l.gpuNeurons.length > 0 && l.gpuNeurons.length < 64), 'a partial placement');
  const file = placementFileFromPlan(plan);
  const back = decodePlacement(encodePlacement(file));
  assert.deepEqual(back, file);
  const path = join(dir, 'p.rspl');
  writePlacementFile(path, file);
  assert.deepEqual(readPlacementFile(path, id).layers, file.layers);
  assert.throws(() => readPlacementFile(path, { ...id, hash: new Uint8Array(32).fill(7) }), /different model/);
  const bad = readFileSync(path);
  bad[bad.length - 1] ^= 0xff;
  writeFileSync(path, bad);
  assert.throws(() => readPlacementFile(path), /checksum mismatch/);

  // PowerInfer's kernels need hot counts in multiples of 256 (or none, or all): a
  // placement solved without that granularity is refused, one solved with it is written.
  const gpuidx = join(dir, 'model.gguf.generated.gpuidx');
  await assert.rejects(writePowerInferGpuIdx(gpuidx, file), /layer 0 places \d+ of 64 neurons: PowerInfer's kernels need a multiple of 256/);
  const grouped = placementFileFromPlan(planPlacement({ ...model, identity: id }, s, { budget: 220_000, nCtx: 64, nBatch: 4, group: 256 }));
  assert.deepEqual(grouped.layers.map((l) => l.gpuNeurons.length > 0 && l.gpuNeurons.length < 64), [false, false, false]);
  assert.ok(grouped.layers.some((l) => l.gpuNeurons.length === 64), 'some layers whole on the GPU');
  await writePowerInferGpuIdx(gpuidx, grouped);
  const raw = readFileSync(gpuidx);
  const h = await readGgufHeader(gpuidx);
  assert.equal(h.magic, 'PWRI');
  assert.equal(h.metadata.get('general.architecture')?.value, 'generic.gpu_index');
  assert.equal(h.metadata.get('generic.gpu_index.block_count')?.value, 3);
  assert.equal(h.metadata.get('generic.gpu_index.block_count')?.type, 'u32');
  assert.equal(h.metadata.get('split.vram_capacity')?.type, 'u64');
  assert.equal(Number(h.metadata.get('split.vram_capacity')?.value), grouped.budget - grouped.fixedBytes);
  assert.deepEqual(h.tensors.map((t) => t.name), ['blk.0.gpu_idx', 'blk.0.gpu_bucket', 'blk.1.gpu_idx', 'blk.1.gpu_bucket', 'blk.2.gpu_idx', 'blk.2.gpu_bucket']);
  h.tensors.forEach((t, i) => {
    const layer = grouped.layers[i >> 1];
    assert.equal(t.typeName, 'i32');
    const at = h.dataOffset + Number(t.offset);
    const vals = Array.from({ length: t.dims[0] }, (_, j) => raw.readInt32LE(at + 4 * j));
    if (i % 2 === 0) {
      assert.equal(vals.length, 64);
      vals.forEach((v, j) => assert.equal(v, layer.gpuNeurons.includes(j) ? 1 : 0));
    } else {
      assert.deepEqual(vals, [...layer.gpuNeurons]);
    }
  });
});

test('an atomic write that cannot rename fails with the cause and leaves neither its temporary nor a changed target', () => {
  const sub = join(dir, 'atomic');
  mkdirSync(join(sub, 'target'), { recursive: true });
  // The target is a directory: the temporary is written, the rename over it fails.
  assert.throws(() => writeFileAtomic(join(sub, 'target'), 'data'), (e: NodeJS.ErrnoException) => e.code === 'EISDIR' || e.code === 'ENOTEMPTY' || e.code === 'EEXIST');
  assert.deepEqual(readdirSync(sub), ['target']);
  assert.deepEqual(readdirSync(join(sub, 'target')), []);
  writeFileAtomic(join(sub, 'file'), 'data');
  assert.equal(readFileSync(join(sub, 'file'), 'utf8'), 'data');
  assert.deepEqual(readdirSync(sub).sort(), ['file', 'target']);
});
