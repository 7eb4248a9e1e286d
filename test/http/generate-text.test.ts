// Generation (http/generate.ts) turns tokens into each choice's text: stop strings cut,
// and at the end whatever the stop matcher held back is shown unless it became a stop
// string. A scripted runtime (token i reads as pieces[i]) and a real EngineLoop.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generation, type GenerationPlan } from '../../server/http/generate.js';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import { Metrics } from '../../server/observability/metrics.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { DecodeBatch } from '../../server/engine/types.js';

const EOS = 0;

/** Each sequence emits `script` in order; token ids index `pieces`. */
function scriptedRuntime(pieces: string[], script: number[]): ModelRuntime {
  const ctx = {
    nSeq: 2,
    nCtx: 64,
    async decode(b: DecodeBatch) {
      let rows = 0;
      for (const w of b.wantLogits) rows += w;
      return new Float32Array(rows * pieces.length);
    },
    truncate() {},
  };
  return {
    id: 'scripted', created: 0, nCtx: 64, nSeq: 2, nBatch: 64, ctx, meta: {},
    tokenizer: {
      nVocab: pieces.length, eosId: EOS, bosText: '', eosText: '', addBos: false,
      encode: () => [1], decode: (t) => t.map((x) => pieces[x]).join(''), tokenBytes: () => new Uint8Array(),
      stream: () => ({ push: (t) => pieces[t], flush: () => '' }),
      isEndToken: (t) => t === EOS,
    },
    template: undefined as never,
    makePicker: () => {
      let i = 0;
      return () => ({ token: script[i++] ?? EOS });
    },
    dispose() {},
  };
}

async function generate(pieces: string[], script: number[], maxTokens: number, stop: string[]) {
  const rt = scriptedRuntime(pieces, script);
  const loop = new EngineLoop(rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const plan: GenerationPlan = {
    prompts: [[1]], n: 1, maxTokens, stop, topLogprobs: null, continuation: true, promptParam: 'prompt',
    settings: { temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: 1, logitBias: new Map() },
  };
  const deltas: string[] = [];
  const g = new Generation(loop, rt, plan, new Metrics({ defaultMetrics: false }), { onDelta: (_c, text) => deltas.push(text) });
  await g.done;
  await loop.close();
  return { choice: g.choices[0], deltas };
}

const PIECES = ['</s>', 'Hello', ' E', 'N', 'D', '!'];

test('a reply that ends on length shows the stop-string prefix it held back', async () => {
  const { choice, deltas } = await generate(PIECES, [1, 2, 3], 3, ['END']);
  assert.equal(choice.text, 'Hello EN');
  assert.equal(deltas.join(''), 'Hello EN', 'streamed deltas carry the held-back tail too');
  assert.equal(choice.finishReason, 'length');
});

test('a reply that ends on its end token shows the held-back prefix; finish_reason is stop', async () => {
  const { choice } = await generate(PIECES, [1, 2, 3, EOS], 10, ['END']);
  assert.equal(choice.text, 'Hello EN');
  assert.equal(choice.finishReason, 'stop');
});

test('a stop string completed by the last token is cut, with nothing after it', async () => {
  const { choice } = await generate(PIECES, [1, 2, 3, 4, 5], 10, ['END']);
  assert.equal(choice.text, 'Hello ');
  assert.equal(choice.finishReason, 'stop');
  assert.equal(choice.completionTokens, 4);
});
