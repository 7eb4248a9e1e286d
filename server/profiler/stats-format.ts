// Activation statistics: how many profiled tokens each FFN neuron fired on, per layer.
// Reader and writer of our versioned binary file (.rsst) live together here so the
// layout is stated once.
//
// Layout, version 1 (all integers little-endian):
//   off  size
//   0    4    magic "RSST"
//   4    4    u32 version = 1
//   8    4    u32 flags: bit 0 = counts stored as u64 (else u32); bit 1 = predictor stats present
//   12   4    u32 n_layer
//   16   8    u64 n_tokens (tokens the counts were taken over)
//   24   32   model fingerprint (SHA-256, see model-identity.ts)
//   56   ...  strings, each u32 byte length + UTF-8: model name, architecture, source
//             ("profile", "powerinfer-import", ...)
//        4*L  u32 n_ff of each layer
//        24*L (bit 1 only) per layer u64 true positives, u64 false positives, u64 false negatives
//             of the predictor against the true activations (precision = tp/(tp+fp), recall = tp/(tp+fn))
//        ...  counts, layer after layer, n_ff values of u32 (or u64 with bit 0)
//   end-4 4   u32 CRC-32 (zlib polynomial) of every byte before it
//
// Counts are held in memory as Float64Array: exact up to 2^53, enough for any corpus.

import { readFileSync } from 'node:fs';
import { FormatError, Reader, Writer, openChecked, writeFileAtomic } from './binary-io.js';
import { assertSameModel, type ModelIdentity } from './model-identity.js';

export const STATS_MAGIC = 'RSST';
export const STATS_VERSION = 1;
const FLAG_U64 = 1;
const FLAG_PREDICTOR = 2;
const MAX_LAYERS = 4096;
const MAX_FF = 1 << 24;

export interface PredictorCounts {
  truePositive: number;
  falsePositive: number;
  falseNegative: number;
}

export interface ActivationStats {
  identity: ModelIdentity;
  tokens: number;
  source: string;
  /** counts[layer][neuron] = tokens on which that neuron was non-zero after the activation. */
  counts: Float64Array[];
  /** Per layer, when the model has predictors and they were measured. */
  predictor?: PredictorCounts[];
}

function validate(stats: ActivationStats): void {
  if (stats.identity.hash.length !== 32) throw new Error('model fingerprint must be 32 bytes');
  if (!Number.isSafeInteger(stats.tokens) || stats.tokens < 0) {
    throw new Error(`token count ${stats.tokens} is not a non-negative integer`);
  }
  if (stats.predictor && stats.predictor.length !== stats.counts.length) {
    throw new Error(
      `predictor stats cover ${stats.predictor.length} layers but counts cover ${stats.counts.length}`,
    );
  }
  stats.counts.forEach((layer, l) => {
    for (let i = 0; i < layer.length; i++) {
      const c = layer[i];
      if (!Number.isSafeInteger(c) || c < 0) {
        throw new Error(`layer ${l} neuron ${i}: count ${c} is not a non-negative integer`);
      }
    }
  });
}

export function encodeStats(stats: ActivationStats): Buffer {
  validate(stats);
  let max = 0;
  for (const layer of stats.counts) for (const c of layer) if (c > max) max = c;
  const u64 = max > 0xffffffff;
  const flags = (u64 ? FLAG_U64 : 0) | (stats.predictor ? FLAG_PREDICTOR : 0);
  const w = new Writer();
  w.push(Buffer.from(STATS_MAGIC, 'latin1')).u32(STATS_VERSION).u32(flags).u32(stats.counts.length);
  w.u64(stats.tokens).push(Buffer.from(stats.identity.hash));
  w.string(stats.identity.name).string(stats.identity.arch).string(stats.source);
  for (const layer of stats.counts) w.u32(layer.length);
  if (stats.predictor) {
    for (const p of stats.predictor) w.u64(p.truePositive).u64(p.falsePositive).u64(p.falseNegative);
  }
  for (const layer of stats.counts) {
    const b = Buffer.allocUnsafe(layer.length * (u64 ? 8 : 4));
    for (let i = 0; i < layer.length; i++) {
      if (u64) b.writeBigUInt64LE(BigInt(layer[i]), i * 8);
      else b.writeUInt32LE(layer[i], i * 4);
    }
    w.push(b);
  }
  return w.finishWithCrc();
}

export function decodeStats(buf: Buffer, what = 'stats file'): ActivationStats {
  const r: Reader = openChecked(buf, STATS_MAGIC, STATS_VERSION, what, 'relu-serve stats file');
  const flags = r.u32('flags');
  if (flags & ~(FLAG_U64 | FLAG_PREDICTOR)) {
    throw new FormatError(`${what}: unknown flags 0x${flags.toString(16)}`);
  }
  const nLayer = r.u32('layer count');
  if (nLayer > MAX_LAYERS) throw new FormatError(`${what}: layer count ${nLayer} is implausible`);
  const tokens = r.u64('token count');
  const hash = new Uint8Array(r.bytes(32, 'model fingerprint'));
  const name = r.string('model name');
  const arch = r.string('architecture');
  const source = r.string('source');
  const nFf: number[] = [];
  for (let l = 0; l < nLayer; l++) {
    const n = r.u32(`layer ${l} n_ff`);
    if (n > MAX_FF) throw new FormatError(`${what}: layer ${l} n_ff ${n} is implausible`);
    nFf.push(n);
  }
  let predictor: PredictorCounts[] | undefined;
  if (flags & FLAG_PREDICTOR) {
    predictor = [];
    for (let l = 0; l < nLayer; l++) {
      predictor.push({
        truePositive: r.u64(`layer ${l} predictor true positives`),
        falsePositive: r.u64(`layer ${l} predictor false positives`),
        falseNegative: r.u64(`layer ${l} predictor false negatives`),
      });
    }
  }
  const width = flags & FLAG_U64 ? 8 : 4;
  const counts: Float64Array[] = [];
  for (let l = 0; l < nLayer; l++) {
    const b = r.bytes(nFf[l] * width, `layer ${l} counts`);
    const out = new Float64Array(nFf[l]);
    for (let i = 0; i < nFf[l]; i++) {
      out[i] = width === 8 ? Number(b.readBigUInt64LE(i * 8)) : b.readUInt32LE(i * 4);
    }
    counts.push(out);
  }
  if (r.pos !== r.buf.length) {
    throw new FormatError(`${what}: ${r.buf.length - r.pos} unexpected bytes after the counts`);
  }
  return { identity: { name, arch, hash }, tokens, source, counts, predictor };
}

export function writeStatsFile(path: string, stats: ActivationStats): void {
  writeFileAtomic(path, encodeStats(stats));
}

/**
 * Reads a stats file; with `model`, also refuses stats measured on another model and
 * checks the layer shape against it.
 */
export function readStatsFile(
  path: string,
  model?: { identity: ModelIdentity; nLayer: number; nFf: number },
): ActivationStats {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read stats file ${path}: ${(e as Error).message}`);
  }
  const stats = decodeStats(buf, `stats file ${path}`);
  if (model) {
    assertSameModel(`stats file ${path}`, stats.identity, model.identity);
    if (stats.counts.length !== model.nLayer || stats.counts.some((c) => c.length !== model.nFf)) {
      throw new Error(
        `stats file ${path} has ${stats.counts.length} layers of ` +
          `${stats.counts.map((c) => c.length).join('/')} neurons; the model has ${model.nLayer} x ${model.nFf}`,
      );
    }
  }
  return stats;
}

/** Element-wise sum of two stats over the same model (e.g. profiling in several runs). */
export function mergeStats(a: ActivationStats, b: ActivationStats): ActivationStats {
  assertSameModel('second stats', b.identity, a.identity);
  if (a.counts.length !== b.counts.length) throw new Error('stats have different layer counts');
  const counts = a.counts.map((layer, l) => {
    if (layer.length !== b.counts[l].length) throw new Error(`layer ${l} sizes differ`);
    const out = new Float64Array(layer.length);
    for (let i = 0; i < layer.length; i++) out[i] = layer[i] + b.counts[l][i];
    return out;
  });
  const predictor =
    a.predictor && b.predictor
      ? a.predictor.map((p, l) => ({
          truePositive: p.truePositive + b.predictor![l].truePositive,
          falsePositive: p.falsePositive + b.predictor![l].falsePositive,
          falseNegative: p.falseNegative + b.predictor![l].falseNegative,
        }))
      : undefined;
  return { identity: a.identity, tokens: a.tokens + b.tokens, source: a.source, counts, predictor };
}
