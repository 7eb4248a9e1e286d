// train-predictor on tiny synthetic models: training converges and is reproducible, the
// written PowerInfer file loads (predictor mode with a predictor that selects every
// neuron equals exact mode), `profile` reads its predictors back and `place` accepts the
// stats; SwiGLU models, models too small and corpora too short are refused.
// Needs the native addon (npm run build).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { metadataValues, readGgufHeader } from '../../server/gguf/header-reader.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { vocabFromMetadata } from '../../server/tokenizer/vocab.js';
import { writeGguf } from '../../server/gguf/writer.js';
import { syntheticModelSpec } from '../../server/gguf/synthetic-model.js';
import { profileCommand } from '../../server/cli/profile.js';
import { placeCommand } from '../../server/cli/place.js';
import { readStatsFile } from '../../server/profiler/stats-format.js';
import { trainPredictors, type TrainPredictorsOptions, type TrainReport } from '../../server/training/train-predictors.js';
import { predictorQuality, thresholdForRecall } from '../../server/training/threshold.js';
import { buildPowerLawModel, writePowerLawModel } from '../profiler/powerlaw-model.js';
import { seededRandom } from '../profiler/synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-train-pred-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const modelPath = join(dir, 'relu.gguf');
const corpusPath = join(dir, 'corpus.txt');
const spec = { nLayer: 2, nFf: 128, nEmbd: 32, alpha: 0.5, seed: 3 };
const rand = seededRandom(11);
// Text of few distinct characters (byte-level tokens): the model's FFN input depends on
// the token alone (its attention output is zero), so a predictor can learn it exactly
// from a short corpus, and `profile` over the same text sees the same inputs.
let tokens = new Int32Array(0);
const ready = (async () => {
  await writePowerLawModel(modelPath, buildPowerLawModel(spec));
  writeFileSync(corpusPath, Array.from({ length: 1500 }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(''));
  const tok = new SpmTokenizer(vocabFromMetadata(metadataValues(await readGgufHeader(modelPath))));
  tokens = Int32Array.from(tok.encode(readFileSync(corpusPath, 'utf8')));
})();

function opts(o: Partial<TrainPredictorsOptions>): TrainPredictorsOptions {
  assert.ok(tokens.length >= 1000, `corpus tokens: ${tokens.length}`);
  return {
    modelPath, out: join(dir, 'out.powerinfer.gguf'), tokens, rank: 16, targetRecall: 0.99, seed: 5, epochs: 4,
    heldoutShare: 0.2, nCtx: 256, nBatch: 64, threads: 2, ...o,
  };
}

async function train(o: Partial<TrainPredictorsOptions>, path = modelPath): Promise<TrainReport> {
  await ready;
  const m = await Model.load(path);
  try {
    return await trainPredictors(m, opts({ modelPath: path, ...o }));
  } finally {
    m.dispose();
  }
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('threshold: the largest value keeping the target share of active pairs', () => {
  // 1 row, 8 neurons; active: 0, 2, 4, 6 with logits 4, 3, 2, 1.
  const logits = Float32Array.from([4, 9, 3, 9, 2, -5, 1, -5]);
  const mask = Uint8Array.from([0b01010101]);
  assert.equal(thresholdForRecall(logits, mask, 1, 8, 1), 1);
  assert.equal(thresholdForRecall(logits, mask, 1, 8, 0.75), 2);
  const q = predictorQuality(logits, mask, 1, 8, 2);
  assert.deepEqual([q.truePositive, q.falsePositive, q.falseNegative], [3, 2, 1]);
  assert.equal(q.activeShare, 0.5);
});

test('training converges, reaches the target recall on held-out rows, and is reproducible', async () => {
  const short = await train({ epochs: 1, out: join(dir, 'e1.gguf') });
  const a = await train({ epochs: 12, out: join(dir, 'a.gguf') });
  const b = await train({ epochs: 12, out: join(dir, 'b.gguf'), threads: 1 });
  for (const l of a.layers) {
    assert.ok(l.epochLoss[l.epochLoss.length - 1] < l.epochLoss[0], `layer ${l.layer} loss falls: ${l.epochLoss}`);
    assert.ok(l.heldout.recall >= 0.99, `layer ${l.layer} recall ${l.heldout.recall}`);
    // Longer training selects fewer neurons for the same recall.
    assert.ok(l.heldout.precision > short.layers[l.layer].heldout.precision, `layer ${l.layer}: precision ${l.heldout.precision} vs ${short.layers[l.layer].heldout.precision} after 1 epoch`);
    assert.ok(l.heldout.predictedShare < 0.5, `layer ${l.layer} selects ${l.heldout.predictedShare}`);
  }
  assert.equal(sha(join(dir, 'a.gguf')), sha(join(dir, 'b.gguf')), 'same seed and inputs, any thread count: same file');
  const c = await train({ epochs: 1, out: join(dir, 'c.gguf'), seed: 6 });
  assert.notEqual(sha(join(dir, 'e1.gguf')), sha(join(dir, 'c.gguf')), 'another seed: other weights');
  assert.equal(c.layers.length, 2);
});

test('the written file is PowerInfer format, loads, and a predictor selecting every neuron equals exact mode', async () => {
  await train({ epochs: 3 });
  const out = join(dir, 'out.powerinfer.gguf');
  const h = await readGgufHeader(out);
  assert.equal(h.magic, 'PWRI');
  assert.equal(h.metadata.get('powerinfer.sparse_threshold')?.value, -1);
  const names = new Set(h.tensors.map((t) => t.name));
  for (let l = 0; l < spec.nLayer; l++) {
    assert.ok(names.has(`blk.${l}.ffn_down_t.weight`) && !names.has(`blk.${l}.ffn_down.weight`));
    assert.deepEqual(h.tensors.find((t) => t.name === `blk.${l}.fc1.weight`)?.dims, [spec.nEmbd, 16]);
    assert.deepEqual(h.tensors.find((t) => t.name === `blk.${l}.fc2.weight`)?.dims, [16, spec.nFf]);
  }
  const m = await Model.load(out);
  const orig = await Model.load(modelPath);
  try {
    assert.equal(m.info.sparseThreshold, -1);
    const prompt = Array.from(tokens.subarray(0, 12));
    const run = async (mm: Model, mode: 'exact' | 'predictor' | 'dense', thr?: number) => {
      const ctx = await mm.createContext({ nSeq: 1, nCtx: 64, threads: 2, ffnMode: mode, sparseThreshold: thr, sparseMaxBatch: 64 });
      try {
        return await ctx.decode(sequenceBatch(prompt, 0, 0, true));
      } finally {
        ctx.dispose();
      }
    };
    const exact = await run(m, 'exact');
    assert.deepEqual(await run(m, 'predictor', -1e30), exact, 'recall 100% predictor == exact');
    const dense = await run(orig, 'dense');
    let maxDiff = 0;
    for (let i = 0; i < dense.length; i++) maxDiff = Math.max(maxDiff, Math.abs(dense[i] - exact[i]));
    assert.ok(maxDiff < 1e-2, `transposed ffn_down computes the same model (max diff ${maxDiff})`);
  } finally {
    m.dispose();
    orig.dispose();
  }
});

test('profile reads the trained predictors back and place accepts the stats', async () => {
  const rep = await train({ epochs: 3 });
  const out = join(dir, 'out.powerinfer.gguf');
  const stats = join(dir, 'out.rsst');
  const io = { out: () => {}, err: () => {}, tty: false };
  await profileCommand({ model: out, out: stats, corpus: [corpusPath], ctx: 256, batch: 64, speedCheck: false, threads: 2 }, io);
  const s = readStatsFile(stats);
  assert.ok(s.predictor && s.predictor.length === spec.nLayer, 'the engine evaluated the predictors');
  for (let l = 0; l < spec.nLayer; l++) {
    const p = s.predictor![l];
    const recall = p.truePositive / (p.truePositive + p.falseNegative);
    assert.ok(recall > 0.95, `layer ${l}: engine-measured recall ${recall} (held-out in training: ${rep.layers[l].heldout.recall})`);
  }
  await placeCommand({ model: out, stats, vramBudget: '1MiB', ctx: 128, batchSize: 4, kvType: 'f16', out: join(dir, 'p.rspl') }, io);
});

test('refuses SwiGLU models, models too small and corpora too short', async () => {
  await ready;
  const swiglu = join(dir, 'swiglu.gguf');
  await writeGguf(swiglu, await syntheticModelSpec({ arch: 'llama', size: 'tiny', type: 'f32', seed: 1 }));
  await assert.rejects(train({}, swiglu), /SwiGLU.*nothing for a predictor to predict/);
  const small = join(dir, 'small.gguf');
  await writePowerLawModel(small, buildPowerLawModel({ nLayer: 1, nFf: 8, nEmbd: 8, alpha: 0.5, seed: 1 }));
  await assert.rejects(train({}, small), /too small/);
  await assert.rejects(train({ tokens: tokens.subarray(0, 40) }), /too few tokens/);
});

test('an interrupted collection trains on the rows it has; --rank auto picks one of its candidates', async () => {
  await ready;
  const ac = new AbortController();
  const part = await train({
    epochs: 2, out: join(dir, 'part.gguf'), signal: ac.signal,
    onProgress: (p) => { if (p.done >= 640) ac.abort(); },
  });
  assert.equal(part.interrupted, true);
  assert.equal(part.tokens, 640, 'stops after the batch that crossed the line');
  const auto = await train({ rank: 'auto', epochs: 10, out: join(dir, 'auto.gguf') });
  for (const l of auto.layers) {
    assert.ok([16, 32].includes(l.rank), `layer ${l.layer} rank ${l.rank}`);
    assert.ok(l.heldout.recall >= 0.99, `layer ${l.layer} recall ${l.heldout.recall}`);
  }
});
