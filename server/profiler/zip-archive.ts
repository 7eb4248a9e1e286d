// A small ZIP reader and writer, enough for PyTorch's .pt files (torch.save writes a
// zip of a pickle plus raw storages, entries stored uncompressed with data aligned to 64
// bytes). Reading accepts stored and deflated entries and checks each CRC-32; ZIP64 and
// multi-disk archives are refused with a clear message.

import { crc32, inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: Buffer;
}

const EOCD_SIG = 0x06054b50;
const CEN_SIG = 0x02014b50;
const LOC_SIG = 0x04034b50;

function fail(what: string, msg: string): never {
  throw new Error(`${what}: ${msg}`);
}

export function readZip(buf: Buffer, what: string): Map<string, Buffer> {
  // The end-of-central-directory record is 22 bytes plus a comment of up to 65535.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail(what, 'not a zip archive (no end-of-central-directory record; is it an old-style, non-zip .pt?)');
  const nEntries = buf.readUInt16LE(eocd + 10);
  const cdSize = buf.readUInt32LE(eocd + 12);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  if (nEntries === 0xffff || cdOffset === 0xffffffff) fail(what, 'ZIP64 archives are not supported');
  if (cdOffset + cdSize > eocd) fail(what, 'central directory lies outside the file (truncated?)');
  const out = new Map<string, Buffer>();
  let p = cdOffset;
  for (let e = 0; e < nEntries; e++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== CEN_SIG) fail(what, `corrupt central directory entry ${e}`);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    const compSize = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    p += 46 + nameLen + extraLen + commentLen;
    if (compSize === 0xffffffff || size === 0xffffffff || local === 0xffffffff) fail(what, `entry ${name} needs ZIP64, not supported`);
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== LOC_SIG) fail(what, `entry ${name}: bad local header`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + compSize > buf.length) fail(what, `entry ${name} is truncated`);
    const raw = buf.subarray(start, start + compSize);
    let data: Buffer;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw);
      } catch (err) {
        fail(what, `entry ${name}: cannot inflate: ${(err as Error).message}`);
      }
    } else fail(what, `entry ${name} uses compression method ${method}; only stored and deflate are supported`);
    if (data.length !== size) fail(what, `entry ${name}: ${data.length} bytes, header says ${size}`);
    if ((crc32(data) >>> 0) !== crc) fail(what, `entry ${name}: CRC-32 mismatch (corrupt file)`);
    out.set(name, data);
  }
  return out;
}

/**
 * Writes a zip with stored entries whose data starts on `align`-byte boundaries (the
 * padding goes in a local extra field, as PyTorch's writer does, so the data can be
 * memory-mapped).
 */
export function writeZip(entries: ZipEntry[], align = 64): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(e.data) >>> 0;
    const fixedEnd = offset + 30 + name.length + 4; // 4: extra field id + length
    const pad = (align - (fixedEnd % align)) % align;
    const local = Buffer.alloc(30 + name.length + 4 + pad);
    local.writeUInt32LE(LOC_SIG, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x21, 12); // date 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(4 + pad, 28);
    name.copy(local, 30);
    local.writeUInt16LE(0x4246, 30 + name.length); // "FB": padding
    local.writeUInt16LE(pad, 32 + name.length);
    const cen = Buffer.alloc(46 + name.length);
    cen.writeUInt32LE(CEN_SIG, 0);
    cen.writeUInt16LE(20, 4);
    cen.writeUInt16LE(20, 6);
    cen.writeUInt16LE(0x21, 14);
    cen.writeUInt32LE(crc, 16);
    cen.writeUInt32LE(e.data.length, 20);
    cen.writeUInt32LE(e.data.length, 24);
    cen.writeUInt16LE(name.length, 28);
    cen.writeUInt32LE(offset, 42);
    name.copy(cen, 46);
    parts.push(local, e.data);
    central.push(cen);
    offset += local.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(EOCD_SIG, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, eocd]);
}
