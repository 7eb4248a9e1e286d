// From a model, its activation statistics and a VRAM budget to a placement: fixed part
// first (in PowerInfer's order), then the exact hot-neuron choice with what is left.

import type { ModelDescription, ModelIdentity } from './model-identity.js';
import type { ActivationStats } from './stats-format.js';
import { chooseHotNeurons } from './placement.js';
import { DEVICE_ALIGN, FIXED_ORDER, devicePiece, ffnBytes, formatBytes, vramCosts, type FixedVram, type KvOptions } from './vram-costs.js';

export class BudgetTooSmallError extends Error {}

export interface LayerPlacement {
  nFf: number;
  gpuNeurons: Uint32Array;
  bytes: number;
  neuronCost: number;
  covered: number;
  total: number;
}

export interface PlacementPlan {
  identity: ModelIdentity;
  budget: number;
  nCtx: number;
  nSeq: number;
  fixed: FixedVram;
  fixedTotal: number;
  ffnBytes: number;
  /** Bytes of the whole FFN, for "x% of the FFN on the GPU". */
  ffnTotal: number;
  layers: LayerPlacement[];
  covered: number;
  total: number;
}

const LABEL: Record<keyof FixedVram, string> = {
  attention: 'attention weights',
  predictors: 'predictors',
  norms: 'norms',
  output: 'output matrix',
  kvCache: 'KV cache',
  index: 'neuron index',
  workspace: 'working buffers',
};

/**
 * The hot neurons per layer (ascending ids) under `budget` bytes, each layer's count a
 * multiple of `group` or all of its neurons (PowerInfer's CUDA kernels need such counts,
 * see placement-format.ts). A layer's hottest neurons form bundles of `group`, one item
 * each for the exact solver. When n_ff is not a multiple of the group, the last, partial
 * bundle (the coldest neurons, so always taken last) is charged as a whole one: the
 * result is then valid but may leave that difference unused. Published models' n_ff are
 * multiples of 256, where the result is exact.
 */
export function chooseInGroups(counts: Float64Array[], costs: number[], budget: number, group: number): Uint32Array[] {
  if (group <= 1) return chooseHotNeurons(counts, costs, budget).gpuNeurons;
  const orders = counts.map((c) => Array.from(c.keys()).sort((a, b) => c[b] - c[a] || a - b));
  const bundles = orders.map((order, l) => {
    const sums = new Float64Array(Math.ceil(order.length / group));
    order.forEach((id, k) => (sums[Math.floor(k / group)] += counts[l][id]));
    return sums;
  });
  const chosen = chooseHotNeurons(bundles, costs.map((c) => group * c), budget).gpuNeurons;
  // Bundles are in descending order, so the solver takes a prefix of each layer's.
  return orders.map((order, l) => Uint32Array.from(order.slice(0, chosen[l].length * group)).sort());
}

export function planPlacement(
  model: ModelDescription & { identity: ModelIdentity },
  stats: ActivationStats,
  opts: KvOptions & { budget: number; group?: number },
): PlacementPlan {
  const costs = vramCosts(model, opts);
  // Say which piece no longer fits, with the running total, so the user knows what to cut.
  let used = 0;
  for (const k of FIXED_ORDER) {
    if (costs.fixed[k] === 0) continue;
    if (used + costs.fixed[k] > opts.budget) {
      const parts = FIXED_ORDER.filter((p) => costs.fixed[p] > 0)
        .map((p) => `${LABEL[p]} ${formatBytes(costs.fixed[p])}`)
        .join(', ');
      throw new BudgetTooSmallError(
        `VRAM budget ${formatBytes(opts.budget)} (${opts.budget} bytes) is too small: the ${LABEL[k]} ` +
          `no longer fit after ${formatBytes(used)} of earlier parts. The fixed part needs ` +
          `${formatBytes(costs.fixedTotal)} (${costs.fixedTotal} bytes: ${parts}) before any FFN neuron; ` +
          `raise --vram-budget${k === 'kvCache' ? ' or lower --ctx' : k === 'workspace' ? ' or lower --batch-size' : ''}`,
      );
    }
    used += costs.fixed[k];
  }
  // Each layer's hot neurons are one device piece (rounded up to 256 bytes): the solver
  // gets the capacity less that rounding for every layer, unless every neuron fits.
  const capacity = opts.budget - costs.fixedTotal;
  const all = stats.counts.map((c) => c.length);
  const solverBudget = ffnBytes(costs.neuronCost, all) <= capacity ? Number.MAX_SAFE_INTEGER : Math.max(0, capacity - DEVICE_ALIGN * costs.neuronCost.length);
  const choice = { gpuNeurons: chooseInGroups(stats.counts, costs.neuronCost, solverBudget, opts.group ?? 1) };
  const placed = ffnBytes(costs.neuronCost, choice.gpuNeurons.map((g) => g.length));
  const layers: LayerPlacement[] = stats.counts.map((c, l) => {
    let covered = 0;
    let total = 0;
    for (let i = 0; i < c.length; i++) total += c[i];
    for (const i of choice.gpuNeurons[l]) covered += c[i];
    return {
      nFf: c.length,
      gpuNeurons: choice.gpuNeurons[l],
      bytes: devicePiece(choice.gpuNeurons[l].length * costs.neuronCost[l]),
      neuronCost: costs.neuronCost[l],
      covered,
      total,
    };
  });
  return {
    identity: model.identity,
    budget: opts.budget,
    nCtx: opts.nCtx,
    nSeq: opts.nSeq ?? 1,
    fixed: costs.fixed,
    fixedTotal: costs.fixedTotal,
    ffnBytes: placed,
    ffnTotal: costs.ffnTotal,
    layers,
    covered: layers.reduce((s, l) => s + l.covered, 0),
    total: layers.reduce((s, l) => s + l.total, 0),
  };
}

/** The per-layer and total report `place` prints. */
export function formatPlacementTable(plan: PlacementPlan): string {
  const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : '-');
  const lines: string[] = [];
  lines.push(`VRAM budget ${formatBytes(plan.budget)}; context ${plan.nCtx} tokens x ${plan.nSeq} sequence(s)`);
  for (const k of FIXED_ORDER) {
    if (plan.fixed[k] > 0) lines.push(`  ${LABEL[k].padEnd(18)} ${formatBytes(plan.fixed[k]).padStart(12)}`);
  }
  lines.push(`  ${'fixed total'.padEnd(18)} ${formatBytes(plan.fixedTotal).padStart(12)}`);
  lines.push('');
  lines.push('layer  neurons on GPU        bytes  B/neuron  activations served');
  plan.layers.forEach((l, i) => {
    lines.push(
      `${String(i).padStart(5)}  ${`${l.gpuNeurons.length}/${l.nFf}`.padStart(13)} ` +
        `${formatBytes(l.bytes).padStart(12)} ${String(l.neuronCost).padStart(9)}  ${pct(l.covered, l.total).padStart(18)}`,
    );
  });
  const n = plan.layers.reduce((s, l) => s + l.gpuNeurons.length, 0);
  const nAll = plan.layers.reduce((s, l) => s + l.nFf, 0);
  lines.push(
    `total  ${`${n}/${nAll}`.padStart(13)} ${formatBytes(plan.ffnBytes).padStart(12)} ${''.padStart(9)}  ` +
      `${pct(plan.covered, plan.total).padStart(18)}`,
  );
  lines.push(
    `FFN on GPU: ${pct(plan.ffnBytes, plan.ffnTotal)} of its bytes; VRAM used ` +
      `${formatBytes(plan.fixedTotal + plan.ffnBytes)} of ${formatBytes(plan.budget)} ` +
      `(${plan.budget - plan.fixedTotal - plan.ffnBytes} bytes unused)`,
  );
  return lines.join('\n');
}
