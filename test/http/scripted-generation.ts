// A scripted runtime for the Generation tests (generation*.test.ts): token i reads as
// PIECES[i], each sequence picks its script in order then EOS, with a real EngineLoop.

import { Generation, type Choice, type GenerationPlan } from '../../server/http/generate.js';
import { EngineLoop } from '../../server/scheduler/engine-loop.js';
import { Metrics } from '../../server/observability/metrics.js';
import type { ModelRuntime, PickerOptions } from '../../server/scheduler/runtime.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import type { Picked } from '../../server/scheduler/types.js';

export const EOS = 0;
export const PIECES = ['</s>', 'a', 'b', 'c', 'X', 'Y', ''];

export interface Scripted {
  rt: ModelRuntime;
  pickers: PickerOptions[];
  hold: { p: Promise<void> | null };
}

/** Token i reads as PIECES[i]; each sequence picks `script` in order then EOS; `flushText` is what the decoder holds at the end. */
export function scripted(script: number[], o: { nSeq?: number; nCtx?: number; flushText?: string; pickThrows?: boolean } = {}): Scripted {
  const nSeq = o.nSeq ?? 4;
  const nCtx = o.nCtx ?? 16;
  const hold: { p: Promise<void> | null } = { p: null };
  const ctx = {
    nSeq,
    nCtx,
    async decode(b: DecodeBatch) {
      if (hold.p) await hold.p;
      let rows = 0;
      for (const w of b.wantLogits) rows += w;
      const out = new Float32Array(rows * PIECES.length);
      // Token 2 is twice as likely as each other token in every row.
      for (let r = 0; r < rows; r++) out[r * PIECES.length + 2] = Math.log(2);
      return out;
    },
    truncate() {},
  };
  const pickers: PickerOptions[] = [];
  const rt: ModelRuntime = {
    id: 'scripted', created: 0, nCtx, nSeq, nBatch: 64, ctx, meta: {},
    tokenizer: {
      nVocab: PIECES.length, eosId: EOS, bosText: '', eosText: '', addBos: false,
      encode: () => [1], decode: (t) => t.map((x) => PIECES[x]).join(''), tokenBytes: () => new Uint8Array(),
      stream: () => ({ push: (t) => PIECES[t], flush: () => o.flushText ?? '' }),
      isEndToken: (t) => t === EOS,
    },
    template: undefined as never,
    makePicker: (opts) => {
      pickers.push(opts);
      let i = 0;
      return () => {
        if (o.pickThrows) throw new Error('pick failed');
        const token = script[i++] ?? EOS;
        return opts.topLogprobs === null ? { token } : { token, logprob: -i, top: [] };
      };
    },
    dispose() {},
  };
  return { rt, pickers, hold };
}

export const SETTINGS = { temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: 100, logitBias: new Map() };

export function plan(p: Partial<GenerationPlan>): GenerationPlan {
  return { prompts: [[1, 2]], n: 1, maxTokens: undefined, stop: [], settings: SETTINGS, topLogprobs: null, continuation: true, promptParam: 'prompt', ...p };
}

export interface Delta {
  index: number;
  text: string;
  picks: Picked[];
  offsets: number[];
}

export async function run(s: Scripted, p: GenerationPlan, loop?: EngineLoop, metrics = new Metrics({ defaultMetrics: false })) {
  const l = loop ?? new EngineLoop(s.rt.ctx, { maxWaiting: 2, nBatch: 64 });
  const deltas: Delta[] = [];
  const ended: number[] = [];
  const g = new Generation(l, s.rt, p, metrics, {
    onDelta: (c: Choice, text, picks, offsets) => deltas.push({ index: c.index, text, picks, offsets }),
    onChoiceEnd: (c) => ended.push(c.index),
  });
  await g.done;
  if (!loop) await l.close();
  return { g, deltas, ended, metrics };
}

export async function metricValue(m: Metrics, name: keyof Metrics): Promise<number> {
  const v = await (m[name] as unknown as { get(): Promise<{ values: { value: number; metricName?: string }[] } > }).get();
  // Histograms: the _count sample.
  const count = v.values.find((x) => x.metricName?.endsWith('_count'));
  return (count ?? v.values[0]).value;
}

export async function metricSum(m: Metrics, name: keyof Metrics): Promise<number> {
  const v = await (m[name] as unknown as { get(): Promise<{ values: { value: number; metricName?: string }[] }> }).get();
  return v.values.find((x) => x.metricName?.endsWith('_sum'))!.value;
}
