// Low-level little-endian GGUF encoding: scalars, strings, typed metadata values, the
// header, key/values and tensor infos. The writer builds files from these; tests use
// them directly to build deliberately malformed files byte by byte.

import { GGUF_VALUE_TYPE, type GgufScalarTypeName, type GgufValueTypeName } from './constants.js';

/**
 * A metadata value with its GGUF type stated, since a JS number does not say whether
 * it is a u32 or an f32. Arrays name their element type; for nested arrays the elements
 * are themselves array values (elemType 'array').
 */
export type TypedValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: bigint | number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | TypedArrayValue;

export type TypedArrayValue =
  | {
      type: 'array';
      elemType: Exclude<GgufScalarTypeName, 'string' | 'bool' | 'u64' | 'i64'>;
      value: ArrayLike<number>;
    }
  | { type: 'array'; elemType: 'u64' | 'i64'; value: ArrayLike<bigint | number> }
  | { type: 'array'; elemType: 'bool'; value: ArrayLike<boolean> }
  | { type: 'array'; elemType: 'string'; value: ArrayLike<string> }
  | { type: 'array'; elemType: 'array'; value: ArrayLike<TypedArrayValue> };

const utf8 = new TextEncoder();

/** Growable little-endian byte buffer. */
export class ByteBuilder {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
    return this;
  }
  i8(v: number): this {
    this.reserve(1);
    this.buf.writeInt8(v, this.len);
    this.len += 1;
    return this;
  }
  u16(v: number): this {
    this.reserve(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
    return this;
  }
  i16(v: number): this {
    this.reserve(2);
    this.buf.writeInt16LE(v, this.len);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
    return this;
  }
  i32(v: number): this {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.len);
    this.len += 4;
    return this;
  }
  f32(v: number): this {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
    return this;
  }
  f64(v: number): this {
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
    return this;
  }
  u64(v: bigint | number): this {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.len);
    this.len += 8;
    return this;
  }
  i64(v: bigint | number): this {
    this.reserve(8);
    this.buf.writeBigInt64LE(BigInt(v), this.len);
    this.len += 8;
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** GGUF string: u64 byte length, then UTF-8 bytes (no terminator). */
  string(s: string): this {
    const b = utf8.encode(s);
    return this.u64(b.length).bytes(b);
  }
  /** Zero bytes up to the next multiple of `alignment` (of the total length so far). */
  padTo(alignment: number): this {
    const rem = this.len % alignment;
    if (rem !== 0) this.bytes(new Uint8Array(alignment - rem));
    return this;
  }

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

function checkInt(v: number, lo: number, hi: number, what: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new RangeError(`${what}: ${v} is not an integer in [${lo}, ${hi}]`);
  }
}

function checkBig(v: bigint | number, lo: bigint, hi: bigint, what: string): void {
  if (typeof v === 'number' && !Number.isInteger(v)) {
    throw new RangeError(`${what}: ${v} is not an integer`);
  }
  const b = BigInt(v);
  if (b < lo || b > hi) throw new RangeError(`${what}: ${b} is out of range [${lo}, ${hi}]`);
}

/** Encode the payload of a scalar of `type` (no type tag), validating its range. */
export function encodeScalar(
  out: ByteBuilder,
  type: GgufScalarTypeName,
  v: unknown,
  what: string,
): void {
  switch (type) {
    case 'u8':
      checkInt(v as number, 0, 0xff, what);
      out.u8(v as number);
      return;
    case 'i8':
      checkInt(v as number, -0x80, 0x7f, what);
      out.i8(v as number);
      return;
    case 'u16':
      checkInt(v as number, 0, 0xffff, what);
      out.u16(v as number);
      return;
    case 'i16':
      checkInt(v as number, -0x8000, 0x7fff, what);
      out.i16(v as number);
      return;
    case 'u32':
      checkInt(v as number, 0, 0xffffffff, what);
      out.u32(v as number);
      return;
    case 'i32':
      checkInt(v as number, -0x80000000, 0x7fffffff, what);
      out.i32(v as number);
      return;
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') throw new TypeError(`${what}: expected a number, got ${typeof v}`);
      if (type === 'f32') out.f32(v);
      else out.f64(v);
      return;
    case 'u64':
      checkBig(v as bigint, 0n, 0xffffffffffffffffn, what);
      out.u64(v as bigint);
      return;
    case 'i64':
      checkBig(v as bigint, -(1n << 63n), (1n << 63n) - 1n, what);
      out.i64(v as bigint);
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw new TypeError(`${what}: expected a boolean`);
      out.bool(v);
      return;
    case 'string':
      if (typeof v !== 'string') throw new TypeError(`${what}: expected a string`);
      out.string(v);
      return;
  }
}

/** Array payload: element type u32, count u64, then the elements (no outer type tag). */
function encodeArrayPayload(out: ByteBuilder, v: TypedArrayValue, what: string): void {
  const elemId = GGUF_VALUE_TYPE[v.elemType as GgufValueTypeName];
  if (elemId === undefined) throw new TypeError(`${what}: unknown array element type ${v.elemType}`);
  out.u32(elemId).u64(v.value.length);
  if (v.elemType === 'array') {
    const items = v.value as ArrayLike<TypedArrayValue>;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item?.type !== 'array') throw new TypeError(`${what}[${i}]: expected an array value`);
      encodeArrayPayload(out, item, `${what}[${i}]`);
    }
    return;
  }
  // Fast path for big float tables (tokenizer scores): no per-element range check needed.
  if (v.elemType === 'f32') {
    const a = v.value as ArrayLike<number>;
    for (let i = 0; i < a.length; i++) out.f32(a[i]);
    return;
  }
  for (let i = 0; i < v.value.length; i++) {
    encodeScalar(out, v.elemType, v.value[i], `${what}[${i}]`);
  }
}

/** A whole metadata value: type tag u32 then payload. */
export function encodeValue(out: ByteBuilder, v: TypedValue, what = 'value'): void {
  const id = GGUF_VALUE_TYPE[v.type];
  if (id === undefined) throw new TypeError(`${what}: unknown value type ${String(v.type)}`);
  out.u32(id);
  if (v.type === 'array') encodeArrayPayload(out, v, what);
  else encodeScalar(out, v.type, v.value, what);
}

/** One key/value pair as stored in the header. */
export function encodeKeyValue(out: ByteBuilder, key: string, v: TypedValue): void {
  out.string(key);
  encodeValue(out, v, key);
}

/** Magic as 4 bytes: a 4-character ASCII string ("GGUF", "PWRI") or raw bytes. */
export function magicBytes(magic: string | Uint8Array): Uint8Array {
  const b = typeof magic === 'string' ? utf8.encode(magic) : magic;
  if (b.length !== 4) throw new RangeError(`GGUF magic must be 4 bytes, got ${b.length}`);
  return b;
}

export interface RawTensorInfo {
  name: string;
  dims: readonly (number | bigint)[];
  typeId: number;
  offset: bigint | number;
  /** Override the stored dimension count (to write a lie). */
  nDims?: number;
}

/** One tensor info: name, n_dims u32, dims u64 each, type u32, offset u64. */
export function encodeTensorInfo(out: ByteBuilder, t: RawTensorInfo): void {
  out.string(t.name);
  out.u32(t.nDims ?? t.dims.length);
  for (const d of t.dims) out.u64(d);
  out.u32(t.typeId);
  out.u64(t.offset);
}
