// From a model, its activation statistics and a VRAM budget to a placement: fixed part
// first (in PowerInfer's order), then the exact hot-neuron choice with what is left.

import type { ModelDescription, ModelIdentity } from './model-identity.js';
import type { ActivationStats } from './stats-format.js';
import { chooseHotNeurons } from './placement.js';
import { FIXED_ORDER, formatBytes, vramCosts, type FixedVram, type KvOptions } from './vram-costs.js';

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
  neuronCostExact: boolean;
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
  other: 'other tensors',
};

export function planPlacement(
  model: ModelDescription & { identity: ModelIdentity },
  stats: ActivationStats,
  opts: KvOptions & { budget: number },
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
          `raise --vram-budget${k === 'kvCache' ? ' or lower --ctx' : ''}`,
      );
    }
    used += costs.fixed[k];
  }
  const choice = chooseHotNeurons(stats.counts, costs.neuronCost, opts.budget - costs.fixedTotal);
  const layers: LayerPlacement[] = stats.counts.map((c, l) => {
    let covered = 0;
    let total = 0;
    for (let i = 0; i < c.length; i++) total += c[i];
    for (const i of choice.gpuNeurons[l]) covered += c[i];
    return {
      nFf: c.length,
      gpuNeurons: choice.gpuNeurons[l],
      bytes: choice.gpuNeurons[l].length * costs.neuronCost[l],
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
    ffnBytes: choice.bytes,
    ffnTotal: costs.ffnTotal,
    neuronCostExact: costs.neuronCostExact,
    layers,
    covered: choice.covered,
    total: choice.total,
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
  if (!plan.neuronCostExact) {
    lines.push('note: a quantised ffn_down row is not a whole number of bytes per neuron; its cost was rounded up');
  }
  return lines.join('\n');
}
