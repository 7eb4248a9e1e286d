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
  assert.match(text, /^relu_serve_neurons_computed\{device="gpu"\} 1000$/m);
  assert.match(text, /^relu_serve_neurons_computed\{device="cpu"\} 24$/m);
});
