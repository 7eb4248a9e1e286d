// Property tests: the n choices of one request get seeds of their own, and those seeds
// give independent token streams; the same request seed gives the same streams again.
// Drives http/generate.ts's Generation with a real EngineLoop over a context that
// returns flat logits, so every token is the sampler's draw alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import '../fc-seed.js';
import { Generation, type GenerationPlan } from '../../server/http/generate.js';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import { makePickerFactory } from '../../server/scheduler/picker.js';
import { Metrics } from '../../server/observability/metrics.js';
import { Rng } from '../../server/sampling/rng.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { DecodeBatch } from '../../server/engine/types.js';

const NV = 64;
const MAX_N = 6;
const metrics = new Metrics({ defaultMetrics: false });

/** A runtime whose model thinks every token equally likely; token i reads as "<i>". */
function flatRuntime(seeds: number[]): ModelRuntime {
  const ctx = {
    nSeq: MAX_N,
    nCtx: 64,
    async decode(b: DecodeBatch) {
      let rows = 0;
      for (const w of b.wantLogits) rows += w;
      return new Float32Array(rows * NV);
    },
    truncate() {},
  };
  const picker = makePickerFactory(NV);
  return {
    id: 'flat', created: 0, nCtx: 64, nSeq: MAX_N, nBatch: 64, ctx, meta: {},
    tokenizer: {
      nVocab: NV, eosId: -1, bosText: '', eosText: '', addBos: false,
      encode: () => [1], decode: (t) => t.map((x) => `<${x}>`).join(''), tokenBytes: () => new Uint8Array(),
      stream: () => ({ push: (t) => `<${t}>`, flush: () => '' }),
      isEndToken: () => false,
    },
    template: undefined as never,
    makePicker: (o) => (seeds.push(o.seed), picker(o)),
    dispose() {},
  };
}

async function run(n: number, seed: number): Promise<{ texts: string[]; seeds: number[] }> {
  const seeds: number[] = [];
  const rt = flatRuntime(seeds);
  const loop = new EngineLoop(rt.ctx, { maxWaiting: 4, nBatch: 64 });
  const plan: GenerationPlan = {
    prompts: [[1, 2, 3]], n, maxTokens: 8, stop: [], topLogprobs: null, continuation: true, promptParam: 'prompt',
    settings: { temperature: 1, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed, logitBias: new Map() },
  };
  const g = new Generation(loop, rt, plan, metrics, {});
  await g.done;
  await loop.close();
  return { texts: g.choices.map((c) => c.text), seeds };
}

test('the n choices of a request get distinct seeds and distinct token streams; same seed, same streams', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 2, max: MAX_N }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (n, seed) => {
      const a = await run(n, seed);
      assert.equal(new Set(a.seeds).size, n, `seeds ${a.seeds}`);
      // 8 draws from 64 equally likely tokens: two streams agree by chance with p = 2^-48.
      assert.equal(new Set(a.texts).size, n, `texts ${JSON.stringify(a.texts)}`);
      const b = await run(n, seed);
      assert.deepEqual(b.texts, a.texts);
    }),
    { numRuns: 40 },
  );
});

test('nearby seeds start unrelated xoshiro streams (no shared prefix of draws)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 1, max: 8 }), (seed, d) => {
      const a = new Rng(seed);
      const b = new Rng(seed + BigInt(d));
      const da = Array.from({ length: 4 }, () => a.nextDouble());
      const db = Array.from({ length: 4 }, () => b.nextDouble());
      assert.ok(da.every((x, i) => x !== db[i]), 'no draw in common at the same position');
    }),
    { numRuns: 300 },
  );
});
