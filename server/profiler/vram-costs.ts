// Byte costs of a hybrid CPU/GPU split, from the real tensor types in the model file.
// VRAM is filled in PowerInfer's order: attention weights of all layers, predictors,
// norms, the output matrix, the KV cache for the configured context, then hot FFN
// neurons with what is left. The token embedding stays on the CPU (a row lookup, no
// matmul), as in PowerInfer.

import type { ModelDescription, TensorDesc } from './model-identity.js';

export interface FixedVram {
  attention: number;
  predictors: number;
  norms: number;
  output: number;
  kvCache: number;
  /** Tensors we do not recognise, counted on the GPU to stay on the safe side. */
  other: number;
}

export const FIXED_ORDER: (keyof FixedVram)[] = ['attention', 'predictors', 'norms', 'output', 'kvCache', 'other'];

export interface VramCosts {
  fixed: FixedVram;
  fixedTotal: number;
  /** Bytes one neuron of each layer takes on the GPU: its gate row + up row + down row. */
  neuronCost: number[];
  /** False when a row of a quantised, non-transposed ffn_down is not a whole number of bytes (cost rounded up). */
  neuronCostExact: boolean;
  /** Bytes of all FFN neurons of all layers. */
  ffnTotal: number;
  /** Tensors left on the CPU regardless (token embedding). */
  cpuOnly: number;
}

export interface KvOptions {
  nCtx: number;
  /** Sequences the server holds at once (slots), each with its own n_ctx positions; default 1. */
  nSeq?: number;
  /** Bytes per cached K or V element: 2 for f16 (default), 4 for f32. */
  kvBytesPerElement?: number;
}

const LAYER_RE = /^blk\.(\d+)\.(.+)$/;
const FFN_ROW = /^(ffn_gate|ffn_up|ffn_down_t|ffn_down)\.weight$/;

export function kvCacheBytes(model: ModelDescription, opts: KvOptions): number {
  if (!Number.isSafeInteger(opts.nCtx) || opts.nCtx <= 0) throw new Error(`context size ${opts.nCtx} must be a positive integer`);
  const headDim = model.nEmbd / model.nHead;
  const el = opts.kvBytesPerElement ?? 2;
  const nSeq = opts.nSeq ?? 1;
  if (!Number.isSafeInteger(nSeq) || nSeq <= 0) throw new Error(`sequence count ${nSeq} must be a positive integer`);
  return nSeq * opts.nCtx * model.nLayer * 2 * model.nHeadKv * headDim * el;
}

function classify(rest: string): keyof FixedVram {
  if (/^attn_(q|k|v|qkv|output)\./.test(rest)) return 'attention';
  if (/^fc[12]\./.test(rest)) return 'predictors';
  if (/norm/.test(rest)) return 'norms';
  return 'other';
}

export function vramCosts(model: ModelDescription, kv: KvOptions): VramCosts {
  const fixed: FixedVram = { attention: 0, predictors: 0, norms: 0, output: 0, kvCache: 0, other: 0 };
  const rows: Map<string, TensorDesc>[] = Array.from({ length: model.nLayer }, () => new Map());
  let cpuOnly = 0;
  let hasOutput = false;
  let embedBytes = 0;
  for (const t of model.tensors) {
    const m = LAYER_RE.exec(t.name);
    if (m) {
      const layer = Number(m[1]);
      const rest = m[2];
      const f = FFN_ROW.exec(rest);
      if (f && layer < model.nLayer) {
        rows[layer].set(f[1], t);
        continue;
      }
      fixed[classify(rest)] += t.bytes;
      continue;
    }
    if (t.name === 'token_embd.weight') {
      cpuOnly += t.bytes;
      embedBytes = t.bytes;
    } else if (t.name === 'output.weight') {
      fixed.output += t.bytes;
      hasOutput = true;
    } else if (/norm/.test(t.name)) fixed.norms += t.bytes;
    else fixed.other += t.bytes;
  }
  // Tied output: the GPU needs its own copy of the embedding matrix for the logits.
  if (!hasOutput) fixed.output += embedBytes;
  fixed.kvCache = kvCacheBytes(model, kv);

  const neuronCost: number[] = [];
  let exact = true;
  for (let l = 0; l < model.nLayer; l++) {
    const r = rows[l];
    const up = r.get('ffn_up');
    const down = r.get('ffn_down_t') ?? r.get('ffn_down');
    if (!up || !down) {
      throw new Error(`layer ${l} has no ${up ? 'ffn_down / ffn_down_t' : 'ffn_up'} weight: cannot cost its neurons`);
    }
    let cost = 0;
    for (const key of ['ffn_gate', 'ffn_up', 'ffn_down_t', 'ffn_down'] as const) {
      const t = r.get(key);
      if (!t || (key === 'ffn_down' && r.has('ffn_down_t'))) continue;
      // gate, up, down_t: ne = {n_embd, n_ff}, one row per neuron. down: ne = {n_ff, n_embd},
      // a neuron is a column; for quantised types its share is fractional, so round up.
      const nFf = key === 'ffn_down' ? t.shape[0] : t.shape[1];
      if (nFf !== model.nFf) {
        throw new Error(`${t.name} has ${nFf} neurons, expected n_ff = ${model.nFf}`);
      }
      const share = t.bytes / nFf;
      if (!Number.isInteger(share)) exact = false;
      cost += share;
    }
    neuronCost.push(Math.ceil(cost));
  }
  const fixedTotal = FIXED_ORDER.reduce((s, k) => s + fixed[k], 0);
  const ffnTotal = neuronCost.reduce((s, c) => s + c * model.nFf, 0);
  return { fixed, fixedTotal, neuronCost, neuronCostExact: exact, ffnTotal, cpuOnly };
}

/** Parses "6GiB", "512MiB", "1e9", "1.5 GB", "800M" (binary units for Ki/Mi/Gi/Ti, decimal for K/M/G/T/KB/MB...). */
export function parseByteSize(text: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(text);
  if (!m) throw new Error(`cannot read ${JSON.stringify(text)} as a size (examples: 6GiB, 512MiB, 1e9)`);
  const value = Number(m[1]);
  const unit = (m[2] ?? 'b').toLowerCase();
  const pow = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as 'b' | 'k' | 'm' | 'g' | 't'];
  const base = unit.length > 1 && unit[1] === 'i' ? 1024 : 1000;
  const bytes = Math.floor(value * base ** pow);
  if (!Number.isSafeInteger(bytes)) throw new Error(`size ${JSON.stringify(text)} is out of range`);
  return bytes;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
}
