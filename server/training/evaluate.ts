// End-to-end figures for a trained predictor file against its dense original, on held-out
// text: perplexity of each, teacher-forced top-1 agreement (the predictor file's greedy
// choice at every position of the text equals the dense model's), and decode speed
// (one token per step) in dense, exact and predictor mode.

import { Model, sequenceBatch } from '../engine/engine.js';
import type { FfnMode } from '../engine/types.js';
import { negLogProb } from '../cli/perplexity.js';

export interface EvalReport {
  tokens: number;
  perplexityDense: number;
  perplexityPredictor: number;
  /** Positions where the predictor model's top-1 equals the dense model's, out of `tokens`. */
  agreement: number;
  decodeTokensPerSecond: { dense: number; exact: number; predictor: number };
  decodeSteps: number;
}

function argmax(v: Float32Array, off: number, n: number): number {
  let b = 0;
  for (let i = 1; i < n; i++) if (v[off + i] > v[off + b]) b = i;
  return b;
}

/** NLL sum and top-1 per scored position, chunks of ctxLen opened by <s> (the perplexity CLI's protocol). */
async function score(model: Model, ids: Int32Array, bos: number, ctxLen: number, mode: FfnMode, threads?: number): Promise<{ nll: number; top: Int32Array }> {
  // sparseMaxBatch = ctxLen: every row takes the mode's FFN, not the dense prompt path.
  const ctx = await model.createContext({ nSeq: 1, nCtx: ctxLen, nBatch: ctxLen, ffnMode: mode, sparseMaxBatch: ctxLen, threads });
  const nV = model.info.nVocab;
  const top = new Int32Array(ids.length);
  let nll = 0;
  let k = 0;
  try {
    for (let s = 0; s < ids.length; s += ctxLen - 1) {
      const chunk = [bos, ...ids.subarray(s, s + ctxLen - 1)];
      ctx.truncate(0, 0);
      const logits = await ctx.decode(sequenceBatch(chunk, 0, 0, true));
      for (let j = 1; j < chunk.length; j++) {
        nll += negLogProb(logits, (j - 1) * nV, nV, chunk[j]);
        top[k++] = argmax(logits, (j - 1) * nV, nV);
      }
    }
  } finally {
    ctx.dispose();
  }
  return { nll, top };
}

/** Tokens per second of `steps` single-token decodes after a short prompt (best of 2 runs). */
async function decodeSpeed(model: Model, prompt: Int32Array, steps: number, mode: FfnMode, threads?: number): Promise<number> {
  const nCtx = prompt.length + steps + 1;
  const ctx = await model.createContext({ nSeq: 1, nCtx, nBatch: Math.max(prompt.length, 1), ffnMode: mode, threads });
  const nV = model.info.nVocab;
  let best = 0;
  try {
    for (let rep = 0; rep < 2; rep++) {
      ctx.truncate(0, 0);
      let logits = await ctx.decode(sequenceBatch(prompt, 0, 0));
      const t0 = performance.now();
      for (let p = prompt.length; p < prompt.length + steps; p++) {
        logits = await ctx.decode(sequenceBatch([argmax(logits, 0, nV)], 0, p));
      }
      best = Math.max(best, (1000 * steps) / (performance.now() - t0));
    }
  } finally {
    ctx.dispose();
  }
  return best;
}

export async function evaluatePredictorFile(densePath: string, predictorPath: string, ids: Int32Array, o: { ctx?: number; decodeSteps?: number; threads?: number }): Promise<EvalReport> {
  const dense = await Model.load(densePath);
  const pred = await Model.load(predictorPath);
  try {
    const bos = dense.metadata.get('tokenizer.ggml.bos_token_id');
    const ctxLen = Math.min(o.ctx ?? dense.info.nCtxTrain, dense.info.nCtxTrain);
    const b = typeof bos === 'number' ? bos : 1;
    const d = await score(dense, ids, b, ctxLen, 'dense', o.threads);
    const p = await score(pred, ids, b, ctxLen, 'predictor', o.threads);
    let agree = 0;
    for (let i = 0; i < ids.length; i++) agree += d.top[i] === p.top[i] ? 1 : 0;
    const steps = o.decodeSteps ?? 128;
    const prompt = ids.subarray(0, Math.min(16, ids.length));
    const speed = {
      dense: await decodeSpeed(dense, prompt, steps, 'dense', o.threads),
      exact: await decodeSpeed(pred, prompt, steps, 'exact', o.threads),
      predictor: await decodeSpeed(pred, prompt, steps, 'predictor', o.threads),
    };
    return {
      tokens: ids.length,
      perplexityDense: Math.exp(d.nll / ids.length),
      perplexityPredictor: Math.exp(p.nll / ids.length),
      agreement: agree / ids.length,
      decodeTokensPerSecond: speed,
      decodeSteps: steps,
    };
  } finally {
    pred.dispose();
    dense.dispose();
  }
}
