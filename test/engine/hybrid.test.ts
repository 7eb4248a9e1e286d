// The hybrid CPU/GPU runtime on the emulated device: the same tokens as the CPU at any
// share of the FFN on the device, bit for bit where every neuron is on one side, the
// device memory as `place` accounts it, and every refusal with its reason.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel } from '../../server/cli/make-model.js';
import { Model, sequenceBatch, type Context } from '../../server/engine/engine.js';
import type { ContextOptions, DecodeBatch } from '../../server/engine/types.js';
import { describeModelFile } from '../../server/profiler/model-file.js';
import { planPlacement } from '../../server/profiler/placement-plan.js';
import { placementFileFromPlan, writePlacementFile, writePowerInferGpuIdx } from '../../server/profiler/placement-format.js';
import { vramCosts, type VramCosts } from '../../server/profiler/vram-costs.js';
import { relErr } from './compare.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-hybrid-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const made = new Map<string, Promise<string>>();
function model(kind: 'bamboo' | 'powerinfer' | 'powerinfer-f32'): Promise<string> {
  const out = join(dir, `${kind}.gguf`);
  if (!made.has(kind)) {
    made.set(
      kind,
      (kind === 'bamboo'
        ? makeModel({ arch: 'bamboo', size: 'small', type: 'q4_0', seed: 7, out })
        : makeModel({ arch: 'llama', size: 'small', type: kind === 'powerinfer' ? 'q4_0' : 'f32', seed: 3, out, sparse: true, sparsity: 0.9, predictor: 'lowrank' })
      ).then(() => out),
    );
  }
  return made.get(kind)!;
}

const PROMPT = [1, 17, 42, 99, 7, 300, 12, 5];
const N_CTX = 64;

/** Greedy generation: the prompt in one step, then `n` tokens one per step; every step's logits. */
async function greedy(ctx: Context, n = 10): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  let l = await ctx.decode(sequenceBatch(PROMPT, 0, 0));
  const tokens: number[] = [];
  const logits = [l];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let v = 1; v < l.length; v++) if (l[v] > l[best]) best = v;
    tokens.push(best);
    l = await ctx.decode(sequenceBatch([best], 0, PROMPT.length + i));
    logits.push(l);
  }
  return { tokens, logits };
}

async function withContext<T>(m: Model, opts: Partial<ContextOptions>, fn: (c: Context) => Promise<T>): Promise<T> {
  // Every row sparse on the CPU too, as on a device (the crossover to dense is a CPU choice).
  const ctx = await m.createContext({ nSeq: 1, nCtx: N_CTX, nBatch: 64, threads: 2, sparseMaxBatch: 65536, ...opts });
  try {
    return await fn(ctx);
  } finally {
    ctx.dispose();
  }
}

async function costsOf(path: string, o: { nSeq?: number; nCtx?: number; nBatch?: number; predictors?: boolean } = {}): Promise<VramCosts> {
  return vramCosts(await describeModelFile(path), { nCtx: o.nCtx ?? N_CTX, nSeq: o.nSeq ?? 1, nBatch: o.nBatch ?? 64, predictors: o.predictors });
}

/** A budget with about `share` of the FFN's bytes left for hot neurons (plus the per-layer rounding). */
function budgetFor(c: VramCosts, share: number): number {
  return share === 0 ? c.fixedTotal : c.fixedTotal + Math.floor(share * c.ffnTotal) + 256 * c.neuronCost.length;
}

// At 0% and 100% of the FFN on the device every neuron is summed on one side, in the
// CPU's order: bit-identical. In between, each row's FFN output is (device part) + (CPU
// part) instead of one sum in neuron order: rounding differs in the last bits (~5e-7).
// With Q4_0 weights the next layer quantises its input to Q8_0, and such a difference
// can move one value across a rounding boundary: measured on this file (exact mode, 25%,
// step 0), one quantised input of layer 1's q projection differed, that row's output by
// 3.1e-3, the logits by 9.5e-3 of their range. In predictor mode a score that lands on
// the other side of the threshold switches a neuron (6.0e-3 at 25%). Tokens still agree.
const TOLERANCE = { bamboo: 2e-2, powerinfer: 2e-2 } as const;

for (const kind of ['bamboo', 'powerinfer'] as const) {
  test(`${kind}: the emulated device gives the CPU's tokens with 0%, 25%, 50% and 100% of the FFN on it`, async () => {
    const path = await model(kind);
    const m = await Model.load(path);
    try {
      const cpu = await withContext(m, { device: 'cpu' }, (c) => greedy(c));
      const costs = await costsOf(path);
      for (const share of [0, 0.25, 0.5, 1]) {
        const r = await withContext(m, { device: 'emu', vramBudget: budgetFor(costs, share) }, async (c) => {
          const g = await greedy(c);
          return { ...g, info: c.device(), hs: c.hybridStats(), sp: c.sparsity() };
        });
        const where = `${kind} at ${share * 100}%`;
        assert.deepEqual(r.tokens, cpu.tokens, where);
        const onDevice = r.info.bytes.ffn / r.info.ffnAll;
        assert.ok(Math.abs(onDevice - share) < 0.02, `${where}: ${onDevice} of the FFN on the device`);
        if (share === 0 || share === 1) {
          r.logits.forEach((l, i) => assert.deepEqual(l, cpu.logits[i], `${where}, step ${i}: bit for bit`));
        } else {
          r.logits.forEach((l, i) => assert.ok(relErr(l, cpu.logits[i]) < TOLERANCE[kind], `${where}, step ${i}: ${relErr(l, cpu.logits[i])}`));
        }
        // Each side computed its share of the neurons; nothing is computed twice.
        if (share === 0) assert.equal(r.hs.neuronsDevice, 0);
        if (share === 1) assert.equal(r.hs.neuronsHost, 0);
        if (share > 0 && share < 1) assert.ok(r.hs.neuronsDevice > 0 && r.hs.neuronsHost > 0, `${where}: both sides work`);
        assert.equal(r.hs.steps, 11);
        assert.equal(r.sp.sparseSteps, 11);
        // The one-token step is recorded the second time it comes and replayed from then on;
        // the prompt's shape comes once and runs op by op.
        assert.equal(r.hs.recordings, 1, where);
        assert.equal(r.hs.replayedSteps, 9, where);
      }
    } finally {
      m.dispose();
    }
  });
}

test('neurons computed per side add up to what the CPU computes alone (exact mode)', async () => {
  const path = await model('bamboo');
  const m = await Model.load(path);
  try {
    const pairs = async (opts: Partial<ContextOptions>) =>
      withContext(m, opts, async (c) => {
        await greedy(c, 4);
        const sp = c.sparsity();
        return sp.avgActiveRatio.reduce((s, r) => s + r * sp.totalRows * m.info.nFf, 0);
      });
    const cpu = await pairs({ device: 'cpu' });
    const half = await withContext(m, { device: 'emu', vramBudget: budgetFor(await costsOf(path), 0.5) }, async (c) => {
      await greedy(c, 4);
      const sp = c.sparsity();
      return { ...c.hybridStats(), active: sp.avgActiveRatio.reduce((s, r) => s + r * sp.totalRows * m.info.nFf, 0) };
    });
    // Each active neuron computed once, on one side: against the hybrid run's own active
    // set (the CPU-only run's can differ by a few neurons: see TOLERANCE above), which is
    // within a fraction of a percent of the CPU's.
    assert.equal(Math.round(half.active), half.neuronsDevice + half.neuronsHost);
    assert.ok(Math.abs(half.active - cpu) <= 0.002 * cpu, `${half.active} vs ${cpu}`);
  } finally {
    m.dispose();
  }
});

test('several sequences in one step and a prompt of more than 64 rows: the CPU\'s results (bit for bit at 0% and 100%)', async () => {
  const path = await model('powerinfer');
  const m = await Model.load(path);
  const nv = m.info.nVocab;
  const long = Array.from({ length: 70 }, (_, i) => (i * 37 + 11) % nv);
  const run = async (opts: Partial<ContextOptions>) =>
    withContext(m, { nSeq: 3, nCtx: 128, nBatch: 128, ...opts }, async (c) => {
      const out: Float32Array[] = [];
      // Sequence 0: a 70-row prompt (two row groups on the device); 1 and 2: short prompts.
      out.push(await c.decode(sequenceBatch(long, 0, 0, true)));
      const b: DecodeBatch = {
        tokens: Int32Array.from([5, 9, 2, 8, 3]),
        positions: Int32Array.from([0, 1, 0, 1, 70]),
        seqIds: Int32Array.from([1, 1, 2, 2, 0]),
        wantLogits: Uint8Array.from([1, 1, 1, 1, 1]),
      };
      out.push(await c.decode(b));
      return out;
    });
  try {
    const cpu = await run({ device: 'cpu' });
    const costs = await costsOf(path, { nSeq: 3, nCtx: 128, nBatch: 128 });
    for (const share of [0, 0.5, 1]) {
      const emu = await run({ device: 'emu', vramBudget: budgetFor(costs, share) });
      if (share === 0.5) {
        emu.forEach((l, i) => {
          for (let r = 0; r < l.length / nv; r++) {
            const a = l.subarray(r * nv, (r + 1) * nv), b = cpu[i].subarray(r * nv, (r + 1) * nv);
            assert.ok(relErr(a, b) < TOLERANCE.powerinfer, `step ${i} row ${r}: ${relErr(a, b)}`);
          }
        });
      } else {
        assert.deepEqual(emu, cpu, `${share * 100}%`);
      }
    }
  } finally {
    m.dispose();
  }
});

test('recorded steps: replayed only for a step of the same shape, the same bits as op by op', async () => {
  const path = await model('powerinfer');
  const m = await Model.load(path);
  // Two sequences; steps of two rows that differ only in which rows want logits, and the
  // per-step values (tokens, positions) change at every replay.
  const steps = (k: number): DecodeBatch => ({
    tokens: Int32Array.from([3 + k, 40 + 2 * k]),
    positions: Int32Array.from([k, k]),
    seqIds: Int32Array.from([0, 1]),
    wantLogits: Uint8Array.from(k % 3 === 2 ? [0, 1] : [1, 1]),
  });
  const run = async () =>
    withContext(m, { device: 'emu', nSeq: 2, vramBudget: budgetFor(await costsOf(path, { nSeq: 2 }), 0.5) }, async (c) => {
      const out: Float32Array[] = [];
      for (let k = 0; k < 9; k++) out.push(await c.decode(steps(k)));
      return { out, hs: c.hybridStats() };
    });
  try {
    const recorded = await run();
    process.env.RELU_SERVE_DEVICE_GRAPHS = '0';
    const plain = await run().finally(() => delete process.env.RELU_SERVE_DEVICE_GRAPHS);
    assert.equal(plain.hs.replayedSteps, 0);
    assert.equal(plain.hs.recordings, 0);
    // Shapes [1,1] (steps 0,1,3,4,6,7) and [0,1] (2,5,8): each recorded at its second step
    // and replayed from it on.
    assert.equal(recorded.hs.recordings, 2);
    assert.equal(recorded.hs.replayedSteps, 9 - 2); // all but the first of each shape
    recorded.out.forEach((l, k) => assert.deepEqual(l, plain.out[k], `step ${k}`));
    assert.equal(recorded.out[2].length, m.info.nVocab);
    assert.equal(recorded.out[3].length, 2 * m.info.nVocab);
  } finally {
    m.dispose();
  }
});

test('results do not depend on the thread count or the device\'s delays', async () => {
  const path = await model('powerinfer');
  const m = await Model.load(path);
  try {
    const budget = budgetFor(await costsOf(path), 0.5);
    const one = await withContext(m, { device: 'emu', vramBudget: budget, threads: 1 }, (c) => greedy(c, 6));
    const two = await withContext(m, { device: 'emu', vramBudget: budget, threads: 2 }, (c) => greedy(c, 6));
    const slow = await withContext(m, { device: 'emu', vramBudget: budget, threads: 2, emuLatencyUs: 200 }, async (c) => {
      const g = await greedy(c, 6);
      return { ...g, hs: c.hybridStats() };
    });
    assert.deepEqual(two.logits, one.logits);
    assert.deepEqual(slow.logits, one.logits);
    // The delay is the device's: its busy time grows, the CPU's FFN time does not.
    assert.ok(slow.hs.deviceBusyMs + slow.hs.deviceWaitMs > 0);
    assert.ok(slow.hs.wallMs >= slow.hs.hostFfnMs);
  } finally {
    m.dispose();
  }
});

test('device memory: what the engine allocates equals place\'s accounting, category by category', async () => {
  for (const kind of ['bamboo', 'powerinfer', 'powerinfer-f32'] as const) {
    const path = await model(kind);
    const m = await Model.load(path);
    try {
      for (const shape of [{ nSeq: 1, nCtx: 64, nBatch: 64 }, { nSeq: 3, nCtx: 100, nBatch: 200 }]) {
        const costs = await costsOf(path, shape);
        const budget = budgetFor(costs, 0.4);
        const info = await withContext(m, { device: 'emu', vramBudget: budget, ...shape }, async (c) => c.device());
        const where = `${kind} ${JSON.stringify(shape)}`;
        const { ffn, ...fixed } = info.bytes;
        assert.deepEqual(fixed, costs.fixed, where);
        assert.equal(info.ffnAll, costs.ffnTotal, where);
        assert.equal(ffn, info.hotNeurons.reduce((s, k, l) => s + Math.ceil((k * costs.neuronCost[l]) / 256) * 256, 0), where);
        assert.equal(info.used, costs.fixedTotal + ffn, where);
        assert.ok(info.used <= budget, `${where}: ${info.used} <= ${budget}`);
        assert.equal(info.budget, budget);
        assert.equal(info.budgetFrom, 'bytes');
        assert.match(info.placementSource, /^uniform: no activation statistics/);
        // The uniform choice: the same count in every layer, as many as fit.
        assert.ok(info.hotNeurons.every((k) => k === info.hotNeurons[0]));
        const next = info.hotNeurons.reduce((s, k, l) => s + Math.ceil(((k + 1) * costs.neuronCost[l]) / 256) * 256, 0);
        assert.ok(costs.fixedTotal + next > budget || info.hotNeurons[0] === m.info.nFf, `${where}: one more per layer would not fit`);
      }
    } finally {
      m.dispose();
    }
  }
});

test('a budget as a share of free memory, and the refusals: too small, more than the device has', async () => {
  const path = await model('powerinfer');
  const m = await Model.load(path);
  try {
    const costs = await costsOf(path);
    const info = await withContext(m, { device: 'emu', vramBudgetFraction: 0.5, emuMemory: 64 << 20 }, async (c) => c.device());
    assert.equal(info.budget, 32 << 20);
    assert.equal(info.budgetFrom, '50% of free memory');
    assert.equal(info.memoryTotal, 64 << 20);
    assert.equal(info.bytes.ffn, info.ffnAll, 'a small model fits whole');
    await assert.rejects(
      m.createContext({ nSeq: 1, nCtx: N_CTX, nBatch: 64, device: 'emu', vramBudget: costs.fixedTotal - 1 }),
      (e: Error & { code?: string }) =>
        e.code === 'RS_ERR_INVALID_ARG' &&
        /VRAM budget .* is too small: the fixed part needs .*\(\d+ bytes: attention .*, predictors .*, norms .*, output .*, kv_cache .*, index .*, workspace .*\)/.test(e.message) &&
        /raise --vram-budget/.test(e.message),
    );
    await assert.rejects(
      m.createContext({ nSeq: 1, nCtx: N_CTX, device: 'emu', vramBudget: 2 * 2 ** 30, emuMemory: 2 ** 30 }),
      /VRAM budget 2048.00 MiB is more than the device's free memory/,
    );
    await assert.rejects(
      m.createContext({ nSeq: 1, nCtx: N_CTX, device: 'cuda' }),
      /device 'cuda' is not available|no CUDA device/,
    );
    // Counting true activations is a CPU job; SiLU models and dense mode are refused on a device.
    await withContext(m, { device: 'emu', vramBudget: budgetFor(costs, 0.5) }, async (c) => {
      assert.throws(() => c.setActivationCounting(true), /activation counting runs on the CPU only/);
    });
    await assert.rejects(m.createContext({ nSeq: 1, nCtx: N_CTX, device: 'emu', ffnMode: 'dense' }), /FFN mode 'dense' runs on the CPU only/);
  } finally {
    m.dispose(); // refused contexts leave nothing alive: the model can go
  }
  const silu = await Model.load(await makeSilu());
  try {
    await assert.rejects(silu.createContext({ nSeq: 1, nCtx: 8, device: 'emu' }), /splits ReLU-type FFNs .* activation is swiglu; use --device cpu/);
  } finally {
    silu.dispose();
  }
});

async function makeSilu(): Promise<string> {
  const out = join(dir, 'silu.gguf');
  await makeModel({ arch: 'llama', size: 'tiny', type: 'f32', seed: 1, out });
  return out;
}

test('placements: from place (.rspl), PowerInfer\'s .gpuidx read back as written, and the refusals', async () => {
  const path = await model('powerinfer');
  const m = await Model.load(path);
  try {
    const desc = await describeModelFile(path);
    // Counts: the true activations over a few tokens (the profiler's pass, by hand).
    const counts = await withContext(m, { device: 'cpu' }, async (c) => {
      c.setActivationCounting(true);
      await c.decode(sequenceBatch(PROMPT.concat(PROMPT.map((t) => t + 100)), 0, 0));
      return c.activationCounts().layers.map((l) => Float64Array.from(l));
    });
    const stats = { identity: desc.identity, tokens: 16, source: 'test', counts };
    const costs = await costsOf(path);
    const budget = budgetFor(costs, 0.3);
    const plan = planPlacement(desc, stats, { budget, nCtx: N_CTX, nSeq: 1, nBatch: 64 });
    const rspl = join(dir, 'p.rspl');
    writePlacementFile(rspl, placementFileFromPlan(plan));
    const fromFile = await withContext(m, { device: 'emu', placement: rspl }, async (c) => ({ info: c.device(), g: await greedy(c, 4) }));
    assert.equal(fromFile.info.budget, budget, "the placement's budget when none is given");
    assert.equal(fromFile.info.budgetFrom, 'placement file');
    assert.equal(fromFile.info.placementSource, `file ${rspl}`);
    assert.deepEqual(fromFile.info.hotNeuronIds.map((a) => [...a]), plan.layers.map((l) => [...l.gpuNeurons]));
    assert.equal(fromFile.info.bytes.ffn, plan.ffnBytes);
    // The same placement given as ids (as the server does when it solves from statistics).
    const asIds = await withContext(m, { device: 'emu', vramBudget: budget, hotNeurons: plan.layers.map((l) => Int32Array.from(l.gpuNeurons)), hotSource: 'stats' }, async (c) => greedy(c, 4));
    assert.deepEqual(asIds.logits, fromFile.g.logits);

    // PowerInfer's index, solved in its groups, reads back as the same placement.
    const grouped = placementFileFromPlan(planPlacement(desc, stats, { budget: budgetFor(costs, 0.6), nCtx: N_CTX, nBatch: 64, group: 256 }));
    assert.ok(grouped.layers.some((l) => l.gpuNeurons.length > 0 && l.gpuNeurons.length < l.nFf), 'a partial layer');
    const gpuidx = join(dir, 'm.gguf.generated.gpuidx');
    await writePowerInferGpuIdx(gpuidx, grouped);
    const back = await withContext(m, { device: 'emu', placement: gpuidx, vramBudget: grouped.budget }, async (c) => c.device());
    assert.deepEqual(back.hotNeuronIds.map((a) => [...a]), grouped.layers.map((l) => [...l.gpuNeurons]));

    // Refusals: another model's placement, a corrupt file, a placement over the budget.
    const other = join(dir, 'other.gguf');
    await makeModel({ arch: 'llama', size: 'small', type: 'q4_0', seed: 4, out: other, sparse: true, sparsity: 0.9, predictor: 'lowrank' });
    const om = await Model.load(other);
    try {
      await assert.rejects(om.createContext({ nSeq: 1, nCtx: N_CTX, nBatch: 64, device: 'emu', placement: rspl }), /was made for a different model/);
    } finally {
      om.dispose();
    }
    const bad = readFileSync(rspl);
    bad[bad.length - 9] ^= 1;
    const corrupt = join(dir, 'bad.rspl');
    writeFileSync(corrupt, bad);
    await assert.rejects(m.createContext({ nSeq: 1, nCtx: N_CTX, nBatch: 64, device: 'emu', placement: corrupt }), (e: Error & { code?: string }) => e.code === 'RS_ERR_FORMAT' && /checksum mismatch/.test(e.message));
    await assert.rejects(
      m.createContext({ nSeq: 1, nCtx: N_CTX, nBatch: 64, device: 'emu', placement: rspl, vramBudget: costs.fixedTotal + 1000 }),
      /the placement \(file .*p\.rspl\) puts .* of FFN neurons on the device, but the budget .* leaves 1000 bytes/,
    );
    // Sized for another context: more slots need more KV cache, so the same budget holds less.
    await assert.rejects(m.createContext({ nSeq: 4, nCtx: N_CTX, nBatch: 64, device: 'emu', placement: rspl }), /puts .* of FFN neurons on the device, but the budget/);
    await assert.rejects(m.createContext({ nSeq: 1, nCtx: N_CTX, device: 'emu', placement: join(dir, 'missing.rspl') }), (e: Error & { code?: string }) => e.code === 'RS_ERR_IO');
  } finally {
    m.dispose();
  }
});
