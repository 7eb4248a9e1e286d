// What the profiler and the placement solver need to know about a model, and a
// fingerprint of it. Stats and placements are only meaningful for the exact model they
// were measured on: the same names and shapes with different quantisation change the
// byte costs, a different n_ff makes neuron ids meaningless. So both files carry a
// SHA-256 over the architecture, hyper-parameters, general.name, every tensor's name,
// type, shape and size, and a sample of the weights themselves (see model-file.ts);
// readers refuse a file whose fingerprint differs.

import { createHash } from 'node:crypto';

export interface TensorDesc {
  name: string;
  /** ggml type id. */
  type: number;
  typeName: string;
  /** GGUF ne order (fastest dimension first). */
  shape: number[];
  bytes: number;
}

/** The subset of a loaded model the offline tools use (engine Model or a GGUF header). */
export interface ModelDescription {
  /** general.name when present, else the file's base name. */
  name: string;
  arch: string;
  nLayer: number;
  nFf: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nVocab: number;
  tensors: TensorDesc[];
  /** general.name when the file has one (part of the fingerprint; a file name is not). */
  fileName?: string;
  /**
   * SHA-256 (hex) over the first bytes of every tensor's data: tells apart two models with
   * the same shapes and types (a fine-tune, another seed), which the header alone cannot.
   */
  contentDigest?: string;
}

export interface ModelIdentity {
  name: string;
  arch: string;
  /** 32-byte SHA-256 fingerprint. */
  hash: Uint8Array;
}

export function modelIdentity(model: ModelDescription): ModelIdentity {
  const h = createHash('sha256');
  // Hyper-parameters first, then tensors sorted by name so a file that merely stores
  // the same tensors in another order is the same model.
  h.update(
    `relu-serve model identity v1\narch=${model.arch}\nn_layer=${model.nLayer}\nn_ff=${model.nFf}\n` +
      `n_embd=${model.nEmbd}\nn_head=${model.nHead}\nn_head_kv=${model.nHeadKv}\nn_vocab=${model.nVocab}\n`,
  );
  if (model.fileName !== undefined) h.update(`general.name=${model.fileName}\n`);
  if (model.contentDigest !== undefined) h.update(`content=${model.contentDigest}\n`);
  const sorted = [...model.tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const t of sorted) {
    h.update(`${t.name}\t${t.type}\t${t.shape.join('x')}\t${t.bytes}\n`);
  }
  return { name: model.name, arch: model.arch, hash: new Uint8Array(h.digest()) };
}

export function identityHex(id: ModelIdentity | Uint8Array): string {
  const bytes = id instanceof Uint8Array ? id : id.hash;
  return Buffer.from(bytes).toString('hex');
}

export function sameIdentity(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Throws a clear error when a file made for one model is applied to another. `what`
 * names the file kind and path for the message.
 */
export function assertSameModel(what: string, fileId: ModelIdentity, model: ModelIdentity): void {
  if (sameIdentity(fileId.hash, model.hash)) return;
  throw new Error(
    `${what} was made for a different model: it is for "${fileId.name}" (${fileId.arch}, ` +
      `fingerprint ${identityHex(fileId).slice(0, 16)}…) but the model given is "${model.name}" ` +
      `(${model.arch}, fingerprint ${identityHex(model).slice(0, 16)}…); ` +
      'profile this model again (relu-serve profile) to get matching statistics',
  );
}
