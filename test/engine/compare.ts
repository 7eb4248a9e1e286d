// Comparing logits: the largest absolute difference relative to the largest reference
// value, i.e. the error as a share of the logit range.
import assert from 'node:assert/strict';
import { sequenceBatch, type Context, type Model } from '../../server/engine/engine.js';
import type { ContextOptions, DecodeBatch } from '../../server/engine/types.js';

export function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/** Each of `seqs` (same length) decoded alone, one token per step, and then all of them in
 * one step per position: asserts every row's logits are the same bits both ways. Returns
 * the batched context's sparsity statistics. */
export async function assertBatchedEqualsAlone(model: Model, seqs: number[][], opts: Partial<ContextOptions>, what = ''): Promise<ReturnType<Context['sparsity']>> {
  const nv = model.info.nVocab;
  const len = seqs[0].length;
  const alone: Float32Array[] = [];
  for (const s of seqs) {
    const ctx = await model.createContext({ nSeq: 1, nCtx: 16, ...opts });
    for (let p = 0; p < len; p++) alone.push(await ctx.decode(sequenceBatch([s[p]], 0, p)));
    ctx.dispose();
  }
  const ctx = await model.createContext({ nSeq: seqs.length, nCtx: 16, ...opts });
  try {
    for (let p = 0; p < len; p++) {
      const b: DecodeBatch = {
        tokens: Int32Array.from(seqs.map((s) => s[p])),
        positions: Int32Array.from(seqs.map(() => p)),
        seqIds: Int32Array.from(seqs.map((_, i) => i)),
        wantLogits: Uint8Array.from(seqs.map(() => 1)),
      };
      const l = await ctx.decode(b);
      for (let s = 0; s < seqs.length; s++) assert.deepEqual(l.subarray(s * nv, (s + 1) * nv), alone[s * len + p], `${what}seq ${s} pos ${p}`);
    }
    return ctx.sparsity();
  } finally {
    ctx.dispose();
  }
}
