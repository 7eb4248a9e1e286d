// The zip reader on hand-built archives (extra fields, comments, deflate, every refusal)
// and the writer's 64-byte data alignment. powerinfer-pt.test.ts reads real torch.save
// zips; this file covers what those never contain.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateRawSync } from 'node:zlib';
import { readZip, writeZip } from '../../server/profiler/zip-archive.js';

interface RawEntry {
  name: string;
  data: Buffer;
  method?: number;
  stored?: Buffer; // the bytes written (default: data, or its deflate for method 8)
  size?: number; // uncompressed size in the headers (default: data.length)
  crc?: number;
  localExtra?: Buffer;
  cenExtra?: Buffer;
  cenComment?: Buffer;
  compSize?: number;
  localOffset?: number;
}

interface CentralFields {
  method?: number;
  crc: number;
  compSize: number;
  size: number;
  nameLen: number;
  extraLen?: number;
  commentLen?: number;
  local: number;
}

/** A local header (the 30 fixed bytes). */
function localHeader(method: number, nameLen: number, extraLen = 0): Buffer {
  const loc = Buffer.alloc(30);
  loc.writeUInt32LE(0x04034b50, 0);
  loc.writeUInt16LE(method, 8);
  loc.writeUInt16LE(nameLen, 26);
  loc.writeUInt16LE(extraLen, 28);
  return loc;
}

/** A central directory entry (the 46 fixed bytes). */
function centralHeader(f: CentralFields): Buffer {
  const c = Buffer.alloc(46);
  c.writeUInt32LE(0x02014b50, 0);
  c.writeUInt16LE(f.method ?? 0, 10);
  c.writeUInt32LE(f.crc, 16);
  c.writeUInt32LE(f.compSize, 20);
  c.writeUInt32LE(f.size, 24);
  c.writeUInt16LE(f.nameLen, 28);
  c.writeUInt16LE(f.extraLen ?? 0, 30);
  c.writeUInt16LE(f.commentLen ?? 0, 32);
  c.writeUInt32LE(f.local, 42);
  return c;
}

/** The end-of-central-directory record (22 bytes, without its comment). */
function endRecord(nEntries: number, cdSize: number, cdOffset: number, commentLen: number): Buffer {
  const r = Buffer.alloc(22);
  r.writeUInt32LE(0x06054b50, 0);
  r.writeUInt16LE(nEntries, 10);
  r.writeUInt32LE(cdSize, 12);
  r.writeUInt32LE(cdOffset, 16);
  r.writeUInt16LE(commentLen, 20);
  return r;
}

/** A zip from parts, each header field overridable, so malformed ones are easy to make. */
function buildZip(entries: RawEntry[], opts: { comment?: Buffer; nEntries?: number; cdOffset?: number; cdSize?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  const cen: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method ?? 0;
    const stored = e.stored ?? (method === 8 ? deflateRawSync(e.data) : e.data);
    const lx = e.localExtra ?? Buffer.alloc(0);
    const cx = e.cenExtra ?? Buffer.alloc(0);
    const cc = e.cenComment ?? Buffer.alloc(0);
    const c = centralHeader({
      method,
      crc: e.crc ?? crc32(e.data) >>> 0,
      compSize: e.compSize ?? stored.length,
      size: e.size ?? e.data.length,
      nameLen: name.length,
      extraLen: cx.length,
      commentLen: cc.length,
      local: e.localOffset ?? off,
    });
    parts.push(localHeader(method, name.length, lx.length), name, lx, stored);
    off += 30 + name.length + lx.length + stored.length;
    cen.push(c, name, cx, cc);
  }
  const cd = Buffer.concat(cen);
  const comment = opts.comment ?? Buffer.alloc(0);
  const eocd = endRecord(opts.nEntries ?? entries.length, opts.cdSize ?? cd.length, opts.cdOffset ?? off, comment.length);
  return Buffer.concat([...parts, cd, eocd, comment]);
}

const text = (m: Map<string, Buffer>) => Object.fromEntries([...m].map(([k, v]) => [k, v.toString('latin1')]));
const refuse = (buf: Buffer, re: RegExp) => assert.throws(() => readZip(buf, 'a.pt'), (e: Error) => (assert.match(e.message, re), true));

test('reads stored and deflated entries past extra fields and comments, and an archive comment up to 65535 bytes', () => {
  const entries: RawEntry[] = [
    { name: 'a/data.pkl', data: Buffer.from('hello'), localExtra: Buffer.from('LXLX'), cenExtra: Buffer.from('CXCXCX'), cenComment: Buffer.from('note') },
    { name: 'a/data/0', data: Buffer.from('x'.repeat(300) + 'yz'), method: 8, cenComment: Buffer.from('c') },
    { name: 'é', data: Buffer.alloc(0) },
  ];
  const want = { 'a/data.pkl': 'hello', 'a/data/0': 'x'.repeat(300) + 'yz', é: '' };
  for (const comment of [Buffer.alloc(0), Buffer.alloc(65535, 0x41)]) {
    assert.deepEqual(text(readZip(buildZip(entries, { comment }), 'a.pt')), want, `comment of ${comment.length}`);
  }
  // An empty archive is just its 22-byte end record, found at offset 0.
  assert.equal(readZip(buildZip([]), 'a.pt').size, 0);
});

test('refusals: not a zip, ZIP64, directory outside the file, corrupt entries, unsupported methods, size and CRC', () => {
  const one = (e: Partial<RawEntry> = {}, o = {}) => buildZip([{ name: 'n', data: Buffer.from('abc'), ...e }], o);
  refuse(Buffer.alloc(100), /^a\.pt: not a zip archive \(no end-of-central-directory record/);
  // The end record beyond the 65535-byte comment window is not looked for.
  refuse(Buffer.concat([buildZip([]), Buffer.alloc(65536)]), /not a zip archive/);
  refuse(one({}, { nEntries: 0xffff }), /^a\.pt: ZIP64 archives are not supported$/);
  refuse(one({}, { cdOffset: 0xffffffff }), /^a\.pt: ZIP64 archives are not supported$/);
  refuse(one({}, { cdSize: 1000 }), /^a\.pt: central directory lies outside the file \(truncated\?\)$/);
  refuse(one({}, { cdOffset: 1 }), /^a\.pt: corrupt central directory entry 0$/);
  // Two entries listed, one there: the second read runs into the end record.
  refuse(one({}, { nEntries: 2 }), /^a\.pt: corrupt central directory entry 1$/);
  refuse(one({ compSize: 0xffffffff }), /^a\.pt: entry n needs ZIP64, not supported$/);
  refuse(one({ size: 0xffffffff }), /^a\.pt: entry n needs ZIP64, not supported$/);
  refuse(one({ localOffset: 0xffffffff }), /^a\.pt: entry n needs ZIP64, not supported$/);
  refuse(one({ localOffset: 1 }), /^a\.pt: entry n: bad local header$/);
  refuse(one({ localOffset: 60 }), /^a\.pt: entry n: bad local header$/);
  refuse(one({ compSize: 1000 }), /^a\.pt: entry n is truncated$/);
  refuse(one({ method: 8, stored: Buffer.from([0xff, 0xff, 0xff]) }), /^a\.pt: entry n: cannot inflate: /);
  refuse(one({ method: 12 }), /^a\.pt: entry n uses compression method 12; only stored and deflate are supported$/);
  refuse(one({ size: 4 }), /^a\.pt: entry n: 3 bytes, header says 4$/);
  refuse(one({ crc: 1 }), /^a\.pt: entry n: CRC-32 mismatch \(corrupt file\)$/);
});

test('the writer starts every entry\'s data on an align-byte boundary, padding in an "FB" extra field', () => {
  for (const align of [64, 16]) {
    const entries = ['a', 'ab/c', 'x'.repeat(40), 'é', 'y'.repeat(59)].map((name, i) => ({ name, data: Buffer.alloc(i * 7 + 1, i + 1) }));
    const z = writeZip(entries, align);
    assert.deepEqual(text(readZip(z, 'w')), Object.fromEntries(entries.map((e) => [e.name, e.data.toString('latin1')])));
    let p = 0;
    for (const e of entries) {
      const nameLen = z.readUInt16LE(p + 26);
      const extraLen = z.readUInt16LE(p + 28);
      assert.equal(z.subarray(p + 30, p + 30 + nameLen).toString('utf8'), e.name);
      const x = p + 30 + nameLen;
      assert.equal(z.readUInt16LE(x), 0x4246, 'extra field id "FB"');
      assert.equal(z.readUInt16LE(x + 2), extraLen - 4, 'extra field length = the padding');
      assert.ok(extraLen - 4 < align, 'less than one alignment of padding');
      const data = x + extraLen;
      assert.equal(data % align, 0, `${e.name}: data at ${data}`);
      assert.deepEqual(z.subarray(data, data + e.data.length), e.data);
      p = data + e.data.length;
    }
  }
});

test('bounds: a header that would run past the end is refused by name, one that ends exactly at the end is read', () => {
  const one = (e: Partial<RawEntry> = {}, o = {}) => buildZip([{ name: 'n', data: Buffer.from('abc'), ...e }], o);
  // Entry 0's comment length (its central entry starts at byte 34) puts entry 1 two bytes
  // before the file's end (34 + 46 + 1 + 20 = length - 2).
  const past = one({}, { nEntries: 2 });
  assert.equal(past.length, 103);
  past.writeUInt16LE(20, 34 + 32);
  refuse(past, /^a\.pt: corrupt central directory entry 1$/);
  // A local header offset 3 bytes before the end: no room for its signature.
  const len = one().length;
  refuse(one({ localOffset: len - 3 }), /^a\.pt: entry n: bad local header$/);

  const cen = (nameLen: number, commentLen: number, local: number, size: number, crc: number) =>
    centralHeader({ crc, compSize: size, size, nameLen, commentLen, local });
  const abc = Buffer.from('abc');
  const crcAbc = crc32(abc) >>> 0;
  // [local 'n' + abc][entry A 'n', whose comment holds the end record][entry B, unnamed,
  // the same data]: B's 46 fixed bytes are the file's last.
  const tail = Buffer.concat([localHeader(0, 1), Buffer.from('n'), abc, cen(1, 22, 0, 3, crcAbc), Buffer.from('n'), endRecord(2, 0, 34, 0), cen(0, 0, 0, 3, crcAbc)]);
  assert.deepEqual(text(readZip(tail, 'a.pt')), { n: 'abc', '': 'abc' });
  // An empty entry whose local header (the archive comment) is the file's last 30 bytes.
  const e = Buffer.concat([cen(1, 0, 47 + 22, 0, 0), Buffer.from('e'), endRecord(1, 47, 0, 30), localHeader(0, 0)]);
  assert.deepEqual(text(readZip(e, 'a.pt')), { e: '' });
});
