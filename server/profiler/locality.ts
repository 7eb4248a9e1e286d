// Activation locality: how much of a layer's activity its hottest neurons account for.
// Shared by the terminal table and the SVG chart.

import type { ActivationStats } from './stats-format.js';

export interface LayerLocality {
  nFf: number;
  total: number;
  /** prefix[k] = activations covered by the k hottest neurons. */
  prefix: Float64Array;
  dead: number;
}

export function layerLocality(counts: Float64Array): LayerLocality {
  const sorted = Float64Array.from(counts).sort().reverse();
  const prefix = new Float64Array(sorted.length + 1);
  let dead = 0;
  for (let i = 0; i < sorted.length; i++) {
    prefix[i + 1] = prefix[i] + sorted[i];
    if (sorted[i] === 0) dead++;
  }
  return { nFf: counts.length, total: prefix[sorted.length], prefix, dead };
}

/** Share (0..1) of activations covered by the hottest `fraction` (0..1) of neurons, interpolated. */
export function coverageAt(l: LayerLocality, fraction: number): number {
  if (l.total === 0 || l.nFf === 0) return 0;
  const k = Math.max(0, Math.min(l.nFf, fraction * l.nFf));
  const lo = Math.floor(k);
  const hi = Math.min(l.nFf, lo + 1);
  const v = l.prefix[lo] + (l.prefix[hi] - l.prefix[lo]) * (k - lo);
  return v / l.total;
}

/** Smallest share (0..1) of neurons that covers at least `share` of the activations. */
export function neuronsForShare(l: LayerLocality, share: number): number {
  if (l.total === 0 || l.nFf === 0) return 0;
  const want = share * l.total;
  let lo = 0;
  let hi = l.nFf;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (l.prefix[mid] >= want) hi = mid;
    else lo = mid + 1;
  }
  return lo / l.nFf;
}

const pct = (v: number, digits = 1) => `${(100 * v).toFixed(digits)}%`;

/** The per-layer table `profile` prints. */
export function formatLocalityTable(stats: ActivationStats): string {
  const hasPred = !!stats.predictor;
  const head =
    'layer   n_ff  fire rate   dead  top10% covers  top20% covers  neurons for 80%' +
    (hasPred ? '  pred. recall  precision' : '');
  const rows = [head];
  stats.counts.forEach((c, i) => {
    const l = layerLocality(c);
    const rate = stats.tokens > 0 && l.nFf > 0 ? l.total / (stats.tokens * l.nFf) : NaN;
    let line =
      `${String(i).padStart(5)} ${String(l.nFf).padStart(6)} ${(Number.isNaN(rate) ? '-' : pct(rate, 2)).padStart(10)} ` +
      `${pct(l.nFf ? l.dead / l.nFf : 0).padStart(6)} ${pct(coverageAt(l, 0.1)).padStart(14)} ` +
      `${pct(coverageAt(l, 0.2)).padStart(14)} ${pct(neuronsForShare(l, 0.8)).padStart(16)}`;
    if (hasPred) {
      const p = stats.predictor![i];
      const recall = p.truePositive + p.falseNegative ? p.truePositive / (p.truePositive + p.falseNegative) : NaN;
      const precision = p.truePositive + p.falsePositive ? p.truePositive / (p.truePositive + p.falsePositive) : NaN;
      line += `${(Number.isNaN(recall) ? '-' : pct(recall)).padStart(14)} ${(Number.isNaN(precision) ? '-' : pct(precision)).padStart(10)}`;
    }
    rows.push(line);
  });
  const all = stats.counts.map(layerLocality);
  const mean = (f: (l: LayerLocality) => number) => all.reduce((s, l) => s + f(l), 0) / Math.max(1, all.length);
  rows.push(
    `mean: the hottest 10% of neurons cover ${pct(mean((l) => coverageAt(l, 0.1)))} of activations; ` +
      `80% of activations come from ${pct(mean((l) => neuronsForShare(l, 0.8)))} of neurons` +
      (stats.tokens > 0 ? ` (${stats.tokens} tokens)` : ' (token count unknown)'),
  );
  return rows.join('\n');
}
