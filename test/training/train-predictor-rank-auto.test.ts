// --rank auto picks, per layer, the smallest candidate rank whose predictor reaches the
// target recall on held-out tokens (threshold fitted on one half of them, recall measured
// on the other) while selecting at most twice the truly active share. The model: the
// power-law ReLU model fed 94 distinct characters, where a rank-16 predictor cannot
// separate the inputs well enough but 32 or 64 can (here the two layers pick 64 and 32),
// so "smallest" is tested, not assumed. The step below each picked rank is then
// trained again on its own, on the same data, and must miss.
// Needs the native addon (npm run build).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../server/engine/engine.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { autoRanks, trainPredictors, type TrainPredictorsOptions, type TrainReport } from '../../server/training/train-predictors.js';
import { buildPowerLawModel, writePowerLawModel } from '../profiler/powerlaw-model.js';
import { seededRandom } from '../profiler/synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-rank-auto-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const modelPath = join(dir, 'relu.gguf');
const TARGET = 0.99;
let tokens = new Int32Array(0);
const ready = (async () => {
  await writePowerLawModel(modelPath, buildPowerLawModel({ nLayer: 2, nFf: 256, nEmbd: 64, alpha: 0.5, seed: 3 }));
  const rand = seededRandom(21);
  const text = Array.from({ length: 3000 }, () => String.fromCharCode(33 + Math.floor(rand() * 94))).join('');
  const m = await Model.load(modelPath);
  try {
    tokens = Int32Array.from(SpmTokenizer.fromMetadata(m.metadata).encode(text));
  } finally {
    m.dispose();
  }
})();

async function train(o: Partial<TrainPredictorsOptions>): Promise<TrainReport> {
  await ready;
  const m = await Model.load(modelPath);
  try {
    return await trainPredictors(m, {
      modelPath, out: join(dir, 'out.gguf'), tokens, rank: 'auto', targetRecall: TARGET, seed: 3, epochs: 6,
      heldoutShare: 0.2, nCtx: 256, nBatch: 64, threads: 2, ...o,
    });
  } finally {
    m.dispose();
  }
}

const meets = (c: { recall: number; predictedShare: number; activeShare: number }) => c.recall >= TARGET && c.predictedShare <= 2 * c.activeShare;

test('--rank auto: the smallest candidate that meets the target on held-out tokens, per layer', async () => {
  const rep = await train({});
  const cands = autoRanks(64, 256);
  assert.deepEqual(cands, [16, 32, 64]);
  const picked = rep.layers.map((l) => l.rank);
  // Not vacuous: some layer needed more than the smallest rank (rank 16 selects about 2.6x
  // the active share here, far over the limit of 2x). On this machine the layers pick 64
  // and 32; which exactly may move with the CPU's kernels, so it is not asserted.
  assert.ok(picked.some((r) => r > cands[0]), `picked ranks ${picked}`);
  for (const l of rep.layers) {
    const tried = l.candidates!;
    // Tried in ascending order, stopping at the first that meets the target.
    assert.deepEqual(tried.map((c) => c.rank), cands.slice(0, tried.length), `layer ${l.layer}`);
    const first = tried.findIndex(meets);
    assert.equal(first, tried.length - 1, `layer ${l.layer}: ${JSON.stringify(tried)}`);
    assert.equal(l.rank, tried[first].rank);
    for (const c of tried) assert.equal(c.accepted, meets(c));
    // The written predictor at that rank, thresholded on all held-out rows, keeps the target.
    assert.ok(l.heldout.recall >= TARGET, `layer ${l.layer} recall ${l.heldout.recall}`);
  }

  // The step below each picked rank, trained alone on the same tokens with the same seed:
  // it misses (recall under the target or selecting over twice the active share), with
  // the same figures as in the auto run, so the comparison above was on equal terms.
  for (const l of rep.layers) {
    const i = cands.indexOf(l.rank);
    if (i === 0) continue;
    const below = await train({ rankCandidates: [cands[i - 1]], out: join(dir, `below-${l.layer}.gguf`) });
    const c = below.layers[l.layer].candidates![0];
    assert.equal(c.rank, cands[i - 1]);
    assert.equal(meets(c), false, `layer ${l.layer}: rank ${c.rank} alone ${JSON.stringify(c)}`);
    assert.deepEqual(c, l.candidates![i - 1], 'same data and seed: the same measurement');
  }
});

test('--rank auto refuses malformed candidate lists', async () => {
  await assert.rejects(train({ rankCandidates: [] }), /rank candidates must be ascending/);
  await assert.rejects(train({ rankCandidates: [32, 16] }), /rank candidates must be ascending/);
  await assert.rejects(train({ rankCandidates: [0] }), /rank candidates must be ascending/);
});
