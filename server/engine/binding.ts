// The only module that loads the native addon. It describes the addon's surface once,
// in TypeScript; engine.ts wraps it in the classes the rest of the server uses.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ActivationCounts, ContextStats, DeviceInfo, GgufValue, HybridStats, ModelInfo, SparsityStats, TensorInfo } from './types.js';
import type { NativeKernels } from './native-kernels.js';

export interface NativeContextOptions {
  nSeq?: number;
  nCtx?: number;
  threads?: number;
  nBatch?: number;
  isa?: string;
  backend?: string;
  ffnMode?: string;
  sparseThreshold?: number;
  sparseMaxBatch?: number;
  device?: string;
  vramBudget?: number;
  vramBudgetFraction?: number;
  placement?: string;
  hotNeurons?: Int32Array[];
  hotSource?: string;
  emuMemory?: number;
  emuLatencyUs?: number;
}

export interface NativeModel {
  info(): ModelInfo;
  metadata(): [string, GgufValue][];
  tensors(): TensorInfo[];
  createContext(opts: NativeContextOptions): Promise<NativeContext>;
  dispose(): void;
}

export interface NativeContext {
  /** Resolves with the logits of the wanted rows (rows x n_vocab), rejects with an Error carrying `code`. */
  decode(tokens: Int32Array, positions: Int32Array, seqIds: Int32Array, want: Uint8Array): Promise<Float32Array>;
  truncate(seq: number, p0: number): void;
  seqLength(seq: number): number;
  stats(): ContextStats;
  sparsity(): SparsityStats;
  device(): DeviceInfo;
  hybridStats(): HybridStats;
  setActivationCounting(on: boolean): void;
  activationCounts(): ActivationCounts;
  resetActivationCounts(): void;
  /** Keep each counted row's predictor input and activation mask (predictor training). */
  setActivationCapture(on: boolean): void;
  activationCapture(): ActivationCapture;
  dispose(): void;
}

/** Per layer, rows of (FFN input residual: nEmbd floats; activation mask: ceil(nFf / 8) bytes, LSB first). */
export interface ActivationCapture {
  rows: number;
  layers: { x: Float32Array; mask: Uint8Array }[];
}

export interface TrainedPredictorNative {
  rank: number;
  /** rank x nEmbd, row-major. */
  fc1: Float32Array;
  /** nFf x rank, row-major. */
  fc2: Float32Array;
  epochLoss: number[];
}

export interface PredictorTrainOptionsNative {
  rank: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  posWeight?: number;
  margin?: number;
  seed?: number;
  threads?: number;
}

export interface NativeBandwidthRow {
  pattern: 'plain' | 'prefetch' | 'nontemporal' | 'two-streams';
  isa: string;
  threads: number;
  hugePages: boolean;
  /** GB/s (1e9 bytes/s): fastest pass and median pass. */
  best: number;
  median: number;
}

export interface NativeAddon {
  loadModel(path: string, opts?: { ffnActivation?: string; noMmap?: boolean; noRepack?: boolean; downInt8?: boolean }): Promise<NativeModel>;
  kernels: NativeKernels;
  /** A device's memory before any context uses it ("cuda": the first GPU; "emu": emuMemory bytes, 0 for the default). */
  deviceMemory(device: 'cuda' | 'emu', emuMemory: number): Promise<{ total: number; free: number }>;
  /**
   * Memory read bandwidth (rs_bandwidth_params): one row per configuration tried. `patterns`,
   * `pages` and `isas` (bit i: rs_isa i) are bit masks (server/engine/bandwidth.ts builds them).
   */
  measureBandwidth(
    maxThreads: number,
    onlyThreads: number,
    megabytes: number,
    reps: number,
    patterns: number,
    pages: number,
    isas: number,
  ): Promise<NativeBandwidthRow[]>;
  /** Predictor training (addon/src/predictor_train.cpp); the arrays must not change until the promise settles. */
  training: {
    trainPredictor(x: Float32Array, mask: Uint8Array, nEmbd: number, nFf: number, o: PredictorTrainOptionsNative): Promise<TrainedPredictorNative>;
    predictorLogits(fc1: Float32Array, fc2: Float32Array, rank: number, x: Float32Array, nEmbd: number, nFf: number, threads: number): Promise<Float32Array>;
  };
  cuda: {
    /** Whether the addon was built with the CUDA sources (a GPU is still decided at run time). */
    compiled: boolean;
    /** Usable CUDA devices (0 without a driver or GPU). */
    devices(): number;
  };
}

/** Error codes the addon sets on rejected promises and thrown errors. */
export type NativeErrorCode =
  | 'RS_ERR_IO'
  | 'RS_ERR_FORMAT'
  | 'RS_ERR_UNSUPPORTED'
  | 'RS_ERR_INVALID_ARG'
  | 'RS_ERR_NO_MEMORY'
  | 'RS_ERR_INTERNAL'
  /** The model file changed under the engine (a read of its mapping faulted): the model refuses every decode after. */
  | 'RS_ERR_MODEL_FILE';

function addonPath(): string {
  const fromEnv = process.env.RELU_SERVE_ADDON;
  if (fromEnv) return fromEnv;
  // dist/server/engine/binding.js -> <root>/build/Release/relu_serve.node
  return fileURLToPath(new URL('../../../build/Release/relu_serve.node', import.meta.url));
}

function load(): NativeAddon {
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(`relu-serve native addon not found at ${path}; run "npm run build:addon" (npm ci builds it)`);
  }
  return createRequire(import.meta.url)(path) as NativeAddon;
}

export const native: NativeAddon = load();
