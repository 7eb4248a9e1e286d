// Streaming the tensors of a generated model: each tensor's floats are produced a chunk
// of rows at a time by a fill function, quantised, and handed to the writer, so a
// multi-gigabyte model never sits in memory. Shared by the dense and sparse synthetic
// model writers.
import type { GgmlTypeInfo } from './constants.js';
import { quantizerFor, type Quantizer } from './quantize.js';
import type { TensorSpec } from './writer.js';
import { Rng } from '../sampling/rng.js';

export interface PlannedTensor {
  name: string;
  dims: number[];
  type: GgmlTypeInfo;
}

/**
 * TensorSpecs over a plan. Tensor `index` draws from its own RNG stream (seed, index + 1),
 * so tensors can be produced in any order; `fill(p, rng, row0, nRows, chunk)` writes rows
 * row0 .. row0 + nRows - 1 (ne0 floats each) into chunk. One scratch buffer serves every
 * tensor: the writer consumes them one at a time.
 */
export async function streamedTensors<P extends PlannedTensor>(
  plan: P[],
  seed: bigint,
  chunkElems: number,
  fill: (p: P, rng: Rng, row0: number, nRows: number, chunk: Float32Array) => void,
  onTensor?: (index: number, count: number, name: string) => void,
): Promise<TensorSpec[]> {
  const quantizers = new Map<string, Quantizer>();
  for (const p of plan) if (!quantizers.has(p.type.name)) quantizers.set(p.type.name, await quantizerFor(p.type));
  let scratch = new Float32Array(0);
  return plan.map((p, index) => ({
    name: p.name,
    dims: p.dims,
    type: p.type.name,
    data: function* (): Generator<Uint8Array> {
      const quantize = quantizers.get(p.type.name)!;
      const rng = new Rng(seed, index + 1);
      const [ne0, ne1 = 1] = p.dims;
      const rowsPerChunk = Math.max(1, Math.floor(chunkElems / ne0));
      for (let r = 0; r < ne1; r += rowsPerChunk) {
        const nRows = Math.min(rowsPerChunk, ne1 - r);
        if (scratch.length < nRows * ne0) scratch = new Float32Array(nRows * ne0);
        const chunk = scratch.subarray(0, nRows * ne0);
        fill(p, rng, r, nRows, chunk);
        yield quantize(chunk);
      }
      onTensor?.(index, plan.length, p.name);
    },
  }));
}
