// Prometheus metrics, one registry per app (so several apps in one test process do
// not collide). Names follow Prometheus conventions with a relu_serve_ prefix.
// The sparse-engine gauges (active-neuron ratio, neurons computed on GPU vs CPU) have
// their names and shapes fixed here; they appear once the engine registers a source
// with setSparseSource().

import client from 'prom-client';
import type { DeviceInfo, HybridStats } from '../engine/types.js';

export interface SparseStats {
  /** Fraction of FFN neurons that were active (non-zero after ReLU), 0..1. */
  activeNeuronRatio: number;
  /** The same per layer (index: layer), for the per-layer dashboard panel; absent: not exported. */
  activeNeuronRatioByLayer?: number[];
  /** Neurons computed per device since start. */
  neuronsComputed: { gpu: number; cpu: number };
}

/** Milliseconds per part of the CPU decode steps since start (the engine's phaseMs). */
export interface StepPartMs {
  attention: number;
  select: number;
  ffn: number;
  output: number;
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
  readonly cachedPromptTokens: client.Counter<string>;
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

  constructor(opts: { defaultMetrics?: boolean; maxQueue?: number } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry, prefix: 'relu_serve_' });
    this.requests = new client.Counter({ name: 'relu_serve_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.promptTokens = new client.Counter({ name: 'relu_serve_prompt_tokens_total', help: 'Prompt tokens processed', registers });
    this.cachedPromptTokens = new client.Counter({ name: 'relu_serve_prompt_tokens_cached_total', help: 'Prompt tokens found in a slot\'s prefix cache (counted in prompt_tokens_total too, but not processed again)', registers });
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
    // The alerting rules compare the queue with its limit (docker/prometheus/alerts.yml).
    new client.Gauge({ name: 'relu_serve_requests_waiting_limit', help: 'Requests that may wait for a slot before the server answers 429 (maxQueue)', registers }).set(opts.maxQueue ?? 64);
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
      name: 'relu_serve_layer_active_neuron_ratio', help: 'Share of FFN neurons active per token in the last step, by layer (sparse engines only)', labelNames: ['layer'], registers,
      collect() { self.sparse?.()?.activeNeuronRatioByLayer?.forEach((r, l) => this.set({ layer: String(l) }, r)); },
    });
    // A counter read from the engine's own running totals at scrape time.
    new client.Counter({
      name: 'relu_serve_neurons_computed_total', help: 'FFN (token, neuron) pairs computed since start, by side: gpu (the device) or cpu (sparse engines only)', labelNames: ['device'], registers,
      collect() {
        const s = self.sparse?.();
        if (!s) return;
        this.reset();
        this.inc({ device: 'gpu' }, s.neuronsComputed.gpu);
        this.inc({ device: 'cpu' }, s.neuronsComputed.cpu);
      },
    });
  }

  private stepParts: (() => StepPartMs) | null = null;

  /**
   * Where CPU decode steps spend their time, read from the engine's running totals at
   * scrape time (ms): attention, choosing the FFN's neurons, the rest of the FFN, output.
   */
  setStepPartSource(fn: () => StepPartMs): void {
    const first = this.stepParts === null;
    this.stepParts = fn;
    if (!first) return;
    const self = this;
    new client.Counter({
      name: 'relu_serve_step_part_seconds_total', labelNames: ['part'], registers: [this.registry],
      help: 'Time CPU decode steps spent per part since start: attention, select (choosing FFN neurons: predictor or exact gate), ffn (the rest of the FFN), output',
      collect() {
        const p = self.stepParts?.();
        if (!p) return;
        this.reset();
        for (const part of ['attention', 'select', 'ffn', 'output'] as const) this.inc({ part }, p[part] / 1000);
      },
    });
  }

  private stepSeconds: client.Histogram<'part'> | null = null;
  private lastSteps = 0;

  /**
   * The hybrid runtime: what sits in device memory (fixed at load) and the work per side.
   * Step times are observed by observeHybridStep after each engine step.
   */
  setDeviceSource(info: DeviceInfo, stats: () => HybridStats): void {
    const registers = [this.registry];
    new client.Gauge({ name: 'relu_serve_device_info', help: 'The device the model runs on (value 1)', labelNames: ['device', 'name'], registers }).set({ device: info.device, name: info.name }, 1);
    new client.Gauge({ name: 'relu_serve_vram_budget_bytes', help: 'Device memory the server may use', registers }).set(info.budget);
    const used = new client.Gauge({ name: 'relu_serve_vram_used_bytes', help: 'Device memory allocated, by category', labelNames: ['category'], registers });
    const cat: Record<string, number> = { ...info.bytes };
    for (const [k, v] of Object.entries(cat)) used.set({ category: k }, v);
    new client.Gauge({ name: 'relu_serve_ffn_on_device_ratio', help: 'Share of the FFN bytes resident on the device', registers }).set(info.ffnAll > 0 ? info.bytes.ffn / info.ffnAll : 0);
    const hot = new client.Gauge({ name: 'relu_serve_hot_neurons', help: 'FFN neurons resident on the device, per layer', labelNames: ['layer'], registers });
    info.hotNeurons.forEach((n, l) => hot.set({ layer: String(l) }, n));
    new client.Gauge({
      name: 'relu_serve_cpu_ffn_hidden_ratio', help: "Share of the CPU's FFN time that ran while the device was busy (1 - device wait / CPU FFN time), since start", registers,
      collect() {
        const h = stats();
        this.set(h.hostFfnMs > 0 ? Math.max(0, Math.min(1, 1 - h.deviceWaitMs / h.hostFfnMs)) : 0);
      },
    });
    new client.Gauge({
      name: 'relu_serve_device_replayed_steps', help: 'Steps the device ran from a recording (a CUDA graph of a step shape seen before), since start', registers,
      collect() {
        this.set(stats().replayedSteps);
      },
    });
    this.stepSeconds = new client.Histogram({
      name: 'relu_serve_hybrid_step_seconds', labelNames: ['part'], registers,
      help: 'Per decode step: device busy, device waiting for the CPU, CPU computing cold neurons, and the whole step',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
  }

  /** Observes the last step's times if a step ran since the previous call. */
  observeHybridStep(h: HybridStats): void {
    if (!this.stepSeconds || h.steps === this.lastSteps) return;
    this.lastSteps = h.steps;
    this.stepSeconds.observe({ part: 'device' }, h.last.deviceBusyMs / 1000);
    this.stepSeconds.observe({ part: 'device_wait' }, h.last.deviceWaitMs / 1000);
    this.stepSeconds.observe({ part: 'cpu_ffn' }, h.last.hostFfnMs / 1000);
    this.stepSeconds.observe({ part: 'step' }, h.last.wallMs / 1000);
  }
}
