// GGUF writer: header, metadata, tensor infos, aligned tensor data, streamed to disk.
//
// Tensor data is pulled from each tensor's `data` source only when that tensor is
// written, so a multi-gigabyte model never sits in memory: a source may be a callback
// that computes the tensor, or yields it in chunks (rows), when its turn comes.
//
// Layout (GGUF v2/v3, little-endian): magic[4] | version u32 | n_tensors u64 | n_kv u64 |
// key/values | tensor infos | zero padding to the alignment | data, each tensor at an
// offset (relative to the data start) that is a multiple of the alignment.

import { open, type FileHandle } from 'node:fs/promises';
import {
  GGUF_DEFAULT_ALIGNMENT,
  resolveGgmlType,
  tensorByteSize,
  type GgmlTypeInfo,
} from './constants.js';
import {
  ByteBuilder,
  encodeKeyValue,
  encodeTensorInfo,
  magicBytes,
  type TypedValue,
} from './encoder.js';

export type TensorChunks = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
export type TensorData =
  | Uint8Array
  | (() => Uint8Array | Promise<Uint8Array> | TensorChunks);

export interface TensorSpec {
  name: string;
  /** Dimensions in ggml `ne` order: fastest-varying first. */
  dims: readonly number[];
  /** ggml type by name ("f32", "q4_0", ...) or id. */
  type: string | number;
  data: TensorData;
  /** Test hook: store this offset instead of the computed one. */
  offsetOverride?: bigint | number;
  /** Test hook: store this many dims in the info (with the dims given). */
  nDimsOverride?: number;
}

export interface GgufSpec {
  /** "GGUF" (dense, default) or "PWRI" (PowerInfer sparse model), or any 4 bytes for tests. */
  magic?: string | Uint8Array;
  /** 3 (default) or 2; other values only for tests. */
  version?: number;
  /** Ordered key/values. */
  metadata: Iterable<[string, TypedValue]>;
  tensors: readonly TensorSpec[];
  /**
   * Data alignment. If metadata has `general.alignment` that value is used; otherwise
   * this (default 32), and a non-default value is added to the metadata as
   * `general.alignment` so readers agree.
   */
  alignment?: number;
  /** Test hooks to write malformed files. */
  overrides?: {
    tensorCount?: bigint | number;
    kvCount?: bigint | number;
    /** Skip checking that each tensor's data has its expected byte size. */
    allowSizeMismatch?: boolean;
    /** Stop the file after this many bytes (a truncated download). */
    truncateAt?: number;
  };
}

export interface WrittenTensor {
  name: string;
  dims: number[];
  type: GgmlTypeInfo;
  /** Offset relative to the start of the data section. */
  offset: bigint;
  nBytes: bigint;
}

export interface GgufLayout {
  header: Buffer;
  alignment: number;
  tensors: WrittenTensor[];
  /** Absolute file offset of the data section. */
  dataOffset: number;
}

function alignUp(n: bigint, a: bigint): bigint {
  return ((n + a - 1n) / a) * a;
}

function checkAlignment(a: number): void {
  if (!Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) {
    throw new RangeError(`general.alignment must be a positive power of two, got ${a}`);
  }
}

/** Encode everything before the data section and compute each tensor's offset. */
export function buildGgufLayout(spec: GgufSpec): GgufLayout {
  const kvs = [...spec.metadata];
  const keys = new Set<string>();
  for (const [k] of kvs) {
    if (keys.has(k)) throw new Error(`duplicate metadata key ${JSON.stringify(k)}`);
    keys.add(k);
  }
  let alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const alignKv = kvs.find(([k]) => k === 'general.alignment');
  if (alignKv) {
    const v = alignKv[1];
    if (v.type !== 'u32') throw new TypeError('general.alignment must be a u32');
    alignment = v.value;
  } else if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    kvs.push(['general.alignment', { type: 'u32', value: alignment }]);
  }
  checkAlignment(alignment);

  const names = new Set<string>();
  const tensors: WrittenTensor[] = [];
  let offset = 0n;
  for (const t of spec.tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor name ${JSON.stringify(t.name)}`);
    names.add(t.name);
    const type = resolveGgmlType(t.type);
    for (const d of t.dims) {
      if (!Number.isInteger(d) || d < 0) throw new RangeError(`tensor ${t.name}: bad dimension ${d}`);
    }
    const nBytes = tensorByteSize(t.dims, type);
    tensors.push({ name: t.name, dims: [...t.dims], type, offset, nBytes });
    offset = alignUp(offset + nBytes, BigInt(alignment));
  }

  const out = new ByteBuilder(1 << 16);
  out.bytes(magicBytes(spec.magic ?? 'GGUF'));
  out.u32(spec.version ?? 3);
  out.u64(spec.overrides?.tensorCount ?? tensors.length);
  out.u64(spec.overrides?.kvCount ?? kvs.length);
  for (const [k, v] of kvs) encodeKeyValue(out, k, v);
  spec.tensors.forEach((t, i) => {
    encodeTensorInfo(out, {
      name: t.name,
      dims: t.dims,
      typeId: tensors[i].type.id,
      offset: t.offsetOverride ?? tensors[i].offset,
      nDims: t.nDimsOverride,
    });
  });
  out.padTo(alignment);
  const header = out.toBuffer();
  return { header, alignment, tensors, dataOffset: header.length };
}

/** Buffered sequential file output (few large writes instead of many small ones). */
class FileSink {
  private pos = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly limit: number,
  ) {}

  get position(): number {
    return this.pos + this.pendingBytes;
  }

  async write(b: Uint8Array): Promise<void> {
    const room = this.limit - this.position;
    if (room <= 0) return;
    if (b.length > room) b = b.subarray(0, room);
    if (b.length >= 1 << 20) {
      // Big chunk: write it straight through; it is on disk before we return, so the
      // caller may reuse its buffer.
      await this.flush();
      await this.writeAll(b);
      return;
    }
    // Small chunk: copy, since callers may reuse their buffer for the next chunk.
    this.pending.push(Uint8Array.prototype.slice.call(b));
    this.pendingBytes += b.length;
    if (this.pendingBytes >= 8 << 20) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    await this.writeAll(buf);
  }

  private async writeAll(buf: Uint8Array): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, this.pos + done);
      done += bytesWritten;
    }
    this.pos += buf.length;
  }
}

function isIterable(x: unknown): x is Iterable<Uint8Array> {
  return x != null && typeof (x as Iterable<Uint8Array>)[Symbol.iterator] === 'function';
}
function isAsyncIterable(x: unknown): x is AsyncIterable<Uint8Array> {
  return x != null && typeof (x as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function';
}

async function* chunksOf(data: TensorData): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    yield data;
    return;
  }
  const produced = await data();
  if (produced instanceof Uint8Array) yield produced;
  else if (isAsyncIterable(produced)) yield* produced;
  else if (isIterable(produced)) yield* produced;
  else throw new TypeError('tensor data callback must return bytes or an iterable of bytes');
}

/**
 * Write a GGUF file. Returns the layout (tensor offsets, data start). On any error the
 * partial file is left for the caller to remove; the error names the tensor at fault.
 */
export async function writeGguf(path: string, spec: GgufSpec): Promise<GgufLayout> {
  const layout = buildGgufLayout(spec);
  const fh = await open(path, 'w');
  try {
    const sink = new FileSink(fh, spec.overrides?.truncateAt ?? Number.MAX_SAFE_INTEGER);
    await sink.write(layout.header);
    for (let i = 0; i < spec.tensors.length; i++) {
      const t = spec.tensors[i];
      const info = layout.tensors[i];
      let n = 0n;
      for await (const chunk of chunksOf(t.data)) {
        if (!(chunk instanceof Uint8Array)) {
          throw new TypeError(`tensor ${t.name}: data chunk is not a Uint8Array`);
        }
        n += BigInt(chunk.length);
        await sink.write(chunk);
      }
      if (n !== info.nBytes && !spec.overrides?.allowSizeMismatch) {
        throw new Error(
          `tensor ${t.name}: got ${n} bytes of data, expected ${info.nBytes} ` +
            `(${info.type.name} ${JSON.stringify(info.dims)})`,
        );
      }
      // Pad to the next tensor's offset (also after the last one, like ggml does).
      const end = BigInt(sink.position - layout.dataOffset);
      const next = alignUp(end, BigInt(layout.alignment));
      if (next > end) await sink.write(new Uint8Array(Number(next - end)));
    }
    await sink.flush();
  } finally {
    await fh.close();
  }
  return layout;
}
