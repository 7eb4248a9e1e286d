// `relu-serve perplexity` on the shipped default model, against the PyTorch figure that
// tools/train/reference.py computed from the same GGUF weights (reference.json), and its
// errors for bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { negLogProb, runPerplexity } from '../../server/cli/perplexity.js';

// Tests run from the repository root (npm test).
const MODEL = 'models/bamboo-kjv-mini.gguf';
const HELDOUT = 'tools/train/heldout.txt';
const ref = JSON.parse(readFileSync('tools/train/reference.json', 'utf8')) as {
  perplexity_first_1000_tokens: number;
  ffn_zero_fraction_per_layer: number[];
};

test('perplexity of the first 1000 held-out tokens matches PyTorch within 0.5%', async () => {
  const r = await runPerplexity({ model: MODEL, file: HELDOUT, maxTokens: 1000, threads: 1 });
  assert.equal(r.textTokens, 1000);
  assert.equal(r.scoredTokens, 1000);
  assert.equal(r.chunks, Math.ceil(1000 / 255));
  const rel = Math.abs(r.perplexity - ref.perplexity_first_1000_tokens) / ref.perplexity_first_1000_tokens;
  assert.ok(rel < 0.005, `engine ${r.perplexity} vs torch ${ref.perplexity_first_1000_tokens}`);
  // The model was trained to be sparse: most FFN neurons are zero on real text.
  assert.equal(r.ffnZeroFractionPerLayer?.length, ref.ffn_zero_fraction_per_layer.length);
  for (const z of r.ffnZeroFractionPerLayer ?? []) assert.ok(z > 0.7 && z < 1, `zero fraction ${z}`);
});

test('shorter chunks score the same tokens with less context, so perplexity rises', async () => {
  const long = await runPerplexity({ model: MODEL, file: HELDOUT, maxTokens: 300, threads: 1 });
  const short = await runPerplexity({ model: MODEL, file: HELDOUT, maxTokens: 300, threads: 1, ctx: 8 });
  assert.equal(short.scoredTokens, 300);
  assert.equal(short.chunks, Math.ceil(300 / 7));
  assert.ok(short.perplexity > long.perplexity, `${short.perplexity} <= ${long.perplexity}`);
});

test('negLogProb is the negative log-softmax at the target', () => {
  const logits = new Float32Array([0, 9, 1, 2, 3, 9]); // row 1 of width 3 starts at offset 3
  const expected = Math.log(Math.exp(2) + Math.exp(3) + Math.exp(9)) - 3;
  assert.ok(Math.abs(negLogProb(logits, 3, 3, 1) - expected) < 1e-12);
});

test('bad input is rejected with a message naming the problem', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rs-ppl-'));
  try {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    await assert.rejects(runPerplexity({ model: MODEL, file: join(dir, 'missing.txt') }), /cannot read text file .*missing\.txt/);
    await assert.rejects(runPerplexity({ model: MODEL, file: dir }), /cannot read text file .*not a regular file/);
    await assert.rejects(runPerplexity({ model: MODEL, file: empty }), /holds no text to score/);
    await assert.rejects(runPerplexity({ model: MODEL, file: HELDOUT, ctx: 1 }), /--ctx must be an integer >= 2/);
    await assert.rejects(runPerplexity({ model: MODEL, file: HELDOUT, ctx: 100000 }), /exceeds the model's training context 256/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
