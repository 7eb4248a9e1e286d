// The server on the hybrid runtime (emulated device): the official client's requests
// answered with the CPU's tokens, /v1/models showing what sits on the device, /metrics
// exporting device memory, neurons per side and step times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRuntime } from '../../server/scheduler/load.js';
import { describeModelFile } from '../../server/profiler/model-file.js';
import { vramCosts } from '../../server/profiler/vram-costs.js';
import { startServer, tinyModelPath } from './server.js';

const settings = { modelPath: '', alias: 'tiny', parallel: 2, ctxSize: 128, threads: 1, batchSize: 64 };

/** An emulated device so small that 60% of it holds the fixed part and about half the FFN. */
async function emuMemory(): Promise<number> {
  const c = vramCosts(await describeModelFile(await tinyModelPath()), { nCtx: settings.ctxSize, nSeq: settings.parallel, nBatch: settings.batchSize });
  return Math.ceil((c.fixedTotal + 0.5 * c.ffnTotal) / 0.6);
}

async function completion(device: 'cpu' | 'emu'): Promise<{ text: string; models: unknown; metrics: string; memory: number }> {
  const memory = await emuMemory();
  const runtime = createRuntime({
    ...settings,
    modelPath: await tinyModelPath(),
    device: { device, vramBudget: device === 'emu' ? '60%' : null, placement: null, stats: null, emuMemory: memory },
  });
  const s = await startServer({ runtime });
  try {
    const r = await s.client.completions.create({ model: 'tiny', prompt: 'And it came to pass', max_tokens: 12, temperature: 0 });
    const models = await (await fetch(`${s.baseURL}/models`)).json();
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    return { text: r.choices[0].text, models, metrics, memory };
  } finally {
    await s.close();
  }
}

test('completions on the emulated device equal the CPU; /v1/models and /metrics describe the device', async () => {
  const cpu = await completion('cpu');
  const emu = await completion('emu');
  assert.equal(emu.text, cpu.text);
  assert.ok(emu.text.length > 0);

  const meta = (emu.models as { data: { meta: { device: Record<string, unknown> } }[] }).data[0].meta.device;
  assert.equal(meta.type, 'emu');
  assert.equal(meta.vram_budget, Math.floor(0.6 * emu.memory));
  assert.ok(Math.abs((meta.ffn_on_device as number) - 0.5) < 0.05, `${meta.ffn_on_device} of the FFN on the device`);
  assert.equal(meta.vram_budget_from, '60% of free memory');
  const bytes = meta.vram_bytes as Record<string, number>;
  assert.equal(meta.vram_used, Object.values(bytes).reduce((a, b) => a + b, 0));
  assert.ok((meta.vram_used as number) <= (meta.vram_budget as number));
  assert.ok(bytes.kv_cache > 0 && bytes.attention > 0 && bytes.ffn > 0);
  assert.equal((meta.hot_neurons as number[]).length, 2);
  assert.match(meta.placement as string, /^uniform: no activation statistics/);
  const cpuMeta = (cpu.models as { data: { meta: { device: Record<string, unknown> } }[] }).data[0].meta.device;
  assert.deepEqual(cpuMeta, { type: 'cpu' });

  const m = emu.metrics;
  assert.match(m, /^relu_serve_device_info\{device="emu",name="emulated device[^"]*"\} 1$/m);
  assert.match(m, new RegExp(`^relu_serve_vram_budget_bytes ${meta.vram_budget}$`, 'm'));
  assert.match(m, new RegExp(`^relu_serve_vram_used_bytes\\{category="kvCache"\\} ${bytes.kv_cache}$`, 'm'));
  assert.match(m, /^relu_serve_hot_neurons\{layer="1"\} \d+$/m);
  const gpu = Number(/^relu_serve_neurons_computed_total\{device="gpu"\} (\d+)$/m.exec(m)?.[1]);
  const host = Number(/^relu_serve_neurons_computed_total\{device="cpu"\} (\d+)$/m.exec(m)?.[1]);
  assert.ok(gpu > 0 && host > 0, `gpu ${gpu}, cpu ${host}`);
  // One prompt step and 11 generation steps (the first token comes from the prompt's logits).
  assert.match(m, /^relu_serve_hybrid_step_seconds_count\{part="cpu_ffn"\} 12$/m);
  assert.match(m, /^relu_serve_cpu_ffn_hidden_ratio (0|1|0\.\d+)$/m);
  // On the CPU alone: no device series, the CPU's neurons only.
  assert.doesNotMatch(cpu.metrics, /relu_serve_vram_used_bytes/);
  assert.match(cpu.metrics, /^relu_serve_neurons_computed_total\{device="gpu"\} 0$/m);
});

test('a device setting the model cannot run with fails the load with the reason', async () => {
  const runtime = createRuntime({
    ...settings,
    modelPath: await tinyModelPath(),
    device: { device: 'emu', vramBudget: '1KiB', placement: null, stats: null },
  });
  await assert.rejects(runtime, /VRAM budget .* is too small: the fixed part needs/);
  await assert.rejects(
    createRuntime({ ...settings, modelPath: await tinyModelPath(), device: { device: 'cpu', vramBudget: '1GiB', placement: null, stats: null } }),
    /--vram-budget need a device \(--device cuda or emu\)/,
  );
});

test('statistics without a placement: hot neurons solved at load by place\'s solver; the log says where they came from', async () => {
  const { writeStatsFile } = await import('../../server/profiler/stats-format.js');
  const { planPlacement } = await import('../../server/profiler/placement-plan.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'relu-serve-hybrid-stats-'));
  try {
    const path = await tinyModelPath();
    const desc = await describeModelFile(path);
    // Counts with a clear ranking: neuron i of layer l fired (i * 7 + l) % 97 times.
    const counts = Array.from({ length: desc.nLayer }, (_, l) => Float64Array.from({ length: desc.nFf }, (_, i) => (i * 7 + l) % 97));
    const statsPath = join(dir, 'tiny.rsst');
    writeStatsFile(statsPath, { identity: desc.identity, tokens: 100, source: 'test', counts });
    const memory = await emuMemory();
    const budget = Math.floor(0.6 * memory);
    const logged: string[] = [];
    const log = { info: (_o: unknown, msg?: string) => void logged.push(String(msg ?? _o)), warn: (m: unknown) => void logged.push(String(m)) };
    const rt = await createRuntime({
      ...settings,
      modelPath: path,
      device: { device: 'emu', vramBudget: '60%', placement: null, stats: statsPath, emuMemory: memory },
      log: log as never,
    });
    try {
      const plan = planPlacement(desc, { identity: desc.identity, tokens: 100, source: 'test', counts }, { budget, nCtx: settings.ctxSize, nSeq: settings.parallel, nBatch: settings.batchSize });
      assert.deepEqual(rt.device!.info.hotNeuronIds.map((a) => [...a]), plan.layers.map((l) => [...l.gpuNeurons]));
      assert.match(rt.device!.info.placementSource, /^statistics .*tiny\.rsst, solved at load for .*% of the profiled activations on the device$/);
      assert.ok(logged.some((l) => /hybrid runtime on emulated device.*hot neurons: statistics/.test(l)), logged.join('\n'));
    } finally {
      rt.dispose();
    }
    // No statistics: the log names the fallback.
    logged.length = 0;
    const rt2 = await createRuntime({ ...settings, modelPath: path, device: { device: 'emu', vramBudget: '60%', placement: null, stats: null, emuMemory: memory }, log: log as never });
    rt2.dispose();
    assert.ok(logged.some((l) => /hot neurons: uniform: no activation statistics/.test(l)), logged.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
