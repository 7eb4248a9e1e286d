// `relu-serve bench --batch-sizes 1,2,4,...`: how fast a step of n rows of one sequence
// (a prompt chunk) runs with the sparse FFN and with the dense FFN of the same file. The
// engine picks per sequence: sparse up to sparseMaxBatch rows, dense above; this sweep is
// the measurement behind that default (README "Sparse inference").
import { Model, sequenceBatch } from '../engine/engine.js';
import type { FfnMode, Isa } from '../engine/types.js';

export interface BatchSizeRow {
  rows: number;
  denseTokensPerS: number;
  sparseTokensPerS: number;
}

export interface BatchSweep {
  /** The sparse mode measured (the file's auto mode: predictor or exact). */
  sparseMode: FfnMode;
  /** The engine's default for this file: a sequence with more rows in a step runs dense. */
  defaultSparseMaxBatch: number;
  rows: BatchSizeRow[];
}

interface SweepOptions {
  sizes: number[];
  threads: number;
  isa: Isa;
  reps: number;
}

/** Best time of `reps` steps of n rows at positions 0..n-1 (the cache cleared between). */
async function stepTokensPerS(model: Model, mode: FfnMode, n: number, o: SweepOptions): Promise<number> {
  const ctx = await model.createContext({ nSeq: 1, nCtx: n + 1, nBatch: n, threads: o.threads, isa: o.isa, ffnMode: mode, sparseMaxBatch: n });
  try {
    const toks = Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + 17) % (model.info.nVocab - 3)));
    await ctx.decode(sequenceBatch(toks, 0, 0)); // warm up
    let best = Infinity;
    for (let r = 0; r < o.reps; r++) {
      ctx.truncate(0, 0);
      const t = performance.now();
      await ctx.decode(sequenceBatch(toks, 0, 0));
      best = Math.min(best, performance.now() - t);
    }
    const sp = ctx.sparsity();
    if (mode !== 'dense' && sp.sparseSteps === 0) throw new Error(`a step of ${n} rows did not take the sparse FFN`);
    return (n * 1000) / best;
  } finally {
    ctx.dispose();
  }
}

export async function sweepBatchSizes(model: Model, o: SweepOptions): Promise<BatchSweep> {
  const probe = await model.createContext({ nSeq: 1, nCtx: 8, threads: 1, ffnMode: 'auto' });
  const { ffnMode: sparseMode, sparseMaxBatch } = probe.sparsity();
  probe.dispose();
  if (sparseMode === 'dense') throw new Error('--batch-sizes needs a ReLU model (the sparse FFN does not apply to this file)');
  const rows: BatchSizeRow[] = [];
  for (const n of o.sizes) {
    rows.push({
      rows: n,
      denseTokensPerS: await stepTokensPerS(model, 'dense', n, o),
      sparseTokensPerS: await stepTokensPerS(model, sparseMode, n, o),
    });
  }
  return { sparseMode, defaultSparseMaxBatch: sparseMaxBatch, rows };
}

export function formatBatchSweep(s: BatchSweep): string {
  const lines = [
    `steps of n rows of one sequence, ${s.sparseMode} FFN vs dense FFN of the same file (tokens/s, best of reps; the engine's default: sparse up to ${s.defaultSparseMaxBatch} rows):`,
    `  rows   dense tok/s  ${s.sparseMode.padStart(9)} tok/s  sparse/dense`,
  ];
  for (const r of s.rows)
    lines.push(
      `  ${String(r.rows).padStart(4)}  ${r.denseTokensPerS.toFixed(1).padStart(12)}  ${r.sparseTokensPerS.toFixed(1).padStart(15)}  ${(r.sparseTokensPerS / r.denseTokensPerS).toFixed(2).padStart(11)}x`,
    );
  return lines.join('\n');
}

/** Parses "1,2,4": integers 1..4096. */
export function parseBatchSizes(v: string): number[] {
  const sizes = v.split(',').map((s) => Number(s.trim()));
  for (const n of sizes)
    if (!Number.isInteger(n) || n < 1 || n > 4096) throw new Error(`--batch-sizes: each size must be an integer from 1 to 4096, got '${v}'`);
  return sizes;
}
