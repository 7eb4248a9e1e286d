// End-to-end figures for a trained predictor file against its dense original, on held-out
// text: perplexity of each, teacher-forced top-1 agreement (the predictor file's greedy
// choice at every position of the text equals the dense model's), and decode speed
// (one token per step) in dense, exact and predictor mode, interleaved.

import { Model, sequenceBatch } from '../engine/engine.js';
import type { FfnMode } from '../engine/types.js';
import { negLogProb } from '../cli/perplexity.js';

export interface EvalReport {
  tokens: number;
  perplexityDense: number;
  perplexityPredictor: number;
  /** Positions where the predictor model's top-1 equals the dense model's, out of `tokens`. */
  agreement: number;
  /** Median tokens/s: dense and exact mode of the original file, exact and predictor mode of the trained one. */
  decodeTokensPerSecond: { dense: number; exact: number; exactTrained: number; predictor: number };
  decodeSteps: number;
  decodeRounds: number;
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

/**
 * Decode speed of each (model, mode): `steps` single-token greedy decodes after a short
 * prompt, the modes interleaved `rounds` times (so load on a shared machine hits all
 * alike), median tokens/s of each.
 */
async function decodeSpeeds(runs: [Model, FfnMode][], prompt: Int32Array, steps: number, rounds: number, threads?: number): Promise<number[]> {
  const nCtx = prompt.length + steps + 1;
  const ctxs = [];
  for (const [m, mode] of runs) ctxs.push(await m.createContext({ nSeq: 1, nCtx, nBatch: Math.max(prompt.length, 1), ffnMode: mode, threads }));
  const rates: number[][] = runs.map(() => []);
  try {
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < ctxs.length; k++) {
        const ctx = ctxs[k];
        const nV = runs[k][0].info.nVocab;
        ctx.truncate(0, 0);
        let logits = await ctx.decode(sequenceBatch(prompt, 0, 0));
        const t0 = performance.now();
        for (let p = prompt.length; p < prompt.length + steps; p++) logits = await ctx.decode(sequenceBatch([argmax(logits, 0, nV)], 0, p));
        rates[k].push((1000 * steps) / (performance.now() - t0));
      }
    }
  } finally {
    for (const c of ctxs) c.dispose();
  }
  return rates.map((v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]);
}

export async function evaluatePredictorFile(densePath: string, predictorPath: string, ids: Int32Array, o: { ctx?: number; decodeSteps?: number; rounds?: number; threads?: number }): Promise<EvalReport> {
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
    const rounds = o.rounds ?? 7;
    const prompt = ids.subarray(0, Math.min(8, ids.length));
    const [sd, se, sx, sp] = await decodeSpeeds([[dense, 'dense'], [dense, 'exact'], [pred, 'exact'], [pred, 'predictor']], prompt, steps, rounds, o.threads);
    const speed = { dense: sd, exact: se, exactTrained: sx, predictor: sp };
    return {
      tokens: ids.length,
      perplexityDense: Math.exp(d.nll / ids.length),
      perplexityPredictor: Math.exp(p.nll / ids.length),
      agreement: agree / ids.length,
      decodeTokensPerSecond: speed,
      decodeSteps: steps,
      decodeRounds: rounds,
    };
  } finally {
    pred.dispose();
    dense.dispose();
  }
}
