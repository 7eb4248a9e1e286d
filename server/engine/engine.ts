// Typed wrappers over the native model and context. Everything that blocks (loading,
// creating a context, decoding) returns a promise settled by a native async worker, so
// the event loop never waits on the engine.
import { basename } from 'node:path';
import { native, type ActivationCapture, type NativeContext, type NativeModel } from './binding.js';
import type {
  ActivationCounts,
  ContextOptions,
  ContextStats,
  DecodeBatch,
  DeviceInfo,
  HybridStats,
  GgufValue,
  LoadOptions,
  ModelInfo,
  SparsityStats,
  TensorInfo,
} from './types.js';

export class Model {
  readonly info: ModelInfo;
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: TensorInfo[];

  private constructor(
    private readonly native: NativeModel,
    readonly path: string,
  ) {
    this.info = native.info();
    this.metadata = new Map(native.metadata());
    this.tensors = native.tensors();
  }

  /** Loads (memory-maps) a GGUF model; rejects with an Error naming the problem for a bad file. */
  static async load(path: string, opts: LoadOptions = {}): Promise<Model> {
    const m = await native.loadModel(path, {
      ffnActivation: opts.ffnActivation ?? 'auto',
      noMmap: opts.noMmap ?? false,
      noRepack: opts.noRepack ?? false,
      downInt8: opts.downInt8 ?? false,
    });
    return new Model(m, path);
  }

  /** info.fileResidentBytes now (the --no-mmap private copy's pages held; a mapping's pages in the page cache). */
  fileResidentBytes(): number {
    return this.native.info().fileResidentBytes;
  }

  /** A name for the model: general.name, else the file name. */
  get name(): string {
    const n = this.metadata.get('general.name');
    return typeof n === 'string' && n.length > 0 ? n : basename(this.path);
  }

  async createContext(opts: ContextOptions): Promise<Context> {
    const c = await this.native.createContext({
      nSeq: opts.nSeq,
      nCtx: opts.nCtx,
      threads: opts.threads ?? 0,
      nBatch: opts.nBatch ?? 512,
      isa: opts.isa ?? 'best',
      backend: opts.backend ?? 'cpu',
      ffnMode: opts.ffnMode ?? 'auto',
      sparseThreshold: opts.sparseThreshold,
      sparseMaxBatch: opts.sparseMaxBatch ?? 0,
      device: opts.device ?? 'cpu',
      vramBudget: opts.vramBudget,
      vramBudgetFraction: opts.vramBudgetFraction,
      placement: opts.placement,
      hotNeurons: opts.hotNeurons,
      hotSource: opts.hotSource,
      emuMemory: opts.emuMemory,
      emuLatencyUs: opts.emuLatencyUs,
    });
    return new Context(c, opts.nSeq, opts.nCtx, opts.nBatch ?? 512, this.info.nVocab);
  }

  /** Frees the model; refused while contexts of it are alive. */
  dispose(): void {
    this.native.dispose();
  }
}

export class Context {
  constructor(
    private readonly native: NativeContext,
    readonly nSeq: number,
    readonly nCtx: number,
    readonly nBatch: number,
    readonly nVocab: number,
  ) {}

  /**
   * Decodes one batch. Resolves with the logits of the rows whose wantLogits is 1,
   * in batch order (rows x nVocab). One decode at a time per context.
   */
  async decode(batch: DecodeBatch): Promise<Float32Array> {
    // async: a synchronous refusal (busy, disposed, bad arguments) becomes a rejection too.
    return this.native.decode(batch.tokens, batch.positions, batch.seqIds, batch.wantLogits);
  }

  /** Forgets positions >= p0 of a sequence (0 clears it). */
  truncate(seq: number, p0: number): void {
    this.native.truncate(seq, p0);
  }

  seqLength(seq: number): number {
    return this.native.seqLength(seq);
  }

  stats(): ContextStats {
    return this.native.stats();
  }

  /** FFN neurons computed per layer: last decode and running average. */
  sparsity(): SparsityStats {
    return this.native.sparsity();
  }

  /** Where the model runs and what sits in device memory (device "cpu": zeros). */
  device(): DeviceInfo {
    return this.native.device();
  }

  /** The hybrid runtime's work per side (zeros on the CPU). */
  hybridStats(): HybridStats {
    return this.native.hybridStats();
  }

  setActivationCounting(on: boolean): void {
    this.native.setActivationCounting(on);
  }

  activationCounts(): ActivationCounts {
    return this.native.activationCounts();
  }

  resetActivationCounts(): void {
    this.native.resetActivationCounts();
  }

  /** While on (with counting on), counted rows also keep predictor training data; reset with resetActivationCounts. */
  setActivationCapture(on: boolean): void {
    this.native.setActivationCapture(on);
  }

  activationCapture(): ActivationCapture {
    return this.native.activationCapture();
  }

  dispose(): void {
    this.native.dispose();
  }
}

/** A batch for one sequence's tokens starting at position `start`, logits only for the last. */
export function sequenceBatch(tokens: ArrayLike<number>, seq: number, start: number, allLogits = false): DecodeBatch {
  const n = tokens.length;
  const b: DecodeBatch = {
    tokens: Int32Array.from(tokens),
    positions: new Int32Array(n),
    seqIds: new Int32Array(n).fill(seq),
    wantLogits: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) b.positions[i] = start + i;
  if (allLogits) b.wantLogits.fill(1);
  else if (n > 0) b.wantLogits[n - 1] = 1;
  return b;
}
