// Building a runtime from a GGUF file (server/scheduler/load.ts) on a tiny synthetic model
// (made in a temporary folder, loaded in milliseconds): the chat template choice, the id,
// context and batch sizes, the meta of GET /v1/models, the sparsity figures, the file
// guard in front of decode (and none without mmap), the emulated device's hybrid runtime
// (its log line, meta and figures), and loadRuntime making the default model when asked.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, open, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { makeModel } from '../../server/cli/make-model.js';
import { createRuntime, describeDevice, loadRuntime, pickTemplate } from '../../server/scheduler/load.js';
import { DEFAULT_CHAT_TEMPLATE } from '../../server/chat/template.js';
import { ModelFileChangedError } from '../../server/scheduler/model-file-guard.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { ServeConfig } from '../../server/config.js';
import type { DeviceInfo } from '../../server/engine/types.js';
import { describeModelFile } from '../../server/profiler/model-file.js';
import { writeStatsFile } from '../../server/profiler/stats-format.js';
import { planPlacement } from '../../server/profiler/placement-plan.js';

let dir = '';
let model = '';
const TOKS = { bosToken: '<s>', eosToken: '</s>' };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'relu-load-'));
  // Upper-case extension: the id drops it all the same.
  model = join(dir, 'Tiny-Model.GGUF');
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'f32', seed: 3, out: model });
});
after(() => rm(dir, { recursive: true, force: true }));

/** A prompt's tokens at positions from..from+n-1 of sequence 0, logits for the last. */
function batch(tokens: number[], from = 0) {
  return {
    tokens: Int32Array.from(tokens),
    positions: Int32Array.from(tokens, (_, i) => from + i),
    seqIds: new Int32Array(tokens.length),
    wantLogits: Uint8Array.from(tokens, (_, i) => (i === tokens.length - 1 ? 1 : 0)),
  };
}

function logger() {
  const lines: [string, unknown, string][] = [];
  const at = (level: string) => (o: unknown, m?: string) => void lines.push(typeof o === 'string' ? [level, null, o] : [level, o, m ?? '']);
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

test('chat template: the file given, else the model\'s own (if not blank), else the built-in default', async () => {
  const file = join(dir, 'chat.jinja');
  await writeFile(file, '{% for m in messages %}{{ m.content }}{% endfor %}');
  const t = pickTemplate(file, 'ignored', TOKS);
  assert.deepEqual([t.origin, t.source], [`file ${file}`, '{% for m in messages %}{{ m.content }}{% endfor %}']);
  assert.throws(() => pickTemplate(join(dir, 'none.jinja'), null, TOKS), (e: Error) => e.message.startsWith(`cannot read chat template ${join(dir, 'none.jinja')}: ENOENT`));
  const m = pickTemplate(null, '{{ messages[0].content }}', TOKS);
  assert.deepEqual([m.origin, m.source], ['the model (tokenizer.chat_template)', '{{ messages[0].content }}']);
  for (const blank of [' \n', '', 42, undefined]) {
    const d = pickTemplate(undefined, blank, TOKS);
    assert.deepEqual([d.origin, d.source], ['the built-in default', DEFAULT_CHAT_TEMPLATE], String(blank));
  }
});

test('describeDevice: the CPU is just its type; a device lists its budget, bytes and the FFN share it holds', () => {
  assert.deepEqual(describeDevice({ device: 'cpu' } as DeviceInfo), { type: 'cpu' });
  const d: DeviceInfo = {
    device: 'cuda', name: 'GPU 0', memoryTotal: 100, memoryFree: 90, budget: 80, budgetFrom: '80% of free', used: 70,
    bytes: { attention: 1, predictors: 2, norms: 3, output: 4, kvCache: 5, index: 6, workspace: 7, ffn: 30 },
    ffnAll: 40, hotNeurons: [3, 4], hotNeuronIds: [], placementSource: 'stats file',
  };
  assert.deepEqual(describeDevice(d), {
    type: 'cuda', name: 'GPU 0', vram_budget: 80, vram_budget_from: '80% of free', vram_used: 70,
    vram_bytes: { attention: 1, predictors: 2, norms: 3, output: 4, kv_cache: 5, neuron_index: 6, workspace: 7, ffn: 30 },
    ffn_on_device: 0.75, hot_neurons: [3, 4], placement: 'stats file',
  });
  assert.equal(describeDevice({ ...d, ffnAll: 0, bytes: { ...d.bytes, ffn: 0 } }).ffn_on_device, 0);
});

const GREEDY = { temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: 1, logitBias: new Map() };

test('a CPU runtime: id from the file name, context capped at the training context, meta, a decode through the context', async () => {
  const { lines, log } = logger();
  const rt = await createRuntime({ modelPath: model, parallel: 2, ctxSize: 4096, threads: 1, log });
  try {
    assert.deepEqual(lines, [], 'nothing to say about a CPU runtime');
    assert.deepEqual([rt.id, rt.nCtx, rt.nSeq, rt.nBatch, rt.ctx.nSeq, rt.ctx.nCtx], ['Tiny-Model', 2048, 2, 512, 2, 2048]);
    assert.ok(Math.abs(rt.created - Date.now() / 1000) < 5);
    assert.deepEqual(rt.meta, {
      arch: 'bamboo', ffn_activation: 'drelu', ffn_activation_from: 'architecture', ffn_mode: 'exact', powerinfer: false,
      n_ctx_train: 2048, n_embd: 64, n_layer: 2, n_params: 610304, size: 2535040, chat_template: 'the built-in default', device: { type: 'cpu' },
    });
    assert.equal(rt.template.origin, 'the built-in default');
    assert.equal(rt.device, undefined);
    assert.equal(rt.fault!(), null);
    const prompt = rt.tokenizer.encode('in the beginning', true);
    assert.equal(rt.tokenizer.decode(prompt), 'in the beginning');
    assert.deepEqual(await rt.text!.encode('in the beginning', true, false, null), { tokens: prompt });
    const logits = await rt.ctx.decode(batch(prompt));
    assert.equal(logits.length, rt.tokenizer.nVocab);
    // Neurons computed: each layer's active ratio x rows x n_ff (192 in the tiny model).
    const first = rt.sparsity!()!;
    // The step parts for /metrics are the engine's own running totals.
    const parts = rt.stepParts!();
    assert.ok(parts.attention > 0 && parts.select > 0 && parts.ffn > 0 && parts.output > 0, JSON.stringify(parts));
    assert.equal(first.neuronsComputed.cpu, Math.round(first.activeNeuronRatioByLayer!.reduce((a, r) => a + r * prompt.length * 192, 0)));
    // The picker covers the whole vocabulary: greedy picks the best logit.
    const best = logits.indexOf(Math.max(...logits));
    assert.deepEqual(rt.makePicker({ settings: GREEDY, seed: 1, prompt, topLogprobs: null })(logits), { token: best });
    // Positions must continue a sequence; truncate goes back.
    await assert.rejects(rt.ctx.decode(batch([best], 1)), /must be/);
    rt.ctx.truncate(0, 1);
    assert.equal((await rt.ctx.decode(batch([best], 1))).length, rt.tokenizer.nVocab);
    const later = rt.stepParts!();
    for (const k of ['attention', 'select', 'ffn', 'output'] as const) assert.ok(later[k] > parts[k], `${k} grew with the next step`);
    // Exact FFN: neurons computed on the CPU, none on a device; the ratio is the layers' mean.
    const sp = rt.sparsity!()!;
    assert.equal(sp.activeNeuronRatioByLayer!.length, 2);
    assert.ok(Math.abs(sp.activeNeuronRatio - (sp.activeNeuronRatioByLayer![0] + sp.activeNeuronRatioByLayer![1]) / 2) < 1e-12);
    assert.ok(sp.activeNeuronRatio > 0 && sp.activeNeuronRatio < 1);
    assert.equal(sp.neuronsComputed.gpu, 0);
    assert.ok(sp.neuronsComputed.cpu > 0 && Number.isInteger(sp.neuronsComputed.cpu));
  } finally {
    rt.dispose();
  }
  const small = await createRuntime({ modelPath: model, alias: 'my-model', parallel: 1, ctxSize: 64, batchSize: 16, threads: 1, ffnMode: 'dense' });
  try {
    assert.deepEqual([small.id, small.nCtx, small.nBatch, small.meta.ffn_mode], ['my-model', 64, 16, 'dense']);
    assert.equal(small.sparsity!(), null);
  } finally {
    small.dispose();
  }
});

test('chat template file; a missing one fails the load', async () => {
  const file = join(dir, 'chat2.jinja');
  await writeFile(file, '{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token }}');
  const rt = await createRuntime({ modelPath: model, parallel: 1, ctxSize: 32, threads: 1, chatTemplateFile: file });
  try {
    assert.equal(rt.meta.chat_template, `file ${file}`);
    assert.equal(rt.template.render([{ role: 'user', content: 'x' }]), '<s>[x]</s>');
  } finally {
    rt.dispose();
  }
  // The model's own template (tokenizer.chat_template).
  const own = join(dir, 'with-template.gguf');
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'f32', seed: 3, out: own, chatTemplate: '{% for m in messages %}<{{ m.content }}>{% endfor %}' });
  const rt2 = await createRuntime({ modelPath: own, parallel: 1, ctxSize: 32, threads: 1 });
  try {
    assert.equal(rt2.meta.chat_template, 'the model (tokenizer.chat_template)');
    assert.equal(rt2.template.render([{ role: 'user', content: 'x' }]), '<x>');
  } finally {
    rt2.dispose();
  }
  await assert.rejects(createRuntime({ modelPath: model, parallel: 1, ctxSize: 32, threads: 1, chatTemplateFile: join(dir, 'no.jinja') }), /cannot read chat template/);
});

test('a model file changed in place: the runtime reports the fault and decode refuses; without mmap nothing is watched', async () => {
  for (const mmap of [undefined, false]) {
    // Only the final .gguf leaves the id.
    const copy = join(dir, `copy.gguf.${mmap}.gguf`);
    await copyFile(model, copy);
    const rt = await createRuntime({ modelPath: copy, parallel: 1, ctxSize: 32, threads: 1, mmap });
    try {
      assert.equal(rt.id, `copy.gguf.${mmap}`);
      const prompt = rt.tokenizer.encode('a', true);
      await utimes(copy, new Date(), new Date(Date.now() + 60_000));
      if (mmap === undefined) {
        assert.equal(rt.fault!(), 'the model file was modified while the server had it mapped; restart the server to load it again');
        await assert.rejects(rt.ctx.decode(batch(prompt)), (e: unknown) => e instanceof ModelFileChangedError && e.message === rt.fault!());
      } else {
        assert.equal(rt.fault!(), null);
        assert.equal((await rt.ctx.decode(batch(prompt))).length, rt.tokenizer.nVocab);
      }
    } finally {
      rt.dispose();
    }
  }
});

// The other half of the guard: a truncation that lands while a decode reads the mapping
// (the addon recovers the fault and rejects with RS_ERR_MODEL_FILE) must also become the
// runtime's refusal, with the reason a client and /health see. A small f32 ReLU model in
// dense mode reads its FFN from the mapping, most of a step; the loop goes on until a
// truncation landed inside a decode (the hardening test does the same through a server).
test('a model file truncated during a decode: the runtime turns the fault into its refusal', { skip: process.platform !== 'linux' && 'SIGBUS on truncated mappings: Linux' }, async () => {
  const src = join(dir, 'dense-relu-small.gguf');
  await makeModel({ arch: 'bamboo', size: 'small', type: 'f32', seed: 4, out: src });
  const prompt = Array.from({ length: 200 }, (_, i) => 3 + ((i * 37) % 250));
  let inside = 0;
  for (let attempt = 0; attempt < 40 && inside === 0; attempt++) {
    const file = join(dir, `victim-${attempt}.gguf`);
    await copyFile(src, file);
    const rt = await createRuntime({ modelPath: file, parallel: 1, ctxSize: 256, batchSize: 256, threads: 2, ffnMode: 'dense' });
    try {
      await rt.ctx.decode(batch(prompt.slice(0, 8)));
      rt.ctx.truncate(0, 0);
      const running = rt.ctx.decode(batch(prompt)).then(() => null, (e: Error) => e);
      await new Promise((r) => setTimeout(r, attempt % 4));
      await truncate(file, 4096);
      const err = await running;
      if (err === null) continue; // the decode had read everything before the truncation landed
      assert.ok(err instanceof ModelFileChangedError, `a raw error escaped: ${err.message}`);
      if (!/while a decode read it/.test(err.message)) continue; // caught by the check before the decode
      inside++;
      assert.equal(rt.fault!(), err.message);
      await assert.rejects(rt.ctx.decode(batch([1], 0)), (e: unknown) => e instanceof ModelFileChangedError && e.message === err.message);
    } finally {
      rt.dispose();
    }
  }
  assert.ok(inside > 0, 'no truncation landed inside a decode in 40 tries');
});

test('the emulated device: a hybrid runtime, logged (when there is a log), described in meta, with device and host neuron counts', async () => {
  const quiet = await createRuntime({
    modelPath: model, parallel: 1, ctxSize: 32, batchSize: 32, threads: 1,
    device: { device: 'emu', vramBudget: '2MiB', placement: null, stats: null, emuMemory: 64 * 2 ** 20 },
  });
  quiet.dispose();
  const { lines, log } = logger();
  // The fixed part needs 1.83 MiB of this model; 2 MiB leaves room for part of the FFN.
  const rt = await createRuntime({
    modelPath: model, parallel: 1, ctxSize: 32, batchSize: 32, threads: 1, log,
    device: { device: 'emu', vramBudget: '2MiB', placement: null, stats: null, emuMemory: 64 * 2 ** 20 },
  });
  try {
    const info = rt.device!.info;
    assert.equal(info.device, 'emu');
    const share = info.bytes.ffn / info.ffnAll;
    assert.ok(share > 0 && share < 1, `${share}`);
    assert.deepEqual(rt.meta.device, describeDevice(info));
    const hybrid = lines.filter((l) => l[2].startsWith('hybrid runtime on '));
    assert.equal(hybrid.length, 1);
    assert.equal(hybrid[0][0], 'info');
    assert.match(hybrid[0][2], new RegExp(`^hybrid runtime on emulated device \\(64 MiB, 0 us per operation\\): [0-9.]+ MiB of a 2.00 MiB budget \\(bytes\\), ${(100 * share).toFixed(1)}% of the FFN on the device; hot neurons: uniform`));
    assert.deepEqual(hybrid[0][1], { device: info.name, budget: info.budget, used: info.used, bytes: info.bytes, ffnOnDevice: share, hotNeurons: info.hotNeurons });
    await rt.ctx.decode(batch(rt.tokenizer.encode('in the beginning', true)));
    const stats = rt.device!.stats();
    assert.ok(stats.neuronsDevice > 0 && stats.neuronsHost > 0);
    const sp = rt.sparsity!()!;
    assert.deepEqual(sp.neuronsComputed, { gpu: stats.neuronsDevice, cpu: stats.neuronsHost });
    assert.ok(Math.abs(sp.activeNeuronRatio - (sp.activeNeuronRatioByLayer![0] + sp.activeNeuronRatioByLayer![1]) / 2) < 1e-12);
  } finally {
    rt.dispose();
  }
});

test('loadRuntime: a missing model is an error unless the default model is to be made; the config is passed on', async () => {
  const { lines, log } = logger();
  const cfg = (over: Partial<ServeConfig>): ServeConfig => ({
    model: join(dir, 'new', 'sub', 'default.gguf'), makeModelIfMissing: null, alias: null, parallel: 1, ctxSize: 48, threads: 1, batchSize: 24,
    chatTemplate: null, ffnActivation: 'auto', ffnMode: 'auto', sparseThreshold: null, sparseMaxBatch: 8, mmap: true, downInt8: false, textTimeoutMs: 1000,
    device: 'cpu', vramBudget: null, placement: null, stats: null, emuMemory: null, emuLatencyUs: 0, ...over,
  } as unknown as ServeConfig);
  await assert.rejects(loadRuntime(cfg({}), log as unknown as Logger), { message: `model file ${join(dir, 'new', 'sub', 'default.gguf')} does not exist` });
  assert.equal(existsSync(join(dir, 'new')), false);
  let rt: ModelRuntime | null = null;
  try {
    rt = await loadRuntime(cfg({ makeModelIfMissing: 'tiny', alias: 'dflt', ffnMode: 'dense', mmap: false }), log as unknown as Logger);
    assert.deepEqual(lines.filter((l) => l[2] === 'model file missing: making the default model').map((l) => l[1]), [{ model: join(dir, 'new', 'sub', 'default.gguf'), size: 'tiny' }]);
    assert.deepEqual([rt.id, rt.nCtx, rt.nSeq, rt.nBatch, rt.meta.ffn_mode, rt.meta.arch], ['dflt', 48, 1, 24, 'dense', 'bamboo']);
    // mmap false: a change to the file is not watched.
    await utimes(join(dir, 'new', 'sub', 'default.gguf'), new Date(), new Date(Date.now() + 60_000));
    assert.equal(rt.fault!(), null);
  } finally {
    rt?.dispose();
  }
  // An existing file is loaded as it is (the f32 model, not a new q4_0 one); device settings are passed on.
  const emu = await loadRuntime(cfg({ model, makeModelIfMissing: 'tiny', device: 'emu', vramBudget: '2MiB', emuMemory: '64MiB' } as Partial<ServeConfig>), log as unknown as Logger);
  try {
    assert.equal(emu.meta.size, 2535040);
    assert.equal(lines.filter((l) => l[2] === 'model file missing: making the default model').length, 1);
    assert.equal(emu.device!.info.name, 'emulated device (64 MiB, 0 us per operation)');
  } finally {
    emu.dispose();
  }
});

test('without mmap the weights are a private copy: writing into the file changes nothing', async () => {
  const copy = join(dir, 'private.gguf');
  await copyFile(model, copy);
  const rt = await createRuntime({ modelPath: copy, parallel: 1, ctxSize: 32, threads: 1, mmap: false });
  try {
    const prompt = rt.tokenizer.encode('in the beginning', true);
    const before = await rt.ctx.decode(batch(prompt));
    // Overwrite the last half of the file (tensor data) in place, same size.
    const size = (await stat(copy)).size;
    const f = await open(copy, 'r+');
    await f.write(Buffer.alloc(size >> 1, 0x7f), 0, size >> 1, size - (size >> 1));
    await f.close();
    rt.ctx.truncate(0, 0);
    assert.deepEqual(await rt.ctx.decode(batch(prompt)), before);
  } finally {
    rt.dispose();
  }
});

test('the text worker gets the time budget given', async () => {
  const rt = await createRuntime({ modelPath: model, parallel: 1, ctxSize: 32, threads: 1, textTimeoutMs: 1 });
  try {
    await assert.rejects(rt.text!.encode('in the beginning '.repeat(20000), true, false, null), /took longer than 1 ms/);
  } finally {
    rt.dispose();
  }
});

test('device settings: a note when no GPU is found for --device auto; statistics placed at load within the device memory', async () => {
  const { lines, log } = logger();
  const auto = { device: 'auto' as const, vramBudget: '1GiB', placement: null, stats: null };
  const rt = await createRuntime({ modelPath: model, parallel: 1, ctxSize: 32, threads: 1, log, device: auto });
  try {
    // auto follows the addon's GPU count: the CPU with a note where there is none, the
    // CUDA device where there is one (so a lost count fails on a GPU machine).
    const { native } = await import('../../server/engine/binding.js');
    if (native.cuda.devices() === 0) {
      assert.equal(rt.device, undefined);
      assert.deepEqual(lines.map((l) => [l[0], l[2]]), [['warn', 'no GPU found: running on the CPU; --vram-budget not used']]);
    } else {
      assert.equal(rt.device?.info.device, 'cuda');
    }
  } finally {
    rt.dispose();
  }
  (await createRuntime({ modelPath: model, parallel: 1, ctxSize: 32, threads: 1, device: auto })).dispose();
  const desc = await describeModelFile(model);
  const counts = Array.from({ length: desc.nLayer }, (_, l) => Float64Array.from({ length: desc.nFf }, (_, i) => (i * 7 + l) % 97));
  const statsPath = join(dir, 'tiny.rsst');
  writeStatsFile(statsPath, { identity: desc.identity, tokens: 100, source: 'test', counts });
  // No budget given: 90% of the (emulated) device's free memory.
  const memory = 2.25 * 2 ** 20;
  const hybrid = await createRuntime({
    modelPath: model, parallel: 1, ctxSize: 32, batchSize: 32, threads: 1,
    device: { device: 'emu', vramBudget: null, placement: null, stats: statsPath, emuMemory: memory },
  });
  try {
    const plan = planPlacement(desc, { identity: desc.identity, tokens: 100, source: 'test', counts }, { budget: Math.floor(0.9 * memory), nCtx: 32, nSeq: 1, nBatch: 32 });
    const ids = hybrid.device!.info.hotNeuronIds.map((a) => [...a]);
    assert.deepEqual(ids, plan.layers.map((l) => [...l.gpuNeurons]));
    assert.ok(ids[0].length > 0 && ids[0].length < desc.nFf, `${ids[0].length}`);
  } finally {
    hybrid.dispose();
  }
});

test('a PowerInfer Q4_0 file: 8-bit down projection only when asked; its predictors count in a placement solved at load', async () => {
  const sparse = join(dir, 'sparse.gguf');
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'q4_0', seed: 3, out: sparse, sparse: true });
  const logits = async (downInt8?: boolean) => {
    const rt = await createRuntime({ modelPath: sparse, parallel: 1, ctxSize: 32, threads: 1, downInt8 });
    try {
      return await rt.ctx.decode(batch(rt.tokenizer.encode('in the beginning', true)));
    } finally {
      rt.dispose();
    }
  };
  const [byDefault, f32, int8] = [await logits(), await logits(false), await logits(true)];
  assert.deepEqual(byDefault, f32);
  assert.notDeepEqual(byDefault, int8);
  // ffn_mode auto uses the file's predictors, which take device memory: fewer hot neurons
  // fit in 1080 KiB than without them (24/23 against 118/116 per layer).
  const desc = await describeModelFile(sparse);
  const counts = Array.from({ length: desc.nLayer }, (_, l) => Float64Array.from({ length: desc.nFf }, (_, i) => (i * 7 + l) % 97));
  const stats = { identity: desc.identity, tokens: 100, source: 'test', counts };
  const statsPath = join(dir, 'sparse.rsst');
  writeStatsFile(statsPath, stats);
  const rt = await createRuntime({
    modelPath: sparse, parallel: 1, ctxSize: 32, batchSize: 32, threads: 1,
    device: { device: 'emu', vramBudget: '1080KiB', placement: null, stats: statsPath, emuMemory: 64 * 2 ** 20 },
  });
  try {
    const shape = { budget: 1080 * 1024, nCtx: 32, nSeq: 1, nBatch: 32 };
    const withPredictors = planPlacement(desc, stats, { ...shape, predictors: true }).layers.map((l) => [...l.gpuNeurons]);
    assert.notDeepEqual(withPredictors, planPlacement(desc, stats, { ...shape, predictors: false }).layers.map((l) => [...l.gpuNeurons]));
    assert.deepEqual(rt.device!.info.hotNeuronIds.map((a) => [...a]), withPredictors);
  } finally {
    rt.dispose();
  }
});
