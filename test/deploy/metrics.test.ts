// The two series added for the dashboard and the alerting rules: the wait queue's limit
// (the rules compare the queue with it) and the active-neuron ratio per layer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../server/observability/metrics.js';

test('relu_serve_requests_waiting_limit is maxQueue', async () => {
  assert.match(await new Metrics({ defaultMetrics: false, maxQueue: 7 }).registry.metrics(), /^relu_serve_requests_waiting_limit 7$/m);
  assert.match(await new Metrics({ defaultMetrics: false }).registry.metrics(), /^relu_serve_requests_waiting_limit 64$/m, "the server's default");
});

test('relu_serve_layer_active_neuron_ratio has one series per layer, only when the engine reports them', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.setSparseSource(() => ({ activeNeuronRatio: 0.2, activeNeuronRatioByLayer: [0.1, 0.3], neuronsComputed: { gpu: 0, cpu: 5 } }));
  const text = await m.registry.metrics();
  assert.match(text, /^relu_serve_layer_active_neuron_ratio\{layer="0"\} 0.1$/m);
  assert.match(text, /^relu_serve_layer_active_neuron_ratio\{layer="1"\} 0.3$/m);
  const without = new Metrics({ defaultMetrics: false });
  without.setSparseSource(() => ({ activeNeuronRatio: 0.2, neuronsComputed: { gpu: 0, cpu: 5 } }));
  assert.doesNotMatch(await without.registry.metrics(), /^relu_serve_layer_active_neuron_ratio\{/m);
});
