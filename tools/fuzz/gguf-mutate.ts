// Seeded mutations of a well-formed GGUF file: truncations, byte flips, huge or off-by-one
// counts, lengths, offsets and dims, bad value and tensor types, duplicate names. The
// same seed gives the same file, so a failing case is reproduced from its number.

import type { Layout } from './gguf-layout.js';

/** xorshift32: small, seedable, the same on every machine. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let s = this.s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return this.s;
  }
  below(n: number): number {
    return this.next() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.below(a.length)];
  }
}

const U64_EDGES = [0n, 1n, 0x7fn, 0xffn, 0xffffn, 0xffffffffn, 0x100000000n, 0x100000002n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 1n << 40n, 1n << 50n];
const U32_EDGES = [0, 1, 2, 13, 30, 31, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 16];

export interface Mutation {
  bytes: Buffer;
  /** What was done, for the report of a failing case. */
  what: string;
}

function writeField(b: Buffer, at: number, size: 4 | 8, v: bigint): void {
  if (size === 8) b.writeBigUInt64LE(v & 0xffffffffffffffffn, at);
  else b.writeUInt32LE(Number(v & 0xffffffffn), at);
}

function one(rng: Rng, b: Buffer, layout: Layout): { bytes: Buffer; what: string } {
  const r = rng.below(100);
  if (r < 12) {
    // Truncation, mostly inside the header where the parser works hardest.
    const end = rng.below(3) === 0 ? rng.below(b.length) : rng.below(layout.headerEnd + 64);
    return { bytes: b.subarray(0, end), what: `truncate at ${end}` };
  }
  const out = Buffer.from(b);
  if (r < 30) {
    const n = 1 + rng.below(8);
    const where: number[] = [];
    for (let i = 0; i < n; i++) {
      const at = rng.below(3) === 0 ? rng.below(out.length) : rng.below(layout.headerEnd);
      out[at] ^= 1 << rng.below(8);
      where.push(at);
    }
    return { bytes: out, what: `flip bytes at ${where.join(',')}` };
  }
  if (r < 85) {
    const f = rng.pick(layout.fields);
    if (f.at + f.size > out.length) return { bytes: out, what: 'no-op (field past the end)' };
    let v: bigint;
    const old = f.size === 8 ? out.readBigUInt64LE(f.at) : BigInt(out.readUInt32LE(f.at));
    const how = rng.below(4);
    if (how === 0) v = old + BigInt(rng.below(5)) - 2n;
    else if (how === 1 && f.kind === 'offset') v = BigInt(out.length) + BigInt(rng.below(64)) - 32n;
    else if (f.size === 8) v = rng.pick(U64_EDGES);
    else v = BigInt(rng.pick(U32_EDGES));
    if (v < 0n) v = 0n;
    writeField(out, f.at, f.size, v);
    return { bytes: out, what: `${f.kind} at ${f.at}: ${old} -> ${v}` };
  }
  if (r < 93) {
    // Duplicate name: copy one name over another of the same length.
    const pool = rng.below(2) === 0 ? layout.tensorNames : layout.keyNames;
    const a = rng.pick(pool);
    const same = pool.filter((x) => x.len === a.len && x.at !== a.at);
    if (same.length === 0) return { bytes: out, what: 'no-op (no name of equal length)' };
    const c = rng.pick(same);
    if (Math.max(a.at, c.at) + a.len > out.length) return { bytes: out, what: 'no-op (name past the end)' };
    out.copy(out, c.at, a.at, a.at + a.len);
    return { bytes: out, what: `duplicate name at ${a.at} over ${c.at}` };
  }
  // Splice: repeat or drop a chunk of the header (shifts everything after it).
  const at = rng.below(layout.headerEnd);
  const len = 1 + rng.below(32);
  if (rng.below(2) === 0) return { bytes: Buffer.concat([out.subarray(0, at), out.subarray(at + len)]), what: `drop ${len} bytes at ${at}` };
  return { bytes: Buffer.concat([out.subarray(0, at + len), out.subarray(at)]), what: `repeat ${len} bytes at ${at}` };
}

/** One to three mutations stacked. */
export function mutate(seed: number, b: Buffer, layout: Layout): Mutation {
  const rng = new Rng(seed);
  const n = 1 + rng.below(3);
  let bytes = b;
  const what: string[] = [];
  for (let i = 0; i < n; i++) {
    // Later mutations aim at the original layout: still valid for in-place edits, and
    // for shifted files they land somewhere nearby, which is also worth trying.
    const m = one(rng, bytes, layout);
    bytes = m.bytes;
    what.push(m.what);
  }
  return { bytes, what: what.join('; ') };
}
