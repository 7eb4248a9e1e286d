// The optimised forward pass against the reference forward pass (kernels/ref, one
// token at a time, no threads), and the batching/threading invariants the server
// relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import { tinyModel } from './models.js';
import { relErr } from './compare.js';

const PROMPT = [1, 17, 42, 99, 7, 300, 12, 5, 250, 64, 33, 128];


async function runPrompt(model: Model, opts: { backend?: 'cpu' | 'ref'; threads?: number; isa?: 'scalar' | 'avx2' | 'avx512' | 'best'; oneByOne?: boolean }) {
  const ctx = await model.createContext({ nSeq: 1, nCtx: 64, backend: opts.backend, threads: opts.threads, isa: opts.isa });
  try {
    if (!opts.oneByOne) return await ctx.decode(sequenceBatch(PROMPT, 0, 0, true));
    const out = new Float32Array(PROMPT.length * model.info.nVocab);
    for (let i = 0; i < PROMPT.length; i++) out.set(await ctx.decode(sequenceBatch([PROMPT[i]], 0, i)), i * model.info.nVocab);
    return out;
  } finally {
    ctx.dispose();
  }
}

// Tolerances. Float weights differ from the reference only by summation order: 1e-4 of
// the logit range, which catches any structural error (the forward code is shared by
// all types). Quantised weights use the same quantised activations in both passes, and
// each kernel matches its twin to ~1e-6 (test/kernels), but an activation that sits on a
// Q8 rounding boundary can round the other way after a differently ordered float sum
// upstream (softmax, RMSNorm); in these random-weight models one such flip moves the
// logits by up to ~2% of their range (measured: q8_0 9.9e-3, q6_k 2.1e-2). Hence 5e-2.
const TOL: Record<string, number> = { f32: 1e-4, f16: 1e-4, bf16: 1e-4, q8_0: 5e-2, q4_0: 5e-2, q4_k: 5e-2, q5_k: 5e-2, q6_k: 5e-2 };
const KQUANT = new Set(['q4_k', 'q5_k', 'q6_k']);

for (const arch of ['llama', 'bamboo'] as const) {
  for (const type of Object.keys(TOL)) {
    test(`${arch} ${type}: batched forward matches the reference forward`, async () => {
      const model = await Model.load(await tinyModel(arch, type, 7, KQUANT.has(type) ? 'small' : 'tiny'));
      try {
        if (KQUANT.has(type)) {
          const kinds = new Set(model.tensors.filter((t) => t.name.startsWith('blk.')).map((t) => t.typeName.toLowerCase()));
          assert.ok(kinds.has(type), `the model really holds ${type} matrices (has ${[...kinds]})`);
        }
        const ref = await runPrompt(model, { backend: 'ref' });
        const opt = await runPrompt(model, { threads: 2 });
        const e = relErr(opt, ref);
        assert.ok(e < TOL[type], `relative logit error ${e} exceeds ${TOL[type]}`);
        // The logits must be real: finite and not all equal.
        assert.ok(ref.every(Number.isFinite));
        assert.ok(Math.max(...ref.slice(0, 100)) > Math.min(...ref.slice(0, 100)));
      } finally {
        model.dispose();
      }
    });
  }
}

test('prompt as one batch equals token-by-token decoding (gemm vs vec_dot paths)', async () => {
  const model = await Model.load(await tinyModel('bamboo', 'q4_0'));
  try {
    const batched = await runPrompt(model, {});
    const single = await runPrompt(model, { oneByOne: true });
    assert.ok(relErr(batched, single) < 5e-2);
  } finally {
    model.dispose();
  }
});

test('results do not depend on the thread count (bit-identical)', async () => {
  const model = await Model.load(await tinyModel('llama', 'q8_0'));
  try {
    const one = await runPrompt(model, { threads: 1 });
    const two = await runPrompt(model, { threads: 2 });
    const three = await runPrompt(model, { threads: 3 });
    assert.deepEqual(two, one);
    assert.deepEqual(three, one);
  } finally {
    model.dispose();
  }
});

test('every instruction set agrees with the reference', async () => {
  const model = await Model.load(await tinyModel('llama', 'q4_0'));
  try {
    const ref = await runPrompt(model, { backend: 'ref' });
    for (const isa of ['scalar', 'avx2', 'avx512'] as const) {
      const e = relErr(await runPrompt(model, { isa }), ref);
      assert.ok(e < 5e-2, `${isa}: relative error ${e}`);
    }
  } finally {
    model.dispose();
  }
});

test('sequences batched together decode as if alone', async () => {
  const model = await Model.load(await tinyModel('bamboo', 'f16'));
  const nv = model.info.nVocab;
  const a = [1, 5, 9, 200, 31];
  const b = [1, 77, 300];
  try {
    const solo = async (toks: number[]) => {
      const ctx = await model.createContext({ nSeq: 1, nCtx: 32 });
      const l = await ctx.decode(sequenceBatch(toks, 0, 0, true));
      ctx.dispose();
      return l;
    };
    const la = await solo(a);
    const lb = await solo(b);
    // Interleave both sequences (seq 0 and seq 1) in one batch, prompts of different lengths.
    const ctx = await model.createContext({ nSeq: 2, nCtx: 32 });
    const rows: [number, number, number][] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i < a.length) rows.push([a[i], i, 0]);
      if (i < b.length) rows.push([b[i], i, 1]);
    }
    const batch: DecodeBatch = {
      tokens: Int32Array.from(rows.map((r) => r[0])),
      positions: Int32Array.from(rows.map((r) => r[1])),
      seqIds: Int32Array.from(rows.map((r) => r[2])),
      wantLogits: new Uint8Array(rows.length).fill(1),
    };
    const both = await ctx.decode(batch);
    rows.forEach(([, pos, seq], j) => {
      const mine = both.subarray(j * nv, (j + 1) * nv);
      const alone = (seq === 0 ? la : lb).subarray(pos * nv, (pos + 1) * nv);
      assert.ok(relErr(mine, alone) < 1e-4, `row ${j} (seq ${seq}, pos ${pos})`);
    });
    assert.equal(ctx.seqLength(0), a.length);
    assert.equal(ctx.seqLength(1), b.length);
    // Truncate and re-decode: the cache is reused from that point.
    ctx.truncate(0, 2);
    const again = await ctx.decode(sequenceBatch(a.slice(2), 0, 2, true));
    assert.ok(relErr(again.subarray(0, nv), la.subarray(2 * nv, 3 * nv)) < 1e-4);
    ctx.dispose();
  } finally {
    model.dispose();
  }
});

test('decode refuses bad batches with clear errors and leaves the cache intact', async () => {
  const model = await Model.load(await tinyModel('llama', 'f32'));
  const ctx = await model.createContext({ nSeq: 2, nCtx: 8, nBatch: 4 });
  try {
    await ctx.decode(sequenceBatch([1, 2], 0, 0));
    const bad = async (b: DecodeBatch, re: RegExp) =>
      assert.rejects(ctx.decode(b), (e: Error & { code?: string }) => re.test(e.message) && e.code === 'RS_ERR_INVALID_ARG');
    await bad(sequenceBatch([3], 0, 5), /position 5 .* must be 2/);
    await bad(sequenceBatch([model.info.nVocab], 0, 2), /outside the vocabulary/);
    await bad(sequenceBatch([3], 2, 0), /sequence id 2/);
    await bad(sequenceBatch([1, 2, 3, 4, 5], 1, 0), /takes 1 to 4/);
    assert.equal(ctx.seqLength(0), 2, 'a refused batch changes nothing');
    await ctx.decode(sequenceBatch([3, 4, 5, 6], 0, 2));
    await ctx.decode(sequenceBatch([7, 8], 0, 6));
    await bad(sequenceBatch([9], 0, 8), /is full/);
    // One decode at a time per context.
    const first = ctx.decode(sequenceBatch([1], 1, 0));
    await assert.rejects(ctx.decode(sequenceBatch([1], 1, 1)), /already running/);
    await first;
    assert.throws(() => model.dispose(), /contexts are alive/);
  } finally {
    ctx.dispose();
    model.dispose();
  }
});

// A dense Q4_0 model's matrices are repacked eight rows at a time at load (dense_repack.cpp)
// and multiplied by rs_gemm_x8 kernels: a decode (one row) and a prompt (many rows) must
// still give a row the same bits, at any thread count (the kernels keep one order per
// output; kernels/cpu/avx2_q4_0x8.c), or a request's text would depend on its neighbours.
test('dense Q4_0 (8-row repacked): token by token == prompt batch == other thread counts, bit for bit', async () => {
  const model = await Model.load(await tinyModel('llama', 'q4_0'));
  const nv = model.info.nVocab;
  const toks = [1, 5, 9, 200, 31, 7, 64, 3, 11];
  try {
    const batched = async (threads: number) => {
      const ctx = await model.createContext({ nSeq: 1, nCtx: 32, threads });
      const l = await ctx.decode(sequenceBatch(toks, 0, 0, true));
      ctx.dispose();
      return l;
    };
    const ctx = await model.createContext({ nSeq: 1, nCtx: 32, threads: 2 });
    const one: Float32Array[] = [];
    for (let i = 0; i < toks.length; i++) one.push(await ctx.decode(sequenceBatch([toks[i]], 0, i)));
    ctx.dispose();
    const two = await batched(2);
    toks.forEach((_, i) => assert.deepEqual(two.subarray(i * nv, (i + 1) * nv), one[i], `position ${i}`));
    assert.deepEqual(await batched(1), two);
    assert.deepEqual(await batched(3), two);
  } finally {
    model.dispose();
  }
});
