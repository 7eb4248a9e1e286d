// Type traits, row sizes, ISA discovery and argument checking of the kernel bindings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

import { GgmlType, ISAS, K } from './kernel-data.js';

test('type traits match ggml block layouts', () => {
  const expect: Array<[number, string, number, number, number, boolean]> = [
    // id, name, block elements, block bytes, vec-dot type, supported
    [GgmlType.F32, 'f32', 1, 4, GgmlType.F32, true],
    [GgmlType.F16, 'f16', 1, 2, GgmlType.F32, true],
    [GgmlType.BF16, 'bf16', 1, 2, GgmlType.F32, true],
    [GgmlType.Q4_0, 'q4_0', 32, 18, GgmlType.Q8_0X, true],
    [GgmlType.Q8_0, 'q8_0', 32, 34, GgmlType.Q8_0X, true],
    [GgmlType.Q4_K, 'q4_K', 256, 144, GgmlType.Q8_K, true],
    [GgmlType.Q5_K, 'q5_K', 256, 176, GgmlType.Q8_K, true],
    [GgmlType.Q6_K, 'q6_K', 256, 210, GgmlType.Q8_K, true],
    [GgmlType.Q8_K, 'q8_K', 256, 292, GgmlType.Q8_K, false],
    [3, 'q4_1', 32, 20, 9, false],
    [6, 'q5_0', 32, 22, GgmlType.Q8_0, false],
    [10, 'q2_K', 256, 84, GgmlType.Q8_K, false],
    [11, 'q3_K', 256, 110, GgmlType.Q8_K, false],
    [23, 'iq4_xs', 256, 136, GgmlType.Q8_K, false],
  ];
  for (const [id, name, bs, ts, vdt, sup] of expect) {
    const t = K.typeTraits(id);
    assert.ok(t, `type ${id} known`);
    assert.deepEqual(t, { name, blockSize: bs, typeSize: ts, vecDotType: vdt, supported: sup }, name);
  }
  assert.equal(K.typeTraits(4), null, 'id 4 (removed q4_2) is unknown');
  assert.equal(K.typeTraits(39), null);
  assert.equal(K.typeTraits(-1), null);
});

test('row sizes', () => {
  assert.equal(K.rowSize(GgmlType.Q4_0, 4096), 128 * 18);
  assert.equal(K.rowSize(GgmlType.Q6_K, 4096), 16 * 210);
  assert.equal(K.rowSize(GgmlType.F16, 7), 14);
  // Q8_0X: the Q8_0 blocks, then 256 bytes per whole group of 4 blocks
  assert.equal(K.rowSize(GgmlType.Q8_0X, 160), 5 * 34 + 256);
  assert.throws(() => K.rowSize(GgmlType.Q4_K, 100), /not a positive multiple of the q4_K block size 256/);
  assert.throws(() => K.rowSize(99, 32), /unknown type id 99/);
});

test('ISA discovery', () => {
  assert.equal(ISAS[0], 'scalar');
  assert.equal(ISAS[ISAS.length - 1], K.bestIsa());
  if (process.env.RELU_SERVE_ISA === undefined && /avx512vnni|avx512_vnni/.test(cpuFlags())) {
    assert.equal(K.bestIsa(), 'avx512', 'this CPU has AVX-512 VNNI');
  }
});

test('an ISA above what this CPU (or RELU_SERVE_ISA) allows is refused, not replaced', () => {
  const all = ['scalar', 'avx2', 'avx512'] as const;
  for (const isa of all.filter((i) => !ISAS.includes(i)))
    assert.throws(() => K.softmax(isa, new Float32Array(4)), new RegExp(`isa ${isa} is not available on this CPU`));
  for (const isa of ISAS) assert.equal(K.softmax(isa, new Float32Array(4)).length, 4);
});

test('with the ISA capped to scalar, avx2 and avx512 are refused (the check above is empty on an AVX-512 CPU)', () => {
  // The cap is read once per process, so a child process runs with it set.
  const kernelData = new URL('./kernel-data.js', import.meta.url).href;
  const script = `
    const { K, ISAS } = await import(${JSON.stringify(kernelData)});
    const refused = [];
    for (const isa of ['avx2', 'avx512']) {
      try { K.softmax(isa, new Float32Array(4)); } catch (e) { refused.push(String(e.message)); }
    }
    console.log(JSON.stringify({ isas: ISAS, best: K.bestIsa(), refused, scalar: K.softmax('scalar', new Float32Array(4)).length }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, RELU_SERVE_ISA: 'scalar' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.isas, ['scalar']);
  assert.equal(out.best, 'scalar');
  assert.equal(out.scalar, 4);
  assert.equal(out.refused.length, 2);
  out.refused.forEach((m: string, i: number) => assert.match(m, new RegExp(`isa ${['avx2', 'avx512'][i]} is not available on this CPU`)));
});

function cpuFlags(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

test('bad arguments throw clear errors', () => {
  const x = new Float32Array(64);
  assert.throws(() => K.quantize(3, x), /q4_1 \(3\) is not a supported weight type/);
  assert.throws(() => K.quantize(10, new Float32Array(256)), /q2_K .* not a supported weight type/);
  assert.throws(() => K.quantize(77, x), /unknown type id 77/);
  assert.throws(() => K.quantize(GgmlType.Q4_0, new Float32Array(33)), /n = 33 is not a positive multiple/);
  assert.throws(() => K.quantize(GgmlType.Q4_0, [1, 2] as unknown as Float32Array), /Float32Array/);
  assert.throws(() => K.dequantize(GgmlType.Q4_0, Buffer.alloc(17), 32), /17 bytes; 32 q4_0 elements take 18/);
  assert.throws(() => K.vecDot(GgmlType.Q8_0, 'avx9' as 'avx2', Buffer.alloc(34), new Float32Array(32), 32), /unknown isa "avx9"/);
  assert.throws(() => K.vecDot(GgmlType.Q8_0, 'ref', Buffer.alloc(34), new Float32Array(31), 32), /x has 31 elements/);
  assert.throws(
    () => K.matmul(GgmlType.Q4_0, 'ref', Buffer.alloc(18 * 3), 2, 32, new Float32Array(32), 1, true),
    /weights are 54 bytes; 2 rows of 32 q4_0 elements take 36/,
  );
  assert.throws(() => K.matmul(GgmlType.F32, 'ref', Buffer.alloc(8), 1, 2, new Float32Array(2), 1.5, true), /nc must be an integer/);
  assert.throws(() => K.rope('ref', new Float32Array(7), 1, 6, 0, 10000), /x must have nHead \* headDim/);
  assert.throws(() => K.rope('ref', new Float32Array(5), 1, 5, 0, 10000), /headDim must be even/);
  assert.throws(() => K.ffnAct('ref', 'gelu' as 'swiglu', x, x), /unknown activation "gelu"/);
  assert.throws(() => K.benchVecDot(GgmlType.Q4_0, 'scalar', 10, 32, 1), /use rows \* rowSize >= 48 MiB/);
  assert.throws(
    () => K.attentionHead('ref', new Float32Array(4), new Uint16Array(7), new Uint16Array(8), 2, 4, 4, 1),
    /k and v need/,
  );
});
