// The `kernels` object of the native addon (addon/src/napi_kernels.cc): the CPU
// kernels exposed for tests, benchmarks and the model writer. Every function is
// synchronous and throws an Error naming the problem on bad arguments.

/** Instruction-set selector; 'ref' (where accepted) runs the plain reference twin. */
export type KernelIsa = 'scalar' | 'avx2' | 'avx512' | 'best';
export type KernelIsaOrRef = KernelIsa | 'ref';
export type KernelFfnAct = 'swiglu' | 'relu_glu' | 'drelu';

/** GGUF / ggml type ids of the weight types relu-serve supports, and its activation formats. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 8,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  BF16: 30,
  /** Not a GGUF type: Q8_0 blocks plus a per-4-block part; the activation format of Q4_0 and Q8_0. */
  Q8_0X: 100,
} as const;

export interface KernelTypeTraits {
  name: string;
  /** Elements per block (1 for plain floats). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
  /** Type id of the activation format its matmul kernels take. */
  vecDotType: number;
  /** Whether it can be used as a matmul weight. */
  supported: boolean;
}

export interface NativeKernels {
  /** Traits of a type id, or null for ids unknown to relu-serve. */
  typeTraits(type: number): KernelTypeTraits | null;
  /** Bytes of one row of n elements; throws if n is not a multiple of the block size. */
  rowSize(type: number, n: number): number;
  /** The best ISA this CPU runs, after the RELU_SERVE_ISA cap. */
  bestIsa(): 'scalar' | 'avx2' | 'avx512';
  /** Every ISA up to bestIsa(), lowest first. */
  availableIsas(): Array<'scalar' | 'avx2' | 'avx512'>;

  /** Quantise floats (a whole number of blocks) into a supported weight type. */
  quantize(type: number, data: Float32Array): Buffer;
  /** Decode n elements of a supported weight type. */
  dequantize(type: number, data: Uint8Array, n: number): Float32Array;
  /** Convert one activation row to the weight type's vec-dot format (bytes). */
  fromFloat(type: number, isa: KernelIsaOrRef, x: Float32Array): Buffer;

  /** dot(w, x) of one weight row; x is converted with the same ISA's from_float. */
  vecDot(type: number, isa: KernelIsaOrRef, w: Uint8Array, x: Float32Array, n: number): number;
  /**
   * out[c * rows + r] = dot(row r of w, row c of x), x holding nc rows of n floats.
   * useGemm: one rs_gemm_fn call over the whole output; otherwise one vec_dot per element.
   */
  matmul(
    type: number,
    isa: KernelIsaOrRef,
    w: Uint8Array,
    rows: number,
    n: number,
    x: Float32Array,
    nc: number,
    useGemm: boolean,
  ): Float32Array;

  rmsnorm(isa: KernelIsaOrRef, x: Float32Array, w: Float32Array, eps: number): Float32Array;
  /** Returns a rotated copy of x ([nHead][headDim], interleaved pairs). */
  rope(isa: KernelIsaOrRef, x: Float32Array, nHead: number, headDim: number, pos: number, freqBase: number): Float32Array;
  softmax(isa: KernelIsaOrRef, x: Float32Array): Float32Array;
  ffnAct(isa: KernelIsaOrRef, act: KernelFfnAct, gate: Float32Array, up: Float32Array): Float32Array;
  /** softmax(q . K^T * scale) V over tLen cached rows; k and v are f16 bits, rowStride elements apart. */
  attentionHead(
    isa: KernelIsaOrRef,
    q: Float32Array,
    k: Uint16Array,
    v: Uint16Array,
    tLen: number,
    headDim: number,
    rowStride: number,
    scale: number,
  ): Float32Array;
  dotF32(isa: KernelIsa, a: Float32Array, b: Float32Array): number;
  dotF32F16(isa: KernelIsa, a: Float32Array, b: Uint16Array): number;
  /** Returns y + a * x (x f16 bits). */
  axpyF16(isa: KernelIsa, y: Float32Array, a: number, x: Uint16Array): Float32Array;
  /** f32 -> f16 bits (round to nearest even). */
  f32ToF16(isa: KernelIsaOrRef, x: Float32Array): Uint16Array;

  /**
   * Reads every byte once with the ISA's widest loads (one thread), in a read pattern
   * (0 plain, 1 prefetch, 2 non-temporal, 3 two streams: rs_read_pattern).
   */
  streamRead(buffer: Uint8Array, isa?: KernelIsa, pattern?: number): { checksum: bigint; gbPerS: number };
  /**
   * One thread, vec_dot over every row of a rows x n matrix (at least 48 MiB, past the
   * 32 MiB L3), best of `iters` passes: the decode-time streaming rate.
   */
  benchVecDot(
    type: number,
    isa: KernelIsa,
    rows: number,
    n: number,
    iters: number,
  ): { gbPerS: number; gflops: number; bytes: number; seconds: number };
  /** One thread, gemm of rows x n weights against nc activation rows, best of `iters`. */
  benchGemm(type: number, isa: KernelIsa, rows: number, n: number, nc: number, iters: number): { gflops: number; seconds: number };
  /**
   * One thread, a rows x n matrix (at least 48 MiB): vec_dot over every row against one
   * activation row, and gemm in the engine's 32-row chunks against each of `ncs` rows;
   * the passes interleave, each figure is the best of `iters`. The decode-batch cost.
   */
  benchBatch(
    type: number,
    isa: KernelIsa,
    rows: number,
    n: number,
    ncs: number[],
    iters: number,
  ): { bytes: number; vecDotSeconds: number; gemmSeconds: number[] };
}
