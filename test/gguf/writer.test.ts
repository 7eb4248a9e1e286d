import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeGguf, buildGgufLayout, type TensorSpec } from '../../server/gguf/writer.js';
import { parseGgufHeader, readGgufHeader, metadataValues } from '../../server/gguf/header-reader.js';
import { ByteBuilder, encodeKeyValue, type TypedValue } from '../../server/gguf/encoder.js';

async function tmp(): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'rs-gguf-'));
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

const ALL_TYPES: [string, TypedValue][] = [
  ['t.u8', { type: 'u8', value: 255 }],
  ['t.i8', { type: 'i8', value: -128 }],
  ['t.u16', { type: 'u16', value: 65535 }],
  ['t.i16', { type: 'i16', value: -32768 }],
  ['t.u32', { type: 'u32', value: 4294967295 }],
  ['t.i32', { type: 'i32', value: -2147483648 }],
  ['t.f32', { type: 'f32', value: 0.1 }],
  ['t.bool.t', { type: 'bool', value: true }],
  ['t.bool.f', { type: 'bool', value: false }],
  ['t.string', { type: 'string', value: 'héllo ▁ 世界 😀' }],
  ['t.string.empty', { type: 'string', value: '' }],
  ['t.u64', { type: 'u64', value: 18446744073709551615n }],
  ['t.u64.small', { type: 'u64', value: 12345 }],
  ['t.i64', { type: 'i64', value: -9223372036854775808n }],
  ['t.f64', { type: 'f64', value: Math.PI }],
  ['t.arr.u8', { type: 'array', elemType: 'u8', value: [0, 1, 255] }],
  ['t.arr.i32', { type: 'array', elemType: 'i32', value: new Int32Array([-1, 0, 7]) }],
  ['t.arr.f32', { type: 'array', elemType: 'f32', value: [1.5, -2.25, 0] }],
  ['t.arr.bool', { type: 'array', elemType: 'bool', value: [true, false] }],
  ['t.arr.str', { type: 'array', elemType: 'string', value: ['a', '', '▁b', '<0x0A>'] }],
  ['t.arr.u64', { type: 'array', elemType: 'u64', value: [1n, 2n ** 60n] }],
  ['t.arr.f64', { type: 'array', elemType: 'f64', value: [1e300] }],
  ['t.arr.empty', { type: 'array', elemType: 'u32', value: [] }],
  [
    't.arr.nested',
    {
      type: 'array',
      elemType: 'array',
      value: [
        { type: 'array', elemType: 'i16', value: [1, -2] },
        { type: 'array', elemType: 'string', value: ['x'] },
        { type: 'array', elemType: 'array', value: [{ type: 'array', elemType: 'u8', value: [9] }] },
      ],
    },
  ],
];

test('every metadata value type round-trips through the header reader', async () => {
  const { dir, done } = await tmp();
  try {
    const path = join(dir, 'types.gguf');
    await writeGguf(path, { metadata: ALL_TYPES, tensors: [] });
    const h = await readGgufHeader(path);
    assert.equal(h.magic, 'GGUF');
    assert.equal(h.version, 3);
    assert.equal(h.tensorCount, 0n);
    assert.equal(h.kvCount, BigInt(ALL_TYPES.length));
    assert.deepEqual([...h.metadata.keys()], ALL_TYPES.map(([k]) => k));
    const m = metadataValues(h);
    assert.equal(m.get('t.u8'), 255);
    assert.equal(m.get('t.i8'), -128);
    assert.equal(m.get('t.u16'), 65535);
    assert.equal(m.get('t.i16'), -32768);
    assert.equal(m.get('t.u32'), 4294967295);
    assert.equal(m.get('t.i32'), -2147483648);
    assert.equal(m.get('t.f32'), Math.fround(0.1));
    assert.equal(m.get('t.bool.t'), true);
    assert.equal(m.get('t.bool.f'), false);
    assert.equal(m.get('t.string'), 'héllo ▁ 世界 😀');
    assert.equal(m.get('t.string.empty'), '');
    assert.equal(m.get('t.u64'), 18446744073709551615n);
    assert.equal(m.get('t.u64.small'), 12345);
    assert.equal(m.get('t.i64'), -9223372036854775808n);
    assert.equal(m.get('t.f64'), Math.PI);
    assert.deepEqual(m.get('t.arr.u8'), [0, 1, 255]);
    assert.deepEqual(m.get('t.arr.i32'), [-1, 0, 7]);
    assert.deepEqual(m.get('t.arr.f32'), [1.5, -2.25, 0]);
    assert.deepEqual(m.get('t.arr.bool'), [true, false]);
    assert.deepEqual(m.get('t.arr.str'), ['a', '', '▁b', '<0x0A>']);
    assert.deepEqual(m.get('t.arr.u64'), [1, 2n ** 60n]);
    assert.deepEqual(m.get('t.arr.f64'), [1e300]);
    assert.deepEqual(m.get('t.arr.empty'), []);
    assert.deepEqual(m.get('t.arr.nested'), [[1, -2], ['x'], [[9]]]);
    assert.equal(h.metadata.get('t.arr.nested')?.elemType, 'array');
    assert.equal(h.metadata.get('t.u64')?.type, 'u64');
  } finally {
    await done();
  }
});

test('the bytes of a key/value follow the GGUF layout exactly', () => {
  const b = new ByteBuilder();
  encodeKeyValue(b, 'ab', { type: 'array', elemType: 'u16', value: [1, 2] });
  const expected = Buffer.from([
    2, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62, // key: u64 length + bytes
    9, 0, 0, 0, // ARRAY
    2, 0, 0, 0, // element type UINT16
    2, 0, 0, 0, 0, 0, 0, 0, // count
    1, 0, 2, 0,
  ]);
  assert.deepEqual(b.toBuffer(), expected);
});

test('values out of range for their type are rejected with the key named', () => {
  assert.throws(
    () => buildGgufLayout({ metadata: [['k.u8', { type: 'u8', value: 256 }]], tensors: [] }),
    /k\.u8: 256 is not an integer in \[0, 255\]/,
  );
  assert.throws(
    () => buildGgufLayout({ metadata: [['k.u32', { type: 'u32', value: 1.5 }]], tensors: [] }),
    /k\.u32/,
  );
  assert.throws(
    () => buildGgufLayout({ metadata: [['k.i64', { type: 'i64', value: 2n ** 63n }]], tensors: [] }),
    /k\.i64/,
  );
  assert.throws(
    () =>
      buildGgufLayout({
        metadata: [['k.arr', { type: 'array', elemType: 'i8', value: [1, 200] }]],
        tensors: [],
      }),
    /k\.arr\[1\]/,
  );
  assert.throws(
    () =>
      buildGgufLayout({
        metadata: [
          ['a', { type: 'u8', value: 1 }],
          ['a', { type: 'u8', value: 2 }],
        ],
        tensors: [],
      }),
    /duplicate metadata key "a"/,
  );
});

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

test('tensor infos, alignment padding and data land where the header says', async () => {
  const { dir, done } = await tmp();
  try {
    const a = f32Bytes([1, 2, 3]); // 12 bytes: the next tensor needs padding
    const b = new Uint8Array(18 * 2).map((_, i) => i + 1); // q4_0 {64}: 2 blocks
    const tensors: TensorSpec[] = [
      { name: 'a', dims: [3], type: 'f32', data: a },
      // A callback yielding chunks: data is produced only when written.
      { name: 'b', dims: [64], type: 'q4_0', data: () => [b.subarray(0, 5), b.subarray(5)] },
      { name: 'c', dims: [2, 2], type: 'f16', data: async () => new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
    ];
    for (const alignment of [32, 64]) {
      const path = join(dir, `t${alignment}.gguf`);
      const layout = await writeGguf(path, {
        metadata: [['general.architecture', { type: 'string', value: 'llama' }]],
        tensors,
        alignment,
      });
      const file = await readFile(path);
      const h = parseGgufHeader(file);
      assert.equal(h.alignment, alignment);
      assert.equal(h.dataOffset, layout.dataOffset);
      assert.equal(h.dataOffset % alignment, 0);
      assert.deepEqual(
        h.tensors.map((t) => [t.name, t.dims, t.typeName, t.offset]),
        [
          ['a', [3], 'f32', 0n],
          ['b', [64], 'q4_0', BigInt(alignment)],
          // b is 36 bytes: with 32-byte alignment it spans two slots.
          ['c', [2, 2], 'f16', BigInt(alignment === 32 ? 96 : 128)],
        ],
      );
      if (alignment === 64) assert.equal(h.metadata.get('general.alignment')?.value, 64);
      else assert.equal(h.metadata.has('general.alignment'), false);
      const at = (t: number, n: number) =>
        file.subarray(h.dataOffset + Number(h.tensors[t].offset), h.dataOffset + Number(h.tensors[t].offset) + n);
      assert.deepEqual(new Uint8Array(at(0, 12)), a);
      assert.deepEqual(new Uint8Array(at(1, 36)), b);
      assert.deepEqual([...at(2, 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
      // Padding between tensors is zeros and the file ends on an aligned boundary.
      assert.ok(file.subarray(h.dataOffset + 12, h.dataOffset + alignment).every((x) => x === 0));
      assert.equal(file.length, h.dataOffset + Number(h.tensors[2].offset) + alignment);
    }
  } finally {
    await done();
  }
});

test('PWRI magic and version 2 are written as asked; same input gives same bytes', async () => {
  const { dir, done } = await tmp();
  try {
    const spec = {
      magic: 'PWRI',
      version: 2,
      metadata: [['powerinfer.sparse_threshold', { type: 'f32', value: 0 }]] as [string, TypedValue][],
      tensors: [{ name: 'x', dims: [4], type: 'f32', data: f32Bytes([1, 2, 3, 4]) }],
    };
    await writeGguf(join(dir, 'a.gguf'), spec);
    await writeGguf(join(dir, 'b.gguf'), spec);
    const a = await readFile(join(dir, 'a.gguf'));
    assert.deepEqual(a, await readFile(join(dir, 'b.gguf')));
    assert.equal(a.toString('latin1', 0, 4), 'PWRI');
    assert.equal(a.readUInt32LE(4), 2);
    const h = parseGgufHeader(a);
    assert.equal(h.magic, 'PWRI');
    assert.equal(h.version, 2);
  } finally {
    await done();
  }
});

test('wrong data sizes and bad shapes are refused, naming the tensor', async () => {
  const { dir, done } = await tmp();
  try {
    await assert.rejects(
      writeGguf(join(dir, 'x.gguf'), {
        metadata: [],
        tensors: [{ name: 'short', dims: [4], type: 'f32', data: f32Bytes([1, 2, 3]) }],
      }),
      /tensor short: got 12 bytes of data, expected 16/,
    );
    assert.throws(
      () => buildGgufLayout({ metadata: [], tensors: [{ name: 'q', dims: [33], type: 'q8_0', data: new Uint8Array() }] }),
      /not a multiple of the q8_0 block size 32/,
    );
    assert.throws(
      () => buildGgufLayout({ metadata: [], tensors: [{ name: 'q', dims: [4], type: 'q9_9', data: new Uint8Array() }] }),
      /unknown ggml tensor type "q9_9"/,
    );
  } finally {
    await done();
  }
});

test('test hooks write malformed files: magic, version, counts, offsets, truncation', async () => {
  const { dir, done } = await tmp();
  try {
    const base = {
      metadata: [['k', { type: 'u32', value: 1 }]] as [string, TypedValue][],
      tensors: [{ name: 'x', dims: [8], type: 'f32', data: f32Bytes([0, 1, 2, 3, 4, 5, 6, 7]) }],
    };
    await writeGguf(join(dir, 'magic.gguf'), { ...base, magic: 'GGUX' });
    assert.throws(() => parseGgufHeader(readFileSync(join(dir, 'magic.gguf'))), /bad magic "GGUX"/);

    await writeGguf(join(dir, 'ver.gguf'), { ...base, version: 99 });
    assert.throws(() => parseGgufHeader(readFileSync(join(dir, 'ver.gguf'))), /unsupported GGUF version 99/);

    await writeGguf(join(dir, 'count.gguf'), { ...base, overrides: { kvCount: 2n ** 62n } });
    assert.throws(() => parseGgufHeader(readFileSync(join(dir, 'count.gguf'))), /absurd counts/);

    const path = join(dir, 'off.gguf');
    await writeGguf(path, {
      ...base,
      tensors: [{ ...base.tensors[0], offsetOverride: 1n << 40n }],
    });
    assert.equal((await readGgufHeader(path)).tensors[0].offset, 1n << 40n);

    const trunc = join(dir, 'trunc.gguf');
    await writeGguf(trunc, { ...base, overrides: { truncateAt: 20 } });
    assert.equal((await stat(trunc)).size, 20);
    await assert.rejects(readGgufHeader(trunc), /truncated/);
  } finally {
    await done();
  }
});

test('a large tensor streamed in chunks is written whole', async () => {
  const { dir, done } = await tmp();
  try {
    const rows = 64;
    const rowLen = 1 << 15; // 32768 floats = 128 KiB per row; 8 MiB in total
    const buf = new Float32Array(rowLen);
    function* gen(): Generator<Uint8Array> {
      for (let r = 0; r < rows; r++) {
        buf.fill(r); // the same buffer reused for every row
        yield new Uint8Array(buf.buffer);
      }
    }
    const path = join(dir, 'big.gguf');
    const layout = await writeGguf(path, { metadata: [], tensors: [{ name: 'w', dims: [rowLen, rows], type: 'f32', data: gen }] });
    const file = await readFile(path);
    const data = new Float32Array(file.buffer, file.byteOffset + layout.dataOffset, rowLen * rows);
    for (let r = 0; r < rows; r++) {
      assert.equal(data[r * rowLen], r);
      assert.equal(data[r * rowLen + rowLen - 1], r);
    }
  } finally {
    await done();
  }
});
