// Byte costs of a hybrid CPU/GPU split, from the real tensor types in the model file:
// what relu-serve's hybrid runtime allocates on the device, to the byte. Device memory is
// filled in PowerInfer's order: attention weights of all layers, predictors, norms, the
// output matrix, the KV cache for the configured context; then our neuron index and
// working buffers; then hot FFN neurons with what is left. Every piece (one tensor, one
// layer's hot neurons, one buffer) starts on a 256-byte boundary and takes
// devicePiece(bytes). The token embedding stays on the CPU (a row lookup, no matmul), as
// in PowerInfer. addon/src/vram_plan.cpp makes the same sums; the engine tests hold the
// two to each other.

import type { ModelDescription, TensorDesc } from './model-identity.js';

export const DEVICE_ALIGN = 256;
export const devicePiece = (bytes: number): number => Math.ceil(bytes / DEVICE_ALIGN) * DEVICE_ALIGN;

export interface FixedVram {
  attention: number;
  predictors: number;
  norms: number;
  output: number;
  kvCache: number;
  /** Per layer: each neuron's slot and each slot's neuron (int32, n_ff each). */
  index: number;
  /** Activations, predictor scores, neuron lists, partial sums, logits (workspaceParts). */
  workspace: number;
}

export const FIXED_ORDER: (keyof FixedVram)[] = ['attention', 'predictors', 'norms', 'output', 'kvCache', 'index', 'workspace'];

export interface VramCosts {
  fixed: FixedVram;
  fixedTotal: number;
  /** Bytes one hot neuron of each layer takes on the device: its gate row + up row + down row. */
  neuronCost: number[];
  /** Bytes of all FFN neurons of all layers (one piece per layer). */
  ffnTotal: number;
  /** Tensors left on the CPU regardless (token embedding, tensors the runtime does not use). */
  cpuOnly: number;
}

export interface KvOptions {
  nCtx: number;
  /** Sequences the server holds at once (slots), each with its own n_ctx positions; default 1. */
  nSeq?: number;
  /** Bytes per cached K or V element: 2 for f16 (default, the runtime's), 4 for f32. */
  kvBytesPerElement?: number;
  /** Most tokens per decode step (the server's batchSize; default 512): sizes the working buffers. */
  nBatch?: number;
  /** Predictors resident (predictor mode); default: when the file has them. */
  predictors?: boolean;
}

const LAYER_RE = /^blk\.(\d+)\.(.+)$/;
const FFN_ROW = /^(ffn_gate|ffn_up|ffn_down_t|ffn_down)\.weight$/;
/** Neurons per chunk of the FFN's chunked sums (addon/src/sparse_ffn_common.h kChunk). */
const CHUNK = 512;
/** Rows per FFN group of a split step (addon/src/vram_plan.h kGroupRows). */
const GROUP_ROWS = 64;
/** Attention's partial states per row of a group (addon/src/vram_plan.h kAttentionSplits). */
const ATTENTION_SPLITS = 16;

function positive(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${what} ${v} must be a positive integer`);
  return v;
}

/** K and V for every layer, sequence and position: two pieces. */
export function kvCacheBytes(model: ModelDescription, opts: KvOptions): number {
  positive(opts.nCtx, 'context size');
  const headDim = model.nEmbd / model.nHead;
  const el = opts.kvBytesPerElement ?? 2;
  const nSeq = positive(opts.nSeq ?? 1, 'sequence count');
  return 2 * devicePiece(nSeq * opts.nCtx * model.nLayer * model.nHeadKv * headDim * el);
}

/** The runtime's working buffers in allocation order (addon/src/vram_plan.cpp workspace_parts). */
export function workspaceParts(model: ModelDescription, nBatch: number, maxRank: number): [string, number][] {
  const nb = positive(nBatch, 'batch size');
  const g = Math.min(nb, GROUP_ROWS);
  const d = model.nEmbd;
  const kv = model.nHeadKv * (model.nEmbd / model.nHead);
  const ff = model.nFf;
  const chunks = Math.ceil(ff / CHUNK);
  const hd = model.nEmbd / model.nHead;
  return [
    ['x', nb * d * 4],
    ['xb', nb * d * 4],
    ['q', nb * d * 4],
    ['k', nb * kv * 4],
    ['v', nb * kv * 4],
    ['att', nb * d * 4],
    ['pos', nb * 4],
    ['seq', nb * 4],
    ['act_q', nb * Math.ceil(d / 32) * 36],
    ['z1', g * maxRank * 4],
    ['scores', g * ff * 4],
    ['nmask', ff * 8],
    ['hot_list', ff * 4],
    ['hot_mask', ff * 8],
    ['counts', 64],
    ['hot_h', ff * g * 4],
    ['hot_part', g * chunks * d * 4],
    ['hot_y', g * d * 4],
    ['cold_y', g * d * 4],
    ['logits', g * model.nVocab * 4],
    ['att_part', g * ATTENTION_SPLITS * model.nHead * (hd + 2) * 4],
  ];
}

export function vramCosts(model: ModelDescription, opts: KvOptions): VramCosts {
  const fixed: FixedVram = { attention: 0, predictors: 0, norms: 0, output: 0, kvCache: 0, index: 0, workspace: 0 };
  const rows: Map<string, TensorDesc>[] = Array.from({ length: model.nLayer }, () => new Map());
  const usePredictors = opts.predictors ?? model.tensors.some((t) => /^blk\.\d+\.fc1\.weight$/.test(t.name));
  let cpuOnly = 0;
  let output: TensorDesc | undefined;
  let embed: TensorDesc | undefined;
  let maxRank = 0;
  // Norms live on the device as f32 whatever their type in the file.
  const normPiece = (t: TensorDesc) => devicePiece(4 * t.shape.reduce((a, b) => a * b, 1));
  for (const t of model.tensors) {
    const m = LAYER_RE.exec(t.name);
    const rest = m?.[2] ?? '';
    if (m && Number(m[1]) < model.nLayer && FFN_ROW.test(rest)) {
      rows[Number(m[1])].set(FFN_ROW.exec(rest)![1], t);
    } else if (m && /^attn_(q|k|v|output)\.weight$/.test(rest)) {
      fixed.attention += devicePiece(t.bytes);
    } else if (m && /^fc[12]\.weight$/.test(rest) && usePredictors) {
      fixed.predictors += devicePiece(t.bytes);
      if (rest.startsWith('fc1')) maxRank = Math.max(maxRank, t.shape[1]);
    } else if (m && /^(attn_norm|ffn_norm)\.weight$/.test(rest)) {
      fixed.norms += normPiece(t);
    } else if (t.name === 'output_norm.weight') {
      fixed.norms += normPiece(t);
    } else if (t.name === 'output.weight') {
      output = t;
    } else {
      if (t.name === 'token_embd.weight') embed = t;
      cpuOnly += t.bytes;
    }
  }
  // Tied output: the device needs its own copy of the embedding matrix for the logits.
  const out = output ?? embed;
  if (out) fixed.output = devicePiece(out.bytes);
  fixed.kvCache = kvCacheBytes(model, opts);
  fixed.index = model.nLayer * 2 * devicePiece(4 * model.nFf);
  for (const [, bytes] of workspaceParts(model, opts.nBatch ?? 512, maxRank)) fixed.workspace += devicePiece(bytes);

  const neuronCost: number[] = [];
  for (let l = 0; l < model.nLayer; l++) {
    const r = rows[l];
    const gate = r.get('ffn_gate');
    const up = r.get('ffn_up');
    const downT = r.get('ffn_down_t');
    const down = r.get('ffn_down');
    if (!gate || !up || (!downT && !down)) {
      throw new Error(`layer ${l} has no ${!gate ? 'ffn_gate' : !up ? 'ffn_up' : 'ffn_down / ffn_down_t'} weight: cannot cost its neurons`);
    }
    const row = (t: TensorDesc) => {
      // ne = {n_embd, n_ff}: one row per neuron.
      if (t.shape[1] !== model.nFf) throw new Error(`${t.name} has ${t.shape[1]} neurons, expected n_ff = ${model.nFf}`);
      return t.bytes / model.nFf;
    };
    // A plain file's ffn_down (ne = {n_ff, n_embd}) is repacked at load into one row per
    // neuron, f32 for f32 files and f16 otherwise: that row is what the device holds.
    let downRow: number;
    if (downT) downRow = row(downT);
    else {
      if (down!.shape[0] !== model.nFf) throw new Error(`${down!.name} has ${down!.shape[0]} neurons, expected n_ff = ${model.nFf}`);
      downRow = (down!.typeName === 'f32' ? 4 : 2) * model.nEmbd;
    }
    neuronCost.push(row(gate) + row(up) + downRow);
  }
  const fixedTotal = FIXED_ORDER.reduce((s, k) => s + fixed[k], 0);
  const ffnTotal = neuronCost.reduce((s, c) => s + devicePiece(c * model.nFf), 0);
  return { fixed, fixedTotal, neuronCost, ffnTotal, cpuOnly };
}

/** Device bytes of count[l] hot neurons in layer l (one piece per layer). */
export function ffnBytes(neuronCost: number[], count: number[]): number {
  return neuronCost.reduce((s, c, l) => s + devicePiece(c * count[l]), 0);
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
