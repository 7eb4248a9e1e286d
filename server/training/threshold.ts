// Per-layer threshold for a target recall, and how a predictor's choice compares with the
// true activations. Rows are tokens; logits are rows x nFf; a mask row holds nFf bits
// (LSB first) of which neurons really fired.

export function maskBit(mask: Uint8Array, rowBytes: number, row: number, i: number): boolean {
  return ((mask[row * rowBytes + (i >> 3)] >> (i & 7)) & 1) === 1;
}

/**
 * The largest threshold t such that logits >= t keeps at least `target` of the active
 * (row, neuron) pairs. With no active pair at all, a threshold above every logit.
 */
export function thresholdForRecall(logits: Float32Array, mask: Uint8Array, rows: number, nFf: number, target: number): number {
  const rb = (nFf + 7) >> 3;
  const pos: number[] = [];
  let max = -Infinity;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < nFf; i++) {
      const v = logits[r * nFf + i];
      if (v > max) max = v;
      if (maskBit(mask, rb, r, i)) pos.push(v);
    }
  }
  if (pos.length === 0) return Number.isFinite(max) ? max + 1 : 1;
  const sorted = Float64Array.from(pos).sort();
  // Missing the `allowed` lowest-scoring positives keeps (P - allowed) / P >= target.
  const allowed = Math.floor((1 - target) * sorted.length + 1e-9);
  return sorted[Math.min(allowed, sorted.length - 1)];
}

export interface PredictorQuality {
  truePositive: number;
  falsePositive: number;
  falseNegative: number;
  /** Share of active pairs the predictor selects (1 when nothing fired). */
  recall: number;
  /** Share of selected pairs that were active (1 when nothing is selected). */
  precision: number;
  /** Share of (row, neuron) pairs that fired / that the predictor selects. */
  activeShare: number;
  predictedShare: number;
}

export function predictorQuality(logits: Float32Array, mask: Uint8Array, rows: number, nFf: number, threshold: number): PredictorQuality {
  const rb = (nFf + 7) >> 3;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < nFf; i++) {
      const pred = logits[r * nFf + i] >= threshold;
      const on = maskBit(mask, rb, r, i);
      if (pred && on) tp++;
      else if (pred) fp++;
      else if (on) fn++;
    }
  }
  const pairs = rows * nFf;
  return {
    truePositive: tp,
    falsePositive: fp,
    falseNegative: fn,
    recall: tp + fn > 0 ? tp / (tp + fn) : 1,
    precision: tp + fp > 0 ? tp / (tp + fp) : 1,
    activeShare: pairs > 0 ? (tp + fn) / pairs : 0,
    predictedShare: pairs > 0 ? (tp + fp) / pairs : 0,
  };
}
