// IEEE half (f16) and bfloat16 encodings in TypeScript, for writing F16/BF16 tensors
// without the native addon. Both round to nearest, ties to even, like ggml's converters
// (F16C / ggml_fp32_to_bf16), so files match what llama.cpp's tools would write.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 bit pattern -> f16 bit pattern. */
function halfFromBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): value = full * 2^(exp-126-24+24) -> shift right by 14-e.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) !== 0)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0)) r++;
  return sign | r;
}

export function fp32ToFp16(v: number): number {
  f32[0] = v;
  return halfFromBits(u32[0]);
}

export function fp16ToFp32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function bf16FromBits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fp32ToBf16(v: number): number {
  f32[0] = v;
  return bf16FromBits(u32[0]);
}

export function bf16ToFp32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** Encode floats as little-endian f16 bytes (into `out` if given, else a new buffer). */
export function encodeF16(src: Float32Array, out?: Uint8Array): Uint8Array {
  const bytes = out ?? new Uint8Array(src.length * 2);
  if (bytes.length < src.length * 2) throw new RangeError('encodeF16: output too small');
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const dst = new Uint16Array(bytes.buffer, bytes.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = halfFromBits(bits[i]);
  return bytes.subarray(0, src.length * 2);
}

/** Encode floats as little-endian bf16 bytes. */
export function encodeBf16(src: Float32Array, out?: Uint8Array): Uint8Array {
  const bytes = out ?? new Uint8Array(src.length * 2);
  if (bytes.length < src.length * 2) throw new RangeError('encodeBf16: output too small');
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const dst = new Uint16Array(bytes.buffer, bytes.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = bf16FromBits(bits[i]);
  return bytes.subarray(0, src.length * 2);
}
