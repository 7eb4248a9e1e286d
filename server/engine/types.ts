// The engine's surface as the rest of the server sees it. binding.ts is the only
// module that loads the native addon; everything else imports these types and the
// wrappers in engine.ts.

/** A GGUF metadata value. Integers that fit a double are numbers; larger u64/i64 are bigint. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

export type FfnActivation = 'swiglu' | 'relu_glu' | 'drelu';

export interface ModelInfo {
  arch: string; // "llama" | "bamboo"
  ffnActivation: FfnActivation;
  /** Why this activation: "flag", "powerinfer magic", "architecture", "model name", "default". */
  ffnActivationFrom: string;
  isPowerInfer: boolean;
  ggufVersion: number;
  nVocab: number;
  nEmbd: number;
  nFf: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nCtxTrain: number;
  ropeFreqBase: number;
  rmsEps: number;
  tiedOutput: boolean;
  nParams: number;
  fileBytes: number;
  /** Weight bytes one single-token dense decode reads (every matrix but the embedding table). */
  bytesPerToken: number;
  /** Of which outside the FFN matrices (attention, output). */
  nonFfnBytesPerToken: number;
  /** Bytes one active FFN neuron costs in a sparse step (its gate, up and down rows). */
  neuronBytes: number;
  /** All layers' predictor weights (read every sparse token). */
  predictorBytes: number;
  /** PowerInfer predictors (blk.N.fc1/fc2) present. */
  hasPredictors: boolean;
  /** ReLU-type FFN: neurons can be skipped. */
  sparseCapable: boolean;
  /** The FFN was repacked at load into one block per neuron. */
  sparsePacked: boolean;
  /** powerinfer.sparse_threshold (0 when absent). */
  sparseThreshold: number;
  /** Load-time repacking, ms. */
  repackMs: number;
  /** Plain-row bytes of the matrices repacked 8 rows at a time for the dense products (0 where the CPU has no such kernel). */
  x8Bytes: number;
  /** mincore over the file's bytes when info() was read: the --no-mmap private copy's pages held; for a mapping, its pages in the page cache. */
  fileResidentBytes: number;
}

/** How the FFN is computed: see README "Sparse inference". */
export type FfnMode = 'auto' | 'dense' | 'exact' | 'predictor';

export interface LoadOptions {
  /** "auto" (default) decides from the file; see README "FFN activation". */
  ffnActivation?: 'auto' | FfnActivation;
  /** Read the file into memory instead of mapping it. */
  noMmap?: boolean;
  /** Keep the FFN in the file's layout (dense-only use). */
  noRepack?: boolean;
  /** Sparse FFN of Q4_0 PowerInfer files: down projection summed in 8-bit integers
   * (rs_model_params.down_int8; README "Sparse inference"). */
  downInt8?: boolean;
}

export type Isa = 'scalar' | 'avx2' | 'avx512' | 'best';

export interface ContextOptions {
  /** Sequences held at once (server slots). */
  nSeq: number;
  /** Positions per sequence. */
  nCtx: number;
  /** Compute threads; 0 or absent: all cores. */
  threads?: number;
  /** Most tokens one decode may carry (default 512). */
  nBatch?: number;
  /** Cap on the CPU instruction set (default: the best the CPU has). */
  isa?: Isa;
  /** "cpu" (default) or "ref": the plain reference kernels, for tests. */
  backend?: 'cpu' | 'ref';
  /** FFN mode (default auto: predictor where the file has predictors, exact for other ReLU models). */
  ffnMode?: FfnMode;
  /** Predictor threshold (default: the file's powerinfer.sparse_threshold). */
  sparseThreshold?: number;
  /** A sequence bringing more rows than this to a step uses the dense FFN (0, the default: every size for PowerInfer files, 8 otherwise; at most 65536). */
  sparseMaxBatch?: number;
  /** Where the model runs: cpu (default), cuda, emu (the emulated device) or auto (cuda when a GPU is found). README "Hybrid CPU/GPU". */
  device?: Device;
  /** Device memory the context may use, bytes; absent: a placement file's budget, else vramBudgetFraction of the device's free memory. */
  vramBudget?: number;
  /** Share of the device's free memory when no budget is given (default 0.9). */
  vramBudgetFraction?: number;
  /** Hot neurons from a placement file (.rspl or PowerInfer .gpuidx). */
  placement?: string;
  /** Hot neurons per layer (ascending ids), e.g. solved from activation statistics; overrides placement. */
  hotNeurons?: Int32Array[];
  /** How hotNeurons were chosen, for the report. */
  hotSource?: string;
  /** Emulated device: its memory in bytes (default 8 GiB) and the delay before each operation. */
  emuMemory?: number;
  emuLatencyUs?: number;
}

export type Device = 'cpu' | 'cuda' | 'emu' | 'auto';

/** Where the hybrid runtime put what; bytes allocated on the device by category (each piece rounded to 256 bytes). */
export interface DeviceInfo {
  device: 'cpu' | 'cuda' | 'emu';
  name: string;
  memoryTotal: number;
  memoryFree: number;
  budget: number;
  budgetFrom: string;
  bytes: { attention: number; predictors: number; norms: number; output: number; kvCache: number; index: number; workspace: number; ffn: number };
  /** Sum of bytes. */
  used: number;
  /** Bytes the whole FFN would take on the device. */
  ffnAll: number;
  /** Hot neurons per layer. */
  hotNeurons: number[];
  /** Their ids, ascending, per layer. */
  hotNeuronIds: Int32Array[];
  placementSource: string;
}

/** The hybrid runtime's work per side: cumulative and for the last decode ((row, neuron) pairs of the FFN, milliseconds). */
export interface HybridStats {
  steps: number;
  neuronsDevice: number;
  neuronsHost: number;
  deviceBusyMs: number;
  /** Device time spent waiting for the host's cold neurons: host FFN time not hidden behind device work. */
  deviceWaitMs: number;
  hostFfnMs: number;
  wallMs: number;
  /** Steps the device ran from a recording (a CUDA graph of a step shape seen before), and the shapes recorded. */
  replayedSteps: number;
  recordings: number;
  last: { neuronsDevice: number; neuronsHost: number; deviceBusyMs: number; deviceWaitMs: number; hostFfnMs: number; wallMs: number };
}

/** FFN neurons computed, as ratios of rows x n_ff, per layer. */
export interface SparsityStats {
  ffnMode: 'dense' | 'exact' | 'predictor';
  threshold: number;
  sparseMaxBatch: number;
  lastRows: number;
  totalRows: number;
  sparseSteps: number;
  denseSteps: number;
  /**
   * Wall time of the CPU steps' parts since the context was made (ms): attention blocks,
   * choosing the FFN's neurons (predictor, or exact mode's gate product), the rest of the
   * FFN blocks, the output head. Hybrid (device) steps report theirs in `device()`.
   */
  phaseMs: { attention: number; select: number; ffn: number; output: number };
  lastActiveRatio: number[];
  avgActiveRatio: number[];
}

/** One decode step: entry j is token tokens[j] of sequence seqIds[j] at positions[j]. */
export interface DecodeBatch {
  tokens: Int32Array;
  positions: Int32Array;
  seqIds: Int32Array;
  /** 1 where the logits of that entry are wanted. */
  wantLogits: Uint8Array;
}

export interface ContextStats {
  totalMs: number;
  decodeCalls: number;
  tokens: number;
  threads: number;
  isa: string;
  backend: string;
}

/** One tensor of the model file. */
export interface TensorInfo {
  name: string;
  /** ggml type id */
  type: number;
  typeName: string;
  /** GGUF ne order: shape[0] is the fastest dimension. */
  shape: number[];
  bytes: number;
  /** Offset from the start of the data section. */
  offset: number;
}

/** FFN firing counts since the last reset: layers[l][i] = rows on which neuron i was non-zero. */
export interface ActivationCounts {
  rows: number;
  layers: Uint32Array[];
  /** Per layer, the predictor's choice against these true activations ((row, neuron) pairs); zeros without predictors. */
  predictor: { truePositive: number; falsePositive: number; falseNegative: number }[];
}
