// Placement files: which FFN neurons of each layer live on the GPU.
//
// Ours (.rspl), version 1, little-endian:
//   off  size
//   0    4    magic "RSPL"
//   4    4    u32 version = 1
//   8    4    u32 flags = 0 (reserved)
//   12   4    u32 n_layer
//   16   8    u64 VRAM budget in bytes
//   24   8    u64 context size (positions per sequence) the KV cache was sized for
//   32   8    u64 sequences (server slots) the KV cache was sized for
//   40   8    u64 fixed VRAM bytes (attention, predictors, norms, output, KV cache)
//   48   8    u64 FFN bytes placed
//   56   8    u64 activations served on the GPU (per the stats used)
//   64   8    u64 all activations in those stats
//   72   32   model fingerprint (SHA-256, see model-identity.ts)
//   104  ...  strings (u32 byte length + UTF-8): model name, architecture
//        per layer: u32 n_ff, u32 k, u32 bytes per neuron, then k x u32 neuron ids, ascending
//   end-4 4   u32 CRC-32 of every byte before it
//
// PowerInfer's `<model>.generated.gpuidx` is also written (see ../shared docs): a GGUF with
// magic PWRI, general.architecture "generic.gpu_index", generic.gpu_index.block_count (u32),
// split.vram_capacity (u64, the VRAM left for FFN neurons), and per layer the I32 tensors blk.{i}.gpu_idx (n_ff, 1 = on GPU)
// and blk.{i}.gpu_bucket (the GPU ids, ascending), in that order.

import { readFileSync } from 'node:fs';
import { FormatError, Writer, openChecked, writeFileAtomic } from './binary-io.js';
import { assertSameModel, type ModelIdentity } from './model-identity.js';
import type { PlacementPlan } from './placement-plan.js';
import { writeGguf, type TensorSpec } from '../gguf/writer.js';

export const PLACEMENT_MAGIC = 'RSPL';
export const PLACEMENT_VERSION = 1;

export interface PlacementFile {
  identity: ModelIdentity;
  budget: number;
  nCtx: number;
  nSeq: number;
  fixedBytes: number;
  ffnBytes: number;
  covered: number;
  total: number;
  layers: { nFf: number; neuronCost: number; gpuNeurons: Uint32Array }[];
}

export function placementFileFromPlan(plan: PlacementPlan): PlacementFile {
  return {
    identity: plan.identity,
    budget: plan.budget,
    nCtx: plan.nCtx,
    nSeq: plan.nSeq,
    fixedBytes: plan.fixedTotal,
    ffnBytes: plan.ffnBytes,
    covered: plan.covered,
    total: plan.total,
    layers: plan.layers.map((l) => ({ nFf: l.nFf, neuronCost: l.neuronCost, gpuNeurons: l.gpuNeurons })),
  };
}

function checkIds(ids: Uint32Array, nFf: number, where: string): void {
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= nFf) throw new FormatError(`${where}: neuron id ${ids[i]} is not below n_ff = ${nFf}`);
    if (i > 0 && ids[i] <= ids[i - 1]) throw new FormatError(`${where}: neuron ids are not strictly ascending`);
  }
}

export function encodePlacement(p: PlacementFile): Buffer {
  const w = new Writer();
  w.push(Buffer.from(PLACEMENT_MAGIC, 'latin1')).u32(PLACEMENT_VERSION).u32(0).u32(p.layers.length);
  w.u64(p.budget).u64(p.nCtx).u64(p.nSeq).u64(p.fixedBytes).u64(p.ffnBytes).u64(p.covered).u64(p.total);
  w.push(Buffer.from(p.identity.hash)).string(p.identity.name).string(p.identity.arch);
  p.layers.forEach((l, i) => {
    checkIds(l.gpuNeurons, l.nFf, `layer ${i}`);
    w.u32(l.nFf).u32(l.gpuNeurons.length).u32(l.neuronCost);
    w.push(Buffer.from(l.gpuNeurons.buffer, l.gpuNeurons.byteOffset, l.gpuNeurons.byteLength));
  });
  return w.finishWithCrc();
}

export function decodePlacement(buf: Buffer, what = 'placement file'): PlacementFile {
  const r = openChecked(buf, PLACEMENT_MAGIC, PLACEMENT_VERSION, what, 'relu-serve placement file');
  const flags = r.u32('flags');
  if (flags !== 0) throw new FormatError(`${what}: unknown flags 0x${flags.toString(16)}`);
  const nLayer = r.u32('layer count');
  if (nLayer > 4096) throw new FormatError(`${what}: layer count ${nLayer} is implausible`);
  const budget = r.u64('budget');
  const nCtx = r.u64('context size');
  const nSeq = r.u64('sequence count');
  const fixedBytes = r.u64('fixed bytes');
  const ffnBytes = r.u64('FFN bytes');
  const covered = r.u64('covered activations');
  const total = r.u64('total activations');
  const hash = new Uint8Array(r.bytes(32, 'model fingerprint'));
  const name = r.string('model name');
  const arch = r.string('architecture');
  const layers: PlacementFile['layers'] = [];
  for (let i = 0; i < nLayer; i++) {
    const nFf = r.u32(`layer ${i} n_ff`);
    const k = r.u32(`layer ${i} GPU neuron count`);
    const neuronCost = r.u32(`layer ${i} bytes per neuron`);
    if (k > nFf) throw new FormatError(`${what}: layer ${i} places ${k} of only ${nFf} neurons`);
    const raw = r.bytes(4 * k, `layer ${i} neuron ids`);
    const ids = new Uint32Array(k);
    for (let j = 0; j < k; j++) ids[j] = raw.readUInt32LE(4 * j);
    checkIds(ids, nFf, `${what}: layer ${i}`);
    layers.push({ nFf, neuronCost, gpuNeurons: ids });
  }
  if (r.pos !== r.buf.length) throw new FormatError(`${what}: ${r.buf.length - r.pos} unexpected bytes at the end`);
  return { identity: { name, arch, hash }, budget, nCtx, nSeq, fixedBytes, ffnBytes, covered, total, layers };
}

export function writePlacementFile(path: string, p: PlacementFile): void {
  writeFileAtomic(path, encodePlacement(p));
}

export function readPlacementFile(path: string, model?: ModelIdentity): PlacementFile {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read placement file ${path}: ${(e as Error).message}`);
  }
  const p = decodePlacement(buf, `placement file ${path}`);
  if (model) assertSameModel(`placement file ${path}`, p.identity, model);
  return p;
}

/**
 * Hot neurons per layer that PowerInfer's CUDA kernels handle whole: a multiple of this,
 * or none, or all of the layer's. Read from SJTU-IPADS/PowerInfer's ggml-cuda.cu: at
 * commit 50e2541 the prompt path (more than 100 tokens) asserts the hot count is a
 * multiple of 32 (transpose_gemm, launched with k / 32 blocks) and the decode kernels
 * cover any count; the revision our notes cite (shared/docs/gpu-hybrid.md) has a Q4_0
 * down kernel that covers only floor(k / 256) * 256 rows, silently dropping the rest.
 * Its own solver (powerinfer-py) always emits multiples of 256. So we do too.
 */
export const POWERINFER_GROUP = 256;

/** Writes PowerInfer's `.generated.gpuidx` GGUF for this placement (hot counts must suit POWERINFER_GROUP). */
export async function writePowerInferGpuIdx(path: string, p: PlacementFile): Promise<void> {
  p.layers.forEach((l, i) => {
    const k = l.gpuNeurons.length;
    if (k !== 0 && k !== l.nFf && k % POWERINFER_GROUP !== 0) {
      throw new Error(
        `layer ${i} places ${k} of ${l.nFf} neurons: PowerInfer's kernels need a multiple of ${POWERINFER_GROUP} ` +
          '(or none, or all); solve the placement with that granularity (relu-serve place --powerinfer-gpuidx does)',
      );
    }
  });
  const tensors: TensorSpec[] = [];
  p.layers.forEach((l, i) => {
    const idx = new Int32Array(l.nFf);
    for (const id of l.gpuNeurons) idx[id] = 1;
    const bucket = Int32Array.from(l.gpuNeurons);
    tensors.push({ name: `blk.${i}.gpu_idx`, dims: [l.nFf], type: 'i32', data: new Uint8Array(idx.buffer) });
    // A zero-length tensor is legal GGUF but some readers choke on it; PowerInfer itself
    // writes whatever the solver gave, so an empty bucket stays empty.
    tensors.push({ name: `blk.${i}.gpu_bucket`, dims: [bucket.length], type: 'i32', data: new Uint8Array(bucket.buffer) });
  });
  await writeGguf(path, {
    magic: 'PWRI',
    metadata: [
      ['general.architecture', { type: 'string', value: 'generic.gpu_index' }],
      ['generic.gpu_index.block_count', { type: 'u32', value: p.layers.length }],
      // As in the reference: the capacity handed to the neuron solver (budget minus the
      // fixed part); its loader checks it against the VRAM it has left for FFN neurons.
      ['split.vram_capacity', { type: 'u64', value: BigInt(p.budget - p.fixedBytes) }],
    ],
    tensors,
  });
}
