// Bounds-checked little-endian reading and a growable writer for our two small binary
// formats (stats and placement). Every read names the file and what it was reading, so
// a truncated or corrupt file gives "stats file x.rsst: truncated reading layer 3 counts"
// rather than a RangeError from Buffer.

import { crc32 } from 'node:zlib';
import { writeFileSync, renameSync, unlinkSync } from 'node:fs';

export class FormatError extends Error {}

export class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly what: string,
  ) {}

  need(n: number, reading: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new FormatError(
        `${this.what}: truncated reading ${reading} (needs ${n} bytes at offset ${this.pos}, ` +
          `file has ${this.buf.length})`,
      );
    }
  }
  u32(reading: string): number {
    this.need(4, reading);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(reading: string): number {
    this.need(8, reading);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FormatError(`${this.what}: ${reading} value ${v} is too large`);
    }
    return Number(v);
  }
  f64(reading: string): number {
    this.need(8, reading);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number, reading: string): Buffer {
    this.need(n, reading);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  string(reading: string, maxLen = 1 << 16): string {
    const n = this.u32(`${reading} length`);
    if (n > maxLen) throw new FormatError(`${this.what}: ${reading} length ${n} is implausible`);
    return this.bytes(n, reading).toString('utf8');
  }
}

export class Writer {
  private chunks: Buffer[] = [];
  private len = 0;
  push(b: Buffer): this {
    this.chunks.push(b);
    this.len += b.length;
    return this;
  }
  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0);
    return this.push(b);
  }
  u64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v));
    return this.push(b);
  }
  f64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(v);
    return this.push(b);
  }
  string(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.u32(b.length).push(b);
  }
  get length(): number {
    return this.len;
  }
  /** The bytes written so far followed by their CRC-32. */
  finishWithCrc(): Buffer {
    const body = Buffer.concat(this.chunks, this.len);
    const tail = Buffer.allocUnsafe(4);
    tail.writeUInt32LE(crc32(body) >>> 0);
    return Buffer.concat([body, tail]);
  }
}

/**
 * Checks magic, version (before the checksum, so a file from a newer relu-serve says so
 * instead of "corrupt") and the trailing CRC-32; returns a reader past the version.
 */
export function openChecked(
  buf: Buffer,
  magic: string,
  version: number,
  what: string,
  kind: string,
): Reader {
  if (buf.length < 12) throw new FormatError(`${what}: too short (${buf.length} bytes) to be a ${kind}`);
  const m = buf.subarray(0, 4).toString('latin1');
  if (m !== magic) {
    throw new FormatError(
      `${what}: not a ${kind} (magic ${JSON.stringify(m)}, expected ${JSON.stringify(magic)})`,
    );
  }
  const v = buf.readUInt32LE(4);
  if (v !== version) {
    throw new FormatError(
      `${what}: ${kind} version ${v} is not supported (this relu-serve reads version ${version})`,
    );
  }
  const body = buf.subarray(0, buf.length - 4);
  const stored = buf.readUInt32LE(buf.length - 4);
  const actual = crc32(body) >>> 0;
  if (stored !== actual) {
    throw new FormatError(
      `${what}: checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)}): ` +
        'the file is truncated or corrupt',
    );
  }
  const r = new Reader(body, what);
  r.pos = 8;
  return r;
}

/** Writes via a temporary file and rename, so an interrupted write never leaves half a file. */
export function writeFileAtomic(path: string, data: Buffer | Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // the temporary may not exist; the original error is what matters
    }
    throw e;
  }
}
