// .pt vectors beyond what the real torch.save fixtures hold: every storage dtype, views
// with an offset and stride, each refusal of readTorchVector, the activation_{i}.pt
// directory listing, and the import's checks on values. Files are assembled here from a
// hand-written pickle inside our zip writer (the layout torch.save uses).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportPowerInferDir, importPowerInferDir, listActivationFiles, readTorchVector, writeTorchVector } from '../../server/profiler/powerinfer-pt.js';
import { readZip, writeZip } from '../../server/profiler/zip-archive.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-ptvec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const msg = (re: RegExp) => (e: Error) => (assert.match(e.message, re), true);

const op = (...b: number[]) => Buffer.from(b);
const ustr = (s: string) => { const b = Buffer.from(s); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); return Buffer.concat([h, b]); };
const int = (v: number) => { const h = Buffer.alloc(5); h[0] = 0x4a; h.writeInt32LE(v, 1); return h; };
const glob = (m: string, n: string) => Buffer.from(`c${m}\n${n}\n`);
const tuple = (xs: number[]) => Buffer.concat([op(0x28), ...xs.map(int), op(0x74)]);

/** The pickle of torch._utils._rebuild_tensor_v2 over storage "0" of class `storage`. */
function tensorPickle(storage: string, numel: number, offset: number, shape: number[], stride: number[]): Buffer {
  return Buffer.concat([
    op(0x80, 2), glob('torch._utils', '_rebuild_tensor_v2'), op(0x28),
    op(0x28), ustr('storage'), glob('torch', storage), ustr('0'), ustr('cpu'), int(numel), op(0x74, 0x51),
    int(offset), tuple(shape), tuple(stride), op(0x89, 0x74, 0x52, 0x2e),
  ]);
}

let k = 0;
function ptFile(o: { storage?: string; data?: Buffer; numel?: number; offset?: number; shape?: number[]; stride?: number[]; pkl?: Buffer; pklName?: string; byteorder?: string; noData?: boolean }): string {
  const entries = [{ name: o.pklName ?? 'arc/data.pkl', data: o.pkl ?? tensorPickle(o.storage ?? 'LongStorage', o.numel ?? 1, o.offset ?? 0, o.shape ?? [o.numel ?? 1], o.stride ?? [1]) }];
  if (o.byteorder !== undefined) entries.push({ name: 'arc/byteorder', data: Buffer.from(o.byteorder) });
  if (!o.noData) entries.push({ name: 'arc/data/0', data: o.data ?? Buffer.alloc(8) });
  const path = join(dir, `t${k++}.pt`);
  writeFileSync(path, writeZip(entries));
  return path;
}

test('every storage dtype is read as numbers', () => {
  const cases: [string, string, Buffer, number[]][] = [
    ['FloatStorage', 'f32', Buffer.from(new Float32Array([1.5, -2]).buffer), [1.5, -2]],
    ['DoubleStorage', 'f64', Buffer.from(new Float64Array([0.1, -3]).buffer), [0.1, -3]],
    ['HalfStorage', 'f16', op(0x00, 0x3c, 0x00, 0xc0), [1, -2]],
    ['BFloat16Storage', 'bf16', op(0x80, 0x3f, 0x40, 0xc0), [1, -3]],
    ['LongStorage', 'i64', Buffer.from(new BigInt64Array([5n, -7n]).buffer), [5, -7]],
    ['IntStorage', 'i32', Buffer.from(new Int32Array([70000, -5]).buffer), [70000, -5]],
    ['ShortStorage', 'i16', Buffer.from(new Int16Array([300, -3]).buffer), [300, -3]],
    ['CharStorage', 'i8', op(0x7f, 0xff), [127, -1]],
    ['ByteStorage', 'u8', op(0xff, 0x01), [255, 1]],
    ['BoolStorage', 'bool', op(0x01, 0x00), [1, 0]],
  ];
  for (const [storage, dtype, data, want] of cases) {
    const r = readTorchVector(ptFile({ storage, data, numel: 2 }));
    assert.equal(r.dtype, dtype);
    assert.deepEqual([...r.values], want, storage);
  }
});

test('views: offset and stride into the storage, exactly up to its end; an empty view reads nothing', () => {
  const data = Buffer.from(new Int32Array([0, 1, 2, 3, 4, 5, 6]).buffer);
  assert.deepEqual([...readTorchVector(ptFile({ storage: 'IntStorage', data, numel: 7, offset: 1, shape: [3], stride: [2] })).values], [1, 3, 5]);
  assert.deepEqual([...readTorchVector(ptFile({ storage: 'IntStorage', data, numel: 7, offset: 2, shape: [3], stride: [2] })).values], [2, 4, 6]);
  assert.throws(() => readTorchVector(ptFile({ storage: 'IntStorage', data, numel: 7, offset: 3, shape: [3], stride: [2] })), msg(/: tensor runs past its storage \(truncated\?\)$/));
  assert.throws(() => readTorchVector(ptFile({ storage: 'IntStorage', data, numel: 7, offset: 0, shape: [8], stride: [1] })), msg(/tensor runs past its storage/));
  assert.deepEqual([...readTorchVector(ptFile({ storage: 'IntStorage', data, numel: 7, offset: 100, shape: [0], stride: [1] })).values], []);
});

test('readTorchVector refusals', () => {
  assert.throws(() => readTorchVector(join(dir, 'absent.pt')), msg(/^cannot read .*absent\.pt: ENOENT/));
  for (const pklName of ['data.pkl', 'a/b/data.pkl', 'arc/data.pkl.old', 'arc/xdata.pkl']) {
    assert.throws(() => readTorchVector(ptFile({ pklName })), msg(/: no \*\/data\.pkl entry; not a torch\.save file$/), pklName);
  }
  assert.throws(() => readTorchVector(ptFile({ byteorder: 'big' })), msg(/: byte order big is not supported$/));
  assert.deepEqual([...readTorchVector(ptFile({ byteorder: 'little\n' })).values], [0]);
  assert.deepEqual([...readTorchVector(ptFile({ byteorder: '' })).values], [0]);
  for (const pkl of [op(0x4b, 1, 0x2e), op(0x4e, 0x2e), op(0x7d, 0x2e)]) {
    assert.throws(() => readTorchVector(ptFile({ pkl })), msg(/: holds something other than a single tensor$/));
  }
  assert.throws(() => readTorchVector(ptFile({ numel: 6, shape: [2, 3], stride: [3, 1], data: Buffer.alloc(48) })), msg(/: tensor has shape \[2, 3\]; activation counts are 1-D$/));
  assert.throws(() => readTorchVector(ptFile({ noData: true })), msg(/: storage 0 is missing$/));
});

test('activation_{i}.pt listing: numeric order, other names ignored, gaps and empty directories refused', () => {
  const d = join(dir, 'list');
  mkdirSync(d);
  for (const n of ['activation_10.pt', 'activation_2.pt', 'notes.txt', 'xactivation_0.pt', 'activation_3.pt.bak']) writeFileSync(join(d, n), '');
  for (let i = 0; i <= 11; i++) if (i !== 2 && i !== 10) writeFileSync(join(d, `activation_${i}.pt`), '');
  const got = listActivationFiles(d).map((p) => p.slice(d.length + 1));
  assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => `activation_${i}.pt`));
  writeFileSync(join(d, 'activation_13.pt'), '');
  assert.throws(() => listActivationFiles(d), msg(/: activation_12\.pt is missing \(found activation_13\.pt\)$/));
  const e = join(dir, 'empty');
  mkdirSync(e);
  writeFileSync(join(e, 'activation_x.pt'), '');
  assert.throws(() => listActivationFiles(e), msg(/empty has no activation_\{i\}\.pt files$/));
  assert.throws(() => listActivationFiles(join(dir, 'nope')), msg(/^cannot list .*nope: ENOENT/));
});

test('import checks each value; fractions anywhere make every layer frequencies x1e6', () => {
  const model = { identity: { name: 'm', arch: 'llama', hash: new Uint8Array(32) }, nLayer: 2, nFf: 2 };
  const put = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const layerFile = (d: string, i: number, vals: number[]) =>
    writeFileSync(join(d, `activation_${i}.pt`), readFileSync(ptFile({ storage: 'FloatStorage', numel: vals.length, data: Buffer.from(new Float32Array(vals).buffer) })));
  const ints = put('ints');
  layerFile(ints, 0, [1, 2]);
  layerFile(ints, 1, [0, 7]);
  const ri = importPowerInferDir(ints, model);
  assert.deepEqual([ri.scale, ri.stats.source, ri.stats.tokens], [1, 'powerinfer-import', 0]);
  assert.deepEqual(ri.stats.counts.map((c) => [...c]), [[1, 2], [0, 7]]);
  const mixed = put('mixed');
  layerFile(mixed, 0, [1, 2]);
  layerFile(mixed, 1, [0.5, 0.25]);
  const r = importPowerInferDir(mixed, model);
  assert.equal(r.scale, 1e6);
  assert.equal(r.stats.source, 'powerinfer-import (frequencies x1e6)');
  assert.deepEqual(r.stats.counts.map((c) => [...c]), [[1e6, 2e6], [5e5, 2.5e5]]);
  for (const [bad, shown] of [[-1, '-1'], [NaN, 'NaN'], [Infinity, 'Infinity']] as const) {
    const d = put(`bad${shown}`);
    layerFile(d, 0, [1, 2]);
    layerFile(d, 1, [3, bad]);
    assert.throws(() => importPowerInferDir(d, model), msg(new RegExp(`activation_1\\.pt: entry 1 is ${shown}, not a non-negative count$`)));
  }
});

test('export writes activation_{i}.pt archives named as torch names them, creating the directory', () => {
  const d = join(dir, 'out', 'nested');
  const paths = exportPowerInferDir(d, { identity: { name: 'm', arch: 'llama', hash: new Uint8Array(32) }, tokens: 1, source: 's', counts: [Float64Array.of(4, 5), Float64Array.of(6)] });
  assert.deepEqual(paths, [join(d, 'activation_0.pt'), join(d, 'activation_1.pt')]);
  const z = readZip(readFileSync(paths[1]), 'z');
  assert.deepEqual([...z.keys()], ['activation_1/data.pkl', 'activation_1/byteorder', 'activation_1/data/0', 'activation_1/version']);
  assert.equal(z.get('activation_1/byteorder')!.toString(), 'little');
  assert.equal(z.get('activation_1/version')!.toString(), '3\n');
  assert.deepEqual([...readTorchVector(paths[0]).values], [4, 5]);
  const p = join(dir, 'w.pt');
  writeTorchVector(p, [7, 8, 9], 'w');
  assert.ok(readZip(readFileSync(p), 'w').has('w/data.pkl'));
});
