// Prometheus metrics, one registry per app (so several apps in one test process do
// not collide). Names follow Prometheus conventions with a relu_serve_ prefix.
// The sparse-engine gauges (active-neuron ratio, neurons computed on GPU vs CPU) have
// their names and shapes fixed here; they appear once the engine registers a source
// with setSparseSource().

import client from 'prom-client';

export interface SparseStats {
  /** Fraction of FFN neurons that were active (non-zero after ReLU), 0..1. */
  activeNeuronRatio: number;
  /** Neurons computed per device since start. */
  neuronsComputed: { gpu: number; cpu: number };
}

export interface GaugeSource {
  running(): number;
  waiting(): number;
  kvUsage(): number;
  slotsBusy(): number;
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'route' | 'method' | 'status'>;
  readonly promptTokens: client.Counter<string>;
  readonly generatedTokens: client.Counter<string>;
  readonly ttft: client.Histogram<string>;
  readonly interToken: client.Histogram<string>;
  readonly queueTime: client.Histogram<string>;
  readonly e2e: client.Histogram<string>;
  readonly engineSteps: client.Counter<string>;
  readonly batchTokens: client.Histogram<string>;
  readonly batchSequences: client.Histogram<string>;
  readonly disconnects: client.Counter<string>;
  private gauges: GaugeSource | null = null;
  private sparse: (() => SparseStats | null) | null = null;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry, prefix: 'relu_serve_' });
    this.requests = new client.Counter({ name: 'relu_serve_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.promptTokens = new client.Counter({ name: 'relu_serve_prompt_tokens_total', help: 'Prompt tokens processed', registers });
    this.generatedTokens = new client.Counter({ name: 'relu_serve_generated_tokens_total', help: 'Tokens generated', registers });
    const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.ttft = new client.Histogram({ name: 'relu_serve_time_to_first_token_seconds', help: 'Time from request arrival to first generated token', buckets: latencyBuckets, registers });
    this.interToken = new client.Histogram({ name: 'relu_serve_inter_token_latency_seconds', help: 'Time between consecutive generated tokens of one sequence', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    this.queueTime = new client.Histogram({ name: 'relu_serve_queue_time_seconds', help: 'Time a request waited for a slot', buckets: latencyBuckets, registers });
    this.e2e = new client.Histogram({ name: 'relu_serve_request_duration_seconds', help: 'End-to-end latency of generation requests', buckets: latencyBuckets, registers });
    this.engineSteps = new client.Counter({ name: 'relu_serve_engine_steps_total', help: 'Decode steps run by the engine loop', registers });
    this.batchTokens = new client.Histogram({ name: 'relu_serve_batch_tokens', help: 'Tokens per decode step', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers });
    this.batchSequences = new client.Histogram({ name: 'relu_serve_batch_sequences', help: 'Sequences sharing one decode step', buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32], registers });
    this.disconnects = new client.Counter({ name: 'relu_serve_client_disconnects_total', help: 'Generation requests whose client went away before the end', registers });
    const self = this;
    new client.Gauge({ name: 'relu_serve_requests_running', help: 'Requests holding slots', registers, collect() { this.set(self.gauges?.running() ?? 0); } });
    new client.Gauge({ name: 'relu_serve_requests_waiting', help: 'Requests in the wait queue', registers, collect() { this.set(self.gauges?.waiting() ?? 0); } });
    new client.Gauge({ name: 'relu_serve_slots_busy', help: 'Slots (KV-cache sequences) in use', registers, collect() { this.set(self.gauges?.slotsBusy() ?? 0); } });
    new client.Gauge({ name: 'relu_serve_kv_cache_usage_ratio', help: 'Share of KV-cache positions in use, 0..1', registers, collect() { this.set(self.gauges?.kvUsage() ?? 0); } });
  }

  setGaugeSource(src: GaugeSource): void {
    this.gauges = src;
  }

  /**
   * For the sparse engine, once it reports activity. The gauges are registered only
   * then, so a dense engine does not export zeros that would read as "no activity".
   */
  setSparseSource(fn: () => SparseStats | null): void {
    const first = this.sparse === null;
    this.sparse = fn;
    if (!first) return;
    const self = this;
    const registers = [this.registry];
    new client.Gauge({
      name: 'relu_serve_active_neuron_ratio', help: 'Share of FFN neurons active per token (sparse engines only)', registers,
      collect() { const s = self.sparse?.(); if (s) this.set(s.activeNeuronRatio); },
    });
    new client.Gauge({
      name: 'relu_serve_neurons_computed', help: 'FFN neurons computed since start, by device (sparse engines only)', labelNames: ['device'], registers,
      collect() { const s = self.sparse?.(); if (s) { this.set({ device: 'gpu' }, s.neuronsComputed.gpu); this.set({ device: 'cpu' }, s.neuronsComputed.cpu); } },
    });
  }
}
