// A model's description for the offline tools, read from the GGUF header alone (no
// weights, no native addon): `place` runs on a machine without the engine built, and
// `profile` and `place` fingerprint the model the same way.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { readGgufHeader } from '../gguf/header-reader.js';
import { resolveGgmlType, tensorByteSize } from '../gguf/constants.js';
import { modelIdentity, type ModelDescription, type ModelIdentity } from './model-identity.js';

const SAMPLE_BYTES = 4096;

export type DescribedModel = ModelDescription & { identity: ModelIdentity; path: string; isPowerInfer: boolean };

export async function describeModelFile(path: string): Promise<DescribedModel> {
  let h;
  try {
    h = await readGgufHeader(path);
  } catch (e) {
    throw new Error(`cannot read model ${path}: ${(e as Error).message}`);
  }
  if (h.magic !== 'GGUF' && h.magic !== 'PWRI') throw new Error(`${path} is not a GGUF model (magic ${JSON.stringify(h.magic)})`);
  const meta = (k: string) => h.metadata.get(k)?.value;
  const arch = meta('general.architecture');
  if (typeof arch !== 'string') throw new Error(`${path}: general.architecture is missing`);
  const int = (key: string, fallback?: number): number => {
    const v = meta(`${arch}.${key}`);
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
    if (typeof v === 'bigint' && v > 0n && v < 1n << 31n) return Number(v);
    // Only an absent key falls back: a present but unusable one is a broken file.
    if (v === undefined && fallback !== undefined) return fallback;
    throw new Error(`${path}: metadata key ${arch}.${key} is missing or not a positive integer`);
  };
  const nHead = int('attention.head_count');
  const tensors = h.tensors.map((t) => {
    const type = resolveGgmlType(t.typeId);
    return { name: t.name, type: t.typeId, typeName: type.name, shape: t.dims, bytes: Number(tensorByteSize(t.dims, type)) };
  });
  // Sample the start of every tensor's data (a few KiB each: cheap even for a 7B file).
  const digest = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(SAMPLE_BYTES);
    for (let i = 0; i < tensors.length; i++) {
      const n = Math.min(SAMPLE_BYTES, tensors[i].bytes);
      const { bytesRead } = await fh.read(buf, 0, n, h.dataOffset + Number(h.tensors[i].offset));
      if (bytesRead < n) throw new Error(`${path}: tensor ${tensors[i].name} lies past the end of the file (truncated?)`);
      digest.update(buf.subarray(0, n));
    }
  } finally {
    await fh.close();
  }
  const embd = tensors.find((t) => t.name === 'token_embd.weight');
  const name = meta('general.name');
  const desc: ModelDescription = {
    name: typeof name === 'string' && name.length > 0 ? name : basename(path),
    arch,
    nLayer: int('block_count'),
    nFf: int('feed_forward_length'),
    nEmbd: int('embedding_length'),
    nHead,
    nHeadKv: int('attention.head_count_kv', nHead),
    nVocab: embd?.shape[1] ?? 0,
    tensors,
    fileName: typeof name === 'string' && name.length > 0 ? name : undefined,
    contentDigest: digest.digest('hex'),
  };
  return { ...desc, identity: modelIdentity(desc), path, isPowerInfer: h.magic === 'PWRI' };
}
