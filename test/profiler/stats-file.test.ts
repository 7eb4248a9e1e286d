// The .rsst stats file field by field: what encodeStats refuses, the u32/u64 count width
// switch, each decode refusal with its message (files assembled by hand with the same
// Writer), reading against a model, and merging. formats.test.ts has the round trips.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reader, Writer, openChecked } from '../../server/profiler/binary-io.js';
import { decodeStats, encodeStats, mergeStats, readStatsFile, writeStatsFile, type ActivationStats } from '../../server/profiler/stats-format.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-stats-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hash = new Uint8Array(32).fill(7);
const identity = { name: 'm', arch: 'llama', hash };
const st = (over: Partial<ActivationStats> = {}): ActivationStats => ({ identity, tokens: 10, source: 'profile', counts: [Float64Array.of(1, 2), Float64Array.of(3, 4)], ...over });
const msg = (re: RegExp) => (e: Error) => (assert.match(e.message, re), true);

test('encodeStats refuses what the file cannot hold, naming it', () => {
  assert.throws(() => encodeStats(st({ identity: { ...identity, hash: new Uint8Array(31) } })), msg(/^model fingerprint must be 32 bytes$/));
  for (const tokens of [-1, 1.5, 2 ** 53]) assert.throws(() => encodeStats(st({ tokens })), msg(new RegExp(`^token count ${tokens} is not a non-negative integer$`)));
  assert.throws(() => encodeStats(st({ predictor: [{ truePositive: 1, falsePositive: 0, falseNegative: 0 }] })), msg(/^predictor stats cover 1 layers but counts cover 2$/));
  assert.throws(() => encodeStats(st({ counts: [Float64Array.of(1, -1)] })), msg(/^layer 0 neuron 1: count -1 is not a non-negative integer$/));
  assert.throws(() => encodeStats(st({ counts: [Float64Array.of(0), Float64Array.of(0.5)] })), msg(/^layer 1 neuron 0: count 0\.5 is not a non-negative integer$/));
  assert.equal(decodeStats(encodeStats(st({ tokens: 0, counts: [Float64Array.of(0)] }))).tokens, 0);
});

test('counts are stored as u32 up to 0xffffffff and as u64 beyond, exactly', () => {
  for (const [max, width] of [[0xffffffff, 4], [0x100000000, 8], [2 ** 53 - 1, 8]] as const) {
    const s = st({ counts: [Float64Array.of(max, 0)] });
    const b = encodeStats(s);
    assert.equal(b.readUInt32LE(8) & 1, width === 8 ? 1 : 0, `flags for ${max}`);
    const header = 56 + 3 * 4 + 1 + 5 + 7 + 4; // strings "m", "llama", "profile"; one n_ff
    assert.equal(b.length, header + 2 * width + 4);
    assert.deepEqual([...decodeStats(b).counts[0]], [max, 0]);
  }
});

/** A stats file assembled field by field (defaults: a valid 1-layer file of 2 neurons). */
function raw(o: { flags?: number; nLayer?: number; tokens?: bigint; nFf?: number[]; pred?: bigint[]; counts?: Buffer; tail?: Buffer } = {}): Buffer {
  const w = new Writer();
  w.push(Buffer.from('RSST', 'latin1')).u32(1).u32(o.flags ?? 0).u32(o.nLayer ?? 1);
  const t = Buffer.alloc(8);
  t.writeBigUInt64LE(o.tokens ?? 5n);
  w.push(t).push(Buffer.from(hash)).string('m').string('llama').string('profile');
  for (const n of o.nFf ?? [2]) w.u32(n);
  for (const p of o.pred ?? []) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(p);
    w.push(b);
  }
  w.push(o.counts ?? Buffer.from([1, 0, 0, 0, 2, 0, 0, 0]));
  if (o.tail) w.push(o.tail);
  return w.finishWithCrc();
}

test('decodeStats refusals name the file and the field', () => {
  assert.deepEqual([...decodeStats(raw()).counts[0]], [1, 2]);
  const d = (b: Buffer, re: RegExp) => assert.throws(() => decodeStats(b, 'x.rsst'), msg(re));
  d(raw({ flags: 4 }), /^x\.rsst: unknown flags 0x4$/);
  d(raw({ nLayer: 4097, nFf: [] }), /^x\.rsst: layer count 4097 is implausible$/);
  // 4096 layers is allowed: it fails later, on the missing n_ff list, not on the count.
  d(raw({ nLayer: 4096, nFf: [] }), /^x\.rsst: truncated reading layer \d+ n_ff /);
  d(raw({ nFf: [(1 << 24) + 1] }), /^x\.rsst: layer 0 n_ff 16777217 is implausible$/);
  d(raw({ nFf: [1 << 24] }), /^x\.rsst: truncated reading layer 0 counts \(needs 67108864 bytes at offset \d+, file has \d+\)$/);
  d(raw({ tokens: 2n ** 53n }), /^x\.rsst: token count value 9007199254740992 is too large$/);
  d(raw({ flags: 2, pred: [1n, 2n], counts: Buffer.alloc(0) }), /^x\.rsst: truncated reading layer 0 predictor false negatives /);
  d(raw({ flags: 2, pred: [1n], counts: Buffer.alloc(0) }), /^x\.rsst: truncated reading layer 0 predictor false positives /);
  d(raw({ tail: Buffer.alloc(3) }), /^x\.rsst: 3 unexpected bytes after the counts$/);
  const p = decodeStats(raw({ flags: 2, pred: [9n, 8n, 7n] }));
  assert.deepEqual(p.predictor, [{ truePositive: 9, falsePositive: 8, falseNegative: 7 }]);
  assert.equal(decodeStats(raw()).predictor, undefined);
  // Names of what was being read, through the string fields.
  const w = new Writer();
  w.push(Buffer.from('RSST', 'latin1')).u32(1).u32(0).u32(0).u64(0).push(Buffer.from(hash)).u32(1 << 17);
  d(w.finishWithCrc(), /^x\.rsst: model name length 131072 is implausible$/);
});

test('a stats file cut at any header field names that field; the default name is "stats file"', () => {
  const good = raw({ flags: 2, pred: [1n, 2n, 3n] });
  const body = good.subarray(0, good.length - 4);
  const fields: [string, number][] = [
    ['flags', 4], ['layer count', 4], ['token count', 8], ['model fingerprint', 32], ['model name length', 4], ['model name', 1],
    ['architecture length', 4], ['architecture', 5], ['source length', 4], ['source', 7], ['layer 0 n_ff', 4],
    ['layer 0 predictor true positives', 8], ['layer 0 predictor false positives', 8], ['layer 0 predictor false negatives', 8], ['layer 0 counts', 8],
  ];
  let at = 8;
  for (const [name, size] of fields) {
    const cut = new Writer().push(Buffer.from(body.subarray(0, at))).finishWithCrc();
    assert.throws(() => decodeStats(cut), msg(new RegExp(`^stats file: truncated reading ${name} \\(`)), `cut at ${at}`);
    at += size;
  }
  assert.equal(at, body.length);
  assert.throws(() => decodeStats(Buffer.alloc(4)), msg(/^stats file: too short \(4 bytes\) to be a relu-serve stats file$/));
});

test('binary reader: the bounds it checks and the messages it gives', () => {
  const r = new Reader(Buffer.from([1, 0, 0, 0, 2]), 'f');
  assert.throws(() => r.bytes(-1, 'minus'), msg(/^f: truncated reading minus \(needs -1 bytes at offset 0, file has 5\)$/));
  assert.equal(r.u32('a'), 1);
  assert.deepEqual([...r.bytes(1, 'b')], [2]);
  assert.equal(r.pos, 5);
  assert.deepEqual([...r.bytes(0, 'nothing')], []);
  assert.throws(() => r.u32('c'), msg(/^f: truncated reading c \(needs 4 bytes at offset 5, file has 5\)$/));
  const big = Buffer.alloc(8);
  big.writeBigUInt64LE(2n ** 53n - 1n);
  assert.equal(new Reader(big, 'g').u64('v'), Number.MAX_SAFE_INTEGER);
  const f = Buffer.alloc(8);
  f.writeDoubleLE(-2.25);
  const rf = new Reader(f, 'h');
  assert.equal(rf.f64('x'), -2.25);
  assert.equal(rf.pos, 8);
  // A string exactly at its length limit is read; one byte over is refused.
  const s = new Writer().string('abc').finishWithCrc();
  assert.equal(new Reader(s, 's').string('k', 3), 'abc');
  assert.throws(() => new Reader(s, 's').string('k', 2), msg(/^s: k length 3 is implausible$/));
  const w = new Writer().u32(7).f64(1.5).u64(3);
  assert.equal(w.length, 20);
  // openChecked: 12 bytes is the shortest file it will look at.
  assert.throws(() => openChecked(Buffer.alloc(11), 'RSST', 1, 'f', 'stats file'), msg(/^f: too short \(11 bytes\) to be a stats file$/));
  assert.throws(() => openChecked(Buffer.alloc(12), 'RSST', 1, 'f', 'stats file'), msg(/^f: not a stats file \(magic "\\u0000\\u0000\\u0000\\u0000", expected "RSST"\)$/));
  const twelve = new Writer().push(Buffer.from('RSST', 'latin1')).u32(1).finishWithCrc();
  assert.equal(twelve.length, 12);
  assert.equal(openChecked(twelve, 'RSST', 1, 'f', 'stats file').pos, 8);
  const bad = Buffer.from(twelve);
  bad[11] ^= 1;
  assert.throws(() => openChecked(bad, 'RSST', 1, 'f', 'stats file'), msg(/^f: checksum mismatch \(stored [0-9a-f]+, computed [0-9a-f]+\): the file is truncated or corrupt$/));
});

test('readStatsFile: unreadable path, and the model it is checked against', () => {
  assert.throws(() => readStatsFile(join(dir, 'none.rsst')), msg(/^cannot read stats file .*none\.rsst: ENOENT/));
  const path = join(dir, 's.rsst');
  writeStatsFile(path, st());
  assert.equal(readStatsFile(path, { identity, nLayer: 2, nFf: 2 }).tokens, 10);
  assert.equal(readStatsFile(path).tokens, 10);
  writeFileSync(join(dir, 'bad.rsst'), 'RSST');
  assert.throws(() => readStatsFile(join(dir, 'bad.rsst')), msg(/^stats file .*bad\.rsst: too short/));
  assert.throws(() => readStatsFile(path, { identity, nLayer: 3, nFf: 2 }), msg(/^stats file .*s\.rsst has 2 layers of 2\/2 neurons; the model has 3 x 2$/));
  assert.throws(() => readStatsFile(path, { identity, nLayer: 2, nFf: 4 }), msg(/has 2 layers of 2\/2 neurons; the model has 2 x 4$/));
  writeStatsFile(path, st({ counts: [Float64Array.of(1, 2), Float64Array.of(3)] }));
  assert.throws(() => readStatsFile(path, { identity, nLayer: 2, nFf: 2 }), msg(/has 2 layers of 2\/1 neurons; the model has 2 x 2$/));
  assert.throws(() => readStatsFile(path, { identity: { ...identity, hash: new Uint8Array(32) }, nLayer: 2, nFf: 2 }), /stats file/);
});

test('mergeStats adds counts, tokens and predictor counts; refuses different shapes', () => {
  const pr = (k: number) => [0, 1].map((l) => ({ truePositive: k + l, falsePositive: 2 * k, falseNegative: 3 * k }));
  const m = mergeStats(st({ predictor: pr(1) }), st({ tokens: 5, counts: [Float64Array.of(10, 20), Float64Array.of(30, 40)], predictor: pr(10) }));
  assert.equal(m.tokens, 15);
  assert.deepEqual(m.counts.map((c) => [...c]), [[11, 22], [33, 44]]);
  assert.deepEqual(m.predictor, [
    { truePositive: 11, falsePositive: 22, falseNegative: 33 },
    { truePositive: 13, falsePositive: 22, falseNegative: 33 },
  ]);
  // Predictor counts from one side only are not a total: dropped.
  assert.equal(mergeStats(st({ predictor: pr(1) }), st()).predictor, undefined);
  assert.equal(mergeStats(st(), st({ predictor: pr(1) })).predictor, undefined);
  assert.throws(() => mergeStats(st(), st({ identity: { ...identity, hash: new Uint8Array(32) } })), msg(/^second stats was made for a different model/));
  assert.throws(() => mergeStats(st(), st({ counts: [Float64Array.of(1, 2)] })), msg(/^stats have different layer counts$/));
  assert.throws(() => mergeStats(st(), st({ counts: [Float64Array.of(1, 2), Float64Array.of(1)] })), msg(/^layer 1 sizes differ$/));
});
