// PowerInfer's published activation statistics: a directory of activation_{i}.pt, one
// 1-D tensor of length n_ff per layer saying how often each neuron fired. We import them
// into our stats format (tied to the model they are applied to) and export ours back to
// that layout so PowerInfer's own tools can use counts we measured.

import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fp16ToFp32, bf16ToFp32 } from '../gguf/float16.js';
import { writeFileAtomic } from './binary-io.js';
import type { ModelIdentity } from './model-identity.js';
import type { ActivationStats } from './stats-format.js';
import { pickleInt64Vector, unpickle, type TorchDtype, type TorchTensorRef } from './torch-pickle.js';
import { readZip, writeZip } from './zip-archive.js';

const DTYPE_BYTES: Record<TorchDtype, number> = { f32: 4, f64: 8, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 };

function readElement(b: Buffer, dtype: TorchDtype, i: number): number {
  switch (dtype) {
    case 'f32': return b.readFloatLE(4 * i);
    case 'f64': return b.readDoubleLE(8 * i);
    case 'f16': return fp16ToFp32(b.readUInt16LE(2 * i));
    case 'bf16': return bf16ToFp32(b.readUInt16LE(2 * i));
    case 'i64': return Number(b.readBigInt64LE(8 * i));
    case 'i32': return b.readInt32LE(4 * i);
    case 'i16': return b.readInt16LE(2 * i);
    case 'i8': return b.readInt8(i);
    case 'u8': case 'bool': return b[i];
  }
}

/** Reads a .pt file holding one 1-D tensor (any common dtype) as float64 values. */
export function readTorchVector(path: string): { values: Float64Array; dtype: TorchDtype } {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  const entries = readZip(buf, path);
  const pkl = [...entries.keys()].find((k) => /^[^/]*\/data\.pkl$/.test(k));
  if (!pkl) throw new Error(`${path}: no */data.pkl entry; not a torch.save file`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`)?.toString('latin1').trim();
  if (order && order !== 'little') throw new Error(`${path}: byte order ${order} is not supported`);
  const obj = unpickle(entries.get(pkl)!, path) as TorchTensorRef;
  if (!obj || typeof obj !== 'object' || obj.kind !== 'tensor') {
    throw new Error(`${path}: holds something other than a single tensor`);
  }
  if (obj.shape.length !== 1) {
    throw new Error(`${path}: tensor has shape [${obj.shape.join(', ')}]; activation counts are 1-D`);
  }
  const raw = entries.get(`${prefix}data/${obj.storage.key}`);
  if (!raw) throw new Error(`${path}: storage ${obj.storage.key} is missing`);
  const size = DTYPE_BYTES[obj.storage.dtype];
  const n = obj.shape[0];
  const last = obj.offset + (n - 1) * obj.stride[0];
  if (n > 0 && (last + 1) * size > raw.length) throw new Error(`${path}: tensor runs past its storage (truncated?)`);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = readElement(raw, obj.storage.dtype, obj.offset + i * obj.stride[0]);
  return { values, dtype: obj.storage.dtype };
}

/** Writes a 1-D int64 tensor as torch.save would (torch.load reads it back). */
export function writeTorchVector(path: string, values: ArrayLike<number>, archiveName: string): void {
  const data = Buffer.alloc(8 * values.length);
  for (let i = 0; i < values.length; i++) data.writeBigInt64LE(BigInt(values[i]), 8 * i);
  const zip = writeZip([
    { name: `${archiveName}/data.pkl`, data: pickleInt64Vector(values.length) },
    { name: `${archiveName}/byteorder`, data: Buffer.from('little') },
    { name: `${archiveName}/data/0`, data },
    { name: `${archiveName}/version`, data: Buffer.from('3\n') },
  ]);
  writeFileAtomic(path, zip);
}

/** activation_{i}.pt files of a directory in numeric layer order; refuses gaps. */
export function listActivationFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new Error(`cannot list ${dir}: ${(e as Error).message}`);
  }
  const layers = names
    .map((n) => /^activation_(\d+)\.pt$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ layer: Number(m[1]), name: m[0] }))
    .sort((a, b) => a.layer - b.layer);
  if (layers.length === 0) throw new Error(`${dir} has no activation_{i}.pt files`);
  layers.forEach((l, i) => {
    if (l.layer !== i) throw new Error(`${dir}: activation_${i}.pt is missing (found activation_${l.layer}.pt)`);
  });
  return layers.map((l) => join(dir, l.name));
}

export interface ImportResult {
  stats: ActivationStats;
  /** Factor the values were multiplied by to make integer counts (1 when they were counts). */
  scale: number;
}

/**
 * Imports a PowerInfer activation directory as stats for `model`. Fractional values
 * (frequencies rather than counts) are scaled by 1e6 and rounded: placement only
 * depends on their ratios.
 */
export function importPowerInferDir(
  dir: string,
  model: { identity: ModelIdentity; nLayer: number; nFf: number },
): ImportResult {
  const files = listActivationFiles(dir);
  if (files.length !== model.nLayer) {
    throw new Error(`${dir} has ${files.length} layer files but the model has ${model.nLayer} layers`);
  }
  const vectors = files.map((f) => {
    const { values } = readTorchVector(f);
    if (values.length !== model.nFf) throw new Error(`${f} has ${values.length} entries; the model's n_ff is ${model.nFf}`);
    values.forEach((v, i) => {
      if (!Number.isFinite(v) || v < 0) throw new Error(`${f}: entry ${i} is ${v}, not a non-negative count`);
    });
    return values;
  });
  const integral = vectors.every((v) => v.every((x) => Number.isInteger(x)));
  const scale = integral ? 1 : 1e6;
  const counts = vectors.map((v) => (integral ? v : v.map((x) => Math.round(x * scale))));
  return {
    stats: { identity: model.identity, tokens: 0, source: scale === 1 ? 'powerinfer-import' : 'powerinfer-import (frequencies x1e6)', counts },
    scale,
  };
}

/** Writes stats as activation_{i}.pt (int64 counts) into `dir`. */
export function exportPowerInferDir(dir: string, stats: ActivationStats): string[] {
  mkdirSync(dir, { recursive: true });
  return stats.counts.map((c, i) => {
    const path = join(dir, `activation_${i}.pt`);
    writeTorchVector(path, c, `activation_${i}`);
    return path;
  });
}
