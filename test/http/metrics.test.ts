import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../server/observability/metrics.js';

test('process default metrics carry the relu_serve_ prefix; gauges read their source', async () => {
  const m = new Metrics({ defaultMetrics: true });
  m.setGaugeSource({ running: () => 3, waiting: () => 2, kvUsage: () => 0.25, slotsBusy: () => 3 });
  const text = await m.registry.metrics();
  assert.match(text, /^relu_serve_process_cpu_user_seconds_total /m);
  assert.match(text, /^relu_serve_nodejs_heap_size_used_bytes /m);
  assert.match(text, /^relu_serve_requests_running 3$/m);
  assert.match(text, /^relu_serve_requests_waiting 2$/m);
  assert.match(text, /^relu_serve_kv_cache_usage_ratio 0.25$/m);
  // No sparse-engine gauges until an engine reports them.
  assert.doesNotMatch(text, /active_neuron_ratio/);
});

test('sparse-engine gauges appear once a source is set', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.setSparseSource(() => ({ activeNeuronRatio: 0.125, neuronsComputed: { gpu: 1000, cpu: 24 } }));
  const text = await m.registry.metrics();
  assert.match(text, /^relu_serve_active_neuron_ratio 0.125$/m);
  assert.match(text, /^# TYPE relu_serve_neurons_computed_total counter$/m);
  assert.match(text, /^relu_serve_neurons_computed_total\{device="gpu"\} 1000$/m);
  assert.match(text, /^relu_serve_neurons_computed_total\{device="cpu"\} 24$/m);
});

test('the counter follows the engine\'s running totals from scrape to scrape', async () => {
  const m = new Metrics({ defaultMetrics: false });
  let cpu = 10;
  m.setSparseSource(() => ({ activeNeuronRatio: 0.1, neuronsComputed: { gpu: 0, cpu } }));
  assert.match(await m.registry.metrics(), /^relu_serve_neurons_computed_total\{device="cpu"\} 10$/m);
  cpu = 35;
  assert.match(await m.registry.metrics(), /^relu_serve_neurons_computed_total\{device="cpu"\} 35$/m);
});

test('step part times: a counter in seconds by part, following the engine\'s running totals, absent until a source is set', async () => {
  const m = new Metrics({ defaultMetrics: false });
  assert.doesNotMatch(await m.registry.metrics(), /step_part_seconds/);
  let ffn = 2500;
  m.setStepPartSource(() => ({ attention: 1500, select: 250, ffn, output: 750 }));
  const text = await m.registry.metrics();
  assert.match(text, /^# TYPE relu_serve_step_part_seconds_total counter$/m);
  assert.match(text, /^relu_serve_step_part_seconds_total\{part="attention"\} 1.5$/m);
  assert.match(text, /^relu_serve_step_part_seconds_total\{part="select"\} 0.25$/m);
  assert.match(text, /^relu_serve_step_part_seconds_total\{part="ffn"\} 2.5$/m);
  assert.match(text, /^relu_serve_step_part_seconds_total\{part="output"\} 0.75$/m);
  ffn = 4000;
  assert.match(await m.registry.metrics(), /^relu_serve_step_part_seconds_total\{part="ffn"\} 4$/m);
});

test('device metrics: memory by category, hot neurons per layer, hidden share, step histograms', async () => {
  const m = new Metrics({ defaultMetrics: false });
  const info = {
    device: 'emu' as const, name: 'emulated device', memoryTotal: 8e9, memoryFree: 8e9, budget: 1_000_000, budgetFrom: 'bytes',
    bytes: { attention: 100, predictors: 20, norms: 4, output: 50, kvCache: 300, index: 8, workspace: 70, ffn: 400 },
    used: 952, ffnAll: 1600, hotNeurons: [12, 7], hotNeuronIds: [new Int32Array(12), new Int32Array(7)], placementSource: 'file x.rspl',
  };
  const last = { neuronsDevice: 5, neuronsHost: 6, deviceBusyMs: 2, deviceWaitMs: 0.5, hostFfnMs: 1.5, wallMs: 3 };
  let stats = { steps: 1, neuronsDevice: 5, neuronsHost: 6, deviceBusyMs: 2, deviceWaitMs: 0.5, hostFfnMs: 2, wallMs: 3, replayedSteps: 4, recordings: 1, last };
  m.setDeviceSource(info, () => stats);
  m.observeHybridStep(stats);
  m.observeHybridStep(stats); // the same step again: not observed twice
  const text = await m.registry.metrics();
  assert.match(text, /^relu_serve_device_info\{device="emu",name="emulated device"\} 1$/m);
  assert.match(text, /^relu_serve_vram_budget_bytes 1000000$/m);
  assert.match(text, /^relu_serve_vram_used_bytes\{category="kvCache"\} 300$/m);
  assert.match(text, /^relu_serve_vram_used_bytes\{category="ffn"\} 400$/m);
  assert.match(text, /^relu_serve_ffn_on_device_ratio 0.25$/m);
  assert.match(text, /^relu_serve_hot_neurons\{layer="1"\} 7$/m);
  assert.match(text, /^relu_serve_cpu_ffn_hidden_ratio 0.75$/m);
  assert.match(text, /^relu_serve_device_replayed_steps 4$/m);
  assert.match(text, /^relu_serve_hybrid_step_seconds_count\{part="cpu_ffn"\} 1$/m);
  assert.match(text, /^relu_serve_hybrid_step_seconds_sum\{part="device"\} 0.002$/m);
  stats = { ...stats, steps: 2 };
  m.observeHybridStep(stats);
  assert.match(await m.registry.metrics(), /^relu_serve_hybrid_step_seconds_count\{part="step"\} 2$/m);
});
