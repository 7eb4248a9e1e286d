// The tensor unpickler opcode by opcode, on hand-assembled pickles (the byte values are
// those of Python's pickle protocol), and every refusal with its message. The real-file
// checks (torch.save output) are in powerinfer-pt.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STORAGE_DTYPES, pickleInt64Vector, unpickle } from '../../server/profiler/torch-pickle.js';

/** Bytes from opcodes (numbers), raw buffers and latin1 strings. */
function pk(...parts: (number | Buffer | string)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.of(p) : typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; };
const f64be = (v: number) => { const b = Buffer.alloc(8); b.writeDoubleBE(v); return b; };
const ustr = (s: string) => { const b = Buffer.from(s, 'utf8'); return pk(0x58, u32(b.length), b); };
const glob = (m: string, n: string) => pk(0x63, `${m}\n${n}\n`);
const STOP = 0x2e;
const MARK = 0x28;

/** The unpickled value as plain data: tuples, dicts, bytes and bigints tagged. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (Buffer.isBuffer(v)) return { bytes: v.toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [plain(k), plain(x)]) };
  if (v && typeof v === 'object' && 'items' in v) return { tuple: (v as { items: unknown[] }).items.map(plain) };
  return v;
}
const load = (...parts: (number | Buffer | string)[]) => plain(unpickle(pk(...parts), 'f.pt'));
const refuse = (re: RegExp, ...parts: (number | Buffer | string)[]) =>
  assert.throws(() => unpickle(pk(...parts), 'f.pt'), (e: Error) => (assert.match(e.message, re), true));

test('numbers: BININT1/2/4, LONG1 (two-complement, safe range as numbers, beyond as bigint), BINFLOAT, bools, None', () => {
  assert.equal(load(0x4b, 0xff, STOP), 255);
  assert.equal(load(0x4d, 0x34, 0x12, STOP), 0x1234);
  assert.equal(load(0x4a, i32(-2), STOP), -2);
  assert.equal(load(0x8a, 0, STOP), 0);
  assert.equal(load(0x8a, 1, 0x7f, STOP), 127);
  assert.equal(load(0x8a, 1, 0xff, STOP), -1);
  assert.equal(load(0x8a, 2, 0x00, 0x80, STOP), -32768);
  assert.equal(load(0x8a, 3, 0x01, 0x02, 0x03, STOP), 0x030201);
  const long = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(v);
    return load(0x8a, 8, b, STOP);
  };
  const MAX = BigInt(Number.MAX_SAFE_INTEGER);
  assert.equal(long(MAX), Number.MAX_SAFE_INTEGER);
  assert.equal(long(-MAX), -Number.MAX_SAFE_INTEGER);
  assert.equal(long(MAX + 1n), `${MAX + 1n}n`);
  assert.equal(long(-MAX - 1n), `${-MAX - 1n}n`);
  assert.equal(load(0x47, f64be(-1.5), STOP), -1.5);
  assert.equal(load(0x88, STOP), true);
  assert.equal(load(0x89, STOP), false);
  assert.equal(load(0x4e, STOP), null);
});

test('strings and bytes: BINUNICODE, SHORT_BINUNICODE (UTF-8), SHORT_BINBYTES, BINBYTES; PROTO and FRAME skipped', () => {
  assert.equal(load(0x80, 4, 0x95, u32(9), u32(0), ustr('hé'), STOP), 'hé');
  assert.equal(load(0x8c, 3, Buffer.from('hé', 'utf8'), STOP), 'hé');
  // Not last in the pickle (a string that ends one byte before STOP reads the same from a negative end).
  assert.deepEqual(load(0x8c, 1, 'a', 0x8c, 3, Buffer.from('hé', 'utf8'), 0x86, STOP), { tuple: ['a', 'hé'] });
  assert.deepEqual(load(0x43, 2, 0xab, 0xcd, STOP), { bytes: 'abcd' });
  assert.deepEqual(load(0x42, u32(3), 1, 2, 3, STOP), { bytes: '010203' });
});

test('containers: the tuple opcodes, lists with APPEND(S), dicts with SETITEM(S)', () => {
  const one = pk(0x4b, 1);
  const two = pk(0x4b, 2);
  const three = pk(0x4b, 3);
  assert.deepEqual(load(0x29, STOP), { tuple: [] });
  assert.deepEqual(load(one, 0x85, STOP), { tuple: [1] });
  assert.deepEqual(load(one, two, 0x86, STOP), { tuple: [1, 2] });
  assert.deepEqual(load(one, two, three, 0x87, STOP), { tuple: [1, 2, 3] });
  assert.deepEqual(load(MARK, two, three, 0x74, STOP), { tuple: [2, 3] }); // MARK at the bottom of the stack
  assert.deepEqual(load(one, MARK, two, three, 0x74, 0x86, STOP), { tuple: [1, { tuple: [2, 3] }] });
  assert.deepEqual(load(0x5d, one, 0x61, MARK, two, three, 0x65, STOP), [1, 2, 3]);
  assert.deepEqual(load(0x7d, one, two, 0x73, MARK, three, one, two, 0x75, STOP), { dict: [[1, 2], [3, 1]] });
  // An odd item count in SETITEMS: the key without a value is dropped.
  assert.deepEqual(load(0x7d, MARK, one, two, three, 0x75, STOP), { dict: [[1, 2]] });
});

test('memo: BINPUT/BINGET, LONG_BINPUT/LONG_BINGET and MEMOIZE (numbered in order) give back the same object', () => {
  const t = unpickle(pk(0x5d, 0x71, 7, 0x68, 7, 0x86, STOP), 'f.pt') as { items: unknown[] };
  assert.deepEqual(plain(t), { tuple: [[], []] });
  assert.equal(t.items[0], t.items[1], 'the same list, not a copy');
  assert.deepEqual(load(0x4b, 5, 0x72, u32(300), 0x4b, 6, 0x6a, u32(300), 0x86, 0x86, STOP), { tuple: [5, { tuple: [6, 5] }] });
  assert.deepEqual(load(0x4b, 5, 0x94, 0x4b, 6, 0x94, 0x68, 1, 0x68, 0, 0x87, 0x86, STOP), { tuple: [5, { tuple: [6, 6, 5] }] });
});

test('globals: only the tensor constructors; STACK_GLOBAL; REDUCE builds; BUILD state is dropped', () => {
  assert.deepEqual(load(glob('collections', 'OrderedDict'), 0x29, 0x52, STOP), { dict: [] });
  assert.deepEqual(load(ustr('collections'), ustr('OrderedDict'), 0x93, 0x29, 0x52, 0x7d, 0x62, STOP), { dict: [] });
  assert.equal(load(glob('torch._utils', '_rebuild_parameter'), 0x4b, 9, 0x4b, 1, 0x86, 0x52, STOP), 9);
  refuse(/^f\.pt: the pickle uses os\.system, which a tensor file does not need; refusing to load it$/, glob('os', 'system'), ustr('ls'), 0x85, 0x52, STOP);
  refuse(/^f\.pt: pickle REDUCE on something that is not a known constructor$/, 0x4b, 1, 0x29, 0x52, STOP);
  refuse(/^f\.pt: arguments of collections\.OrderedDict are not a tuple$/, glob('collections', 'OrderedDict'), 0x4b, 1, 0x52, STOP);
});

/** A _rebuild_tensor_v2 call over a persistent id built from `pid` (already pickled). */
function tensor(pid: Buffer, offset = pk(0x4b, 0), size = pk(0x4b, 8, 0x85), stride = pk(0x4b, 1, 0x85)) {
  return pk(glob('torch._utils', '_rebuild_tensor_v2'), MARK, pid, 0x51, offset, size, stride, 0x89, 0x74, 0x52, STOP);
}
const storage = (type = glob('torch', 'LongStorage'), key = ustr('0'), numel = pk(0x4b, 8)) => pk(MARK, ustr('storage'), type, key, ustr('cpu'), numel, 0x74);

test('a tensor: storage reference (dtype from the storage class), offset, size, stride', () => {
  assert.deepEqual(unpickle(tensor(storage(), pk(0x4b, 2), pk(0x4b, 3, 0x4b, 4, 0x86), pk(0x4b, 4, 0x4b, 1, 0x86)), 'f.pt'), {
    kind: 'tensor',
    storage: { kind: 'storage', dtype: 'i64', key: '0', numel: 8 },
    offset: 2,
    shape: [3, 4],
    stride: [4, 1],
  });
  const names = ['FloatStorage', 'DoubleStorage', 'HalfStorage', 'BFloat16Storage', 'LongStorage', 'IntStorage', 'ShortStorage', 'CharStorage', 'ByteStorage', 'BoolStorage'];
  const dtypes = ['f32', 'f64', 'f16', 'bf16', 'i64', 'i32', 'i16', 'i8', 'u8', 'bool'];
  assert.deepEqual(Object.entries(STORAGE_DTYPES), names.map((n, i) => [n, dtypes[i]]));
  names.forEach((n, i) => {
    const t = unpickle(tensor(storage(glob('torch', n))), 'f.pt') as { storage: { dtype: string } };
    assert.equal(t.storage.dtype, dtypes[i], n);
  });
  // A storage size as a LONG1 bigint within the safe range is a plain number.
  const big = unpickle(tensor(storage(undefined, undefined, pk(0x8a, 8, Buffer.from([0, 0, 0, 0, 0, 0, 0x10, 0])))), 'f.pt') as { storage: { numel: number } };
  assert.equal(big.storage.numel, 2 ** 52);
});

test('tensor refusals name what is wrong', () => {
  refuse(/^f\.pt: unsupported persistent id in pickle \(expected a storage reference\)$/, tensor(pk(0x4b, 1)));
  refuse(/unsupported persistent id/, tensor(pk(MARK, ustr('blob'), glob('torch', 'LongStorage'), ustr('0'), ustr('cpu'), 0x4b, 8, 0x74)));
  refuse(/unsupported persistent id/, tensor(pk(MARK, ustr('storage'), glob('torch', 'LongStorage'), ustr('0'), ustr('cpu'), 0x74)));
  refuse(/^f\.pt: unsupported storage type numpy\.LongStorage$/, tensor(storage(glob('numpy', 'LongStorage'))));
  refuse(/^f\.pt: unsupported storage type torch\.ComplexStorage$/, tensor(storage(glob('torch', 'ComplexStorage'))));
  refuse(/^f\.pt: unsupported storage type LongStorage$/, tensor(storage(ustr('LongStorage'))));
  refuse(/^f\.pt: storage key is not a string$/, tensor(storage(undefined, pk(0x4b, 0))));
  refuse(/^f\.pt: storage size is not a non-negative integer$/, tensor(storage(undefined, undefined, pk(0x47, f64be(1.5)))));
  refuse(/^f\.pt: storage size is not a non-negative integer$/, tensor(storage(undefined, undefined, pk(0x8a, 1, 0xff))));
  refuse(/^f\.pt: storage size is not a non-negative integer$/, tensor(storage(undefined, undefined, pk(0x8a, 8, Buffer.from([0, 0, 0, 0, 0, 0, 0x20, 0])))));
  refuse(/^f\.pt: storage size is not a non-negative integer$/, tensor(storage(undefined, undefined, ustr('8'))));
  refuse(/^f\.pt: storage size is not a non-negative integer$/, tensor(storage(undefined, undefined, pk(0x8a, 8, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0xf0]))))); // -2^60
  refuse(/^f\.pt: storage offset is not a non-negative integer$/, tensor(storage(), ustr('0')));
  refuse(/^f\.pt: tensor size is not a tuple$/, tensor(storage(), undefined, pk(0x4b, 8)));
  refuse(/^f\.pt: tensor size\[1\] is not a non-negative integer$/, tensor(storage(), undefined, pk(0x4b, 8, 0x4e, 0x86)));
  refuse(/^f\.pt: tensor stride is not a tuple$/, tensor(storage(), undefined, undefined, pk(0x4e)));
  refuse(/^f\.pt: tensor stride\[0\] is not a non-negative integer$/, tensor(storage(), undefined, undefined, pk(0x4e, 0x85)));
  refuse(/^f\.pt: tensor without a storage$/, pk(glob('torch._utils', '_rebuild_tensor_v2'), MARK, 0x4e, 0x4b, 0, 0x74, 0x52, STOP));
  refuse(/^f\.pt: tensor without a storage$/, pk(glob('torch._utils', '_rebuild_tensor_v2'), MARK, 0x7d, 0x4b, 0, 0x74, 0x52, STOP));
});

test('malformed pickles are refused with the file name and the place', () => {
  refuse(/^f\.pt: pickle truncated at byte 0$/);
  refuse(/^f\.pt: pickle truncated at byte 1$/, 0x4b);
  refuse(/^f\.pt: pickle truncated at byte 5$/, 0x58, u32(4), 'abc');
  refuse(/^f\.pt: pickle truncated at byte 3$/, 0x4d, 1, 0x4b);
  refuse(/^f\.pt: pickle MARK missing$/, 0x4b, 1, 0x74, STOP);
  refuse(/^f\.pt: pickle stack underflow at byte 1$/, 0x85, STOP);
  refuse(/^f\.pt: pickle truncated in a GLOBAL$/, 0x63, 'torch\nLong');
  refuse(/^f\.pt: pickle ended with 2 values on the stack$/, 0x4b, 1, 0x4b, 2, STOP);
  refuse(/^f\.pt: pickle ended with 0 values on the stack$/, STOP);
  refuse(/^f\.pt: unsupported pickle opcode 0x69 at byte 2$/, 0x4b, 1, 0x69, STOP);
  // The name is not repeated when a message already starts with it.
  assert.throws(() => unpickle(pk(0x4b), 'pickle'), (e: Error) => e.message === 'pickle: pickle truncated at byte 1');
});

test('pickleInt64Vector writes what torch.save writes for an int64 vector, and reads back', () => {
  const b = pickleInt64Vector(5);
  assert.deepEqual(unpickle(b, 'v'), {
    kind: 'tensor',
    storage: { kind: 'storage', dtype: 'i64', key: '0', numel: 5 },
    offset: 0,
    shape: [5],
    stride: [1],
  });
  // The location torch.load maps the storage to, and the constructor names torch needs.
  assert.ok(b.includes(pk(ustr('cpu'))), 'storage location "cpu"');
  assert.ok(b.includes(Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n')));
  assert.ok(b.includes(Buffer.from('ccollections\nOrderedDict\n')));
  assert.ok(b.includes(pk(ustr('storage'))));
});
