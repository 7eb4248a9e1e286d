// A small GGUF header reader: magic, version, metadata and tensor infos, no tensor data.
// It exists to check the writer (and to read metadata in tools without the native
// addon); the serving path reads files with the C++ loader. Values come back in the
// engine's GgufValue shape (numbers; bigint for 64-bit integers beyond 2^53).

import { open } from 'node:fs/promises';
import type { GgufValue } from '../engine/types.js';
import { ggmlTypeById, valueTypeName, type GgufValueTypeName } from './constants.js';

export interface ReadMetaValue {
  type: GgufValueTypeName;
  /** Arrays only. */
  elemType?: GgufValueTypeName;
  value: GgufValue;
}

export interface ReadTensorInfo {
  name: string;
  dims: number[];
  typeId: number;
  typeName: string | undefined;
  offset: bigint;
}

export interface GgufHeader {
  magic: string;
  version: number;
  tensorCount: bigint;
  kvCount: bigint;
  metadata: Map<string, ReadMetaValue>;
  tensors: ReadTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
}

class NeedMore extends Error {}

class Cursor {
  pos = 0;
  constructor(private readonly b: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.b.length) throw new NeedMore();
  }
  u8(): number { this.need(1); return this.b.readUInt8(this.pos++); }
  i8(): number { this.need(1); return this.b.readInt8(this.pos++); }
  u16(): number { this.need(2); const v = this.b.readUInt16LE(this.pos); this.pos += 2; return v; }
  i16(): number { this.need(2); const v = this.b.readInt16LE(this.pos); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.b.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(): number { this.need(4); const v = this.b.readInt32LE(this.pos); this.pos += 4; return v; }
  f32(): number { this.need(4); const v = this.b.readFloatLE(this.pos); this.pos += 4; return v; }
  f64(): number { this.need(8); const v = this.b.readDoubleLE(this.pos); this.pos += 8; return v; }
  u64(): bigint { this.need(8); const v = this.b.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  i64(): bigint { this.need(8); const v = this.b.readBigInt64LE(this.pos); this.pos += 8; return v; }
  count(what: string): number {
    const n = this.u64();
    // Every element takes at least one byte, so a count beyond the buffer is a lie.
    if (n > BigInt(this.b.length - this.pos)) {
      if (n > 1n << 40n) throw new Error(`${what}: absurd count ${n}`);
      throw new NeedMore();
    }
    return Number(n);
  }
  str(what: string): string {
    const n = this.count(what);
    this.need(n);
    const s = this.b.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readScalar(c: Cursor, type: GgufValueTypeName, what: string): GgufValue {
  switch (type) {
    case 'u8': return c.u8();
    case 'i8': return c.i8();
    case 'u16': return c.u16();
    case 'i16': return c.i16();
    case 'u32': return c.u32();
    case 'i32': return c.i32();
    case 'f32': return c.f32();
    case 'f64': return c.f64();
    case 'u64': return narrow(c.u64());
    case 'i64': return narrow(c.i64());
    case 'bool': return c.u8() !== 0;
    case 'string': return c.str(what);
    case 'array': throw new Error(`${what}: nested array handled elsewhere`);
  }
}

function readArray(c: Cursor, what: string): { elemType: GgufValueTypeName; value: GgufValue[] } {
  const elemId = c.u32();
  const elemType = valueTypeName(elemId);
  if (!elemType) throw new Error(`${what}: unknown array element type ${elemId}`);
  const n = c.count(what);
  const out: GgufValue[] = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = elemType === 'array' ? readArray(c, `${what}[${i}]`).value : readScalar(c, elemType, what);
  }
  return { elemType, value: out };
}

function parse(b: Buffer): GgufHeader {
  const c = new Cursor(b);
  if (b.length < 4) throw new NeedMore();
  const magic = b.toString('latin1', 0, 4);
  c.pos = 4;
  if (magic !== 'GGUF' && magic !== 'PWRI') throw new Error(`bad magic ${JSON.stringify(magic)}`);
  const version = c.u32();
  if (version !== 2 && version !== 3) throw new Error(`unsupported GGUF version ${version}`);
  const tensorCount = c.u64();
  const kvCount = c.u64();
  if (kvCount > 1n << 32n || tensorCount > 1n << 32n) {
    throw new Error(`absurd counts: ${tensorCount} tensors, ${kvCount} key/values`);
  }
  const metadata = new Map<string, ReadMetaValue>();
  for (let i = 0n; i < kvCount; i++) {
    const key = c.str('key');
    const typeId = c.u32();
    const type = valueTypeName(typeId);
    if (!type) throw new Error(`key ${key}: unknown value type ${typeId}`);
    if (type === 'array') {
      const { elemType, value } = readArray(c, key);
      metadata.set(key, { type, elemType, value });
    } else {
      metadata.set(key, { type, value: readScalar(c, type, key) });
    }
  }
  const tensors: ReadTensorInfo[] = [];
  for (let i = 0n; i < tensorCount; i++) {
    const name = c.str('tensor name');
    const nDims = c.u32();
    if (nDims > 4) throw new Error(`tensor ${name}: ${nDims} dimensions (at most 4)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(Number(c.u64()));
    const typeId = c.u32();
    const offset = c.u64();
    tensors.push({ name, dims, typeId, typeName: ggmlTypeById(typeId)?.name, offset });
  }
  const alignValue = metadata.get('general.alignment')?.value;
  const alignment = typeof alignValue === 'number' ? alignValue : 32;
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  return { magic, version, tensorCount, kvCount, metadata, tensors, alignment, dataOffset };
}

/** Parse a header from bytes that hold at least the whole header. */
export function parseGgufHeader(bytes: Buffer): GgufHeader {
  try {
    return parse(bytes);
  } catch (e) {
    if (e instanceof NeedMore) throw new Error('GGUF header is truncated');
    throw e;
  }
}

/** Read a file's header, reading more of the file until the header fits. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let want = Math.min(size, 1 << 20);
    for (;;) {
      const buf = Buffer.alloc(want);
      await fh.read(buf, 0, want, 0);
      try {
        return parse(buf);
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        if (want >= size) throw new Error(`${path}: GGUF header is truncated`);
        want = Math.min(size, want * 4);
      }
    }
  } finally {
    await fh.close();
  }
}

/** The metadata as the engine exposes it: key -> plain value. */
export function metadataValues(h: GgufHeader): Map<string, GgufValue> {
  return new Map([...h.metadata].map(([k, v]) => [k, v.value]));
}
