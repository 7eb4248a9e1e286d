// `relu-serve bench-server`: what the HTTP layer costs and what batching buys.
//  1. Generation tokens/s of the engine alone (decode + the same sampler, one sequence)
//     against the same model through the streaming /v1/completions endpoint on loopback,
//     in one run, on one loaded model and context.
//  2. Aggregate generated tokens/s with 1, 2, 4 and 8 concurrent streams.
// EOS is suppressed with logit_bias so every stream generates exactly --gen tokens. The
// HTTP clients run in a worker thread, so their parsing does not count as server cost.

import type { Command } from 'commander';
import { benchModelPath } from './bench-models.js';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { buildApp } from '../app.js';
import { createRuntime } from '../scheduler/load.js';
import type { ModelRuntime } from '../scheduler/runtime.js';
import type { SamplingSettings } from '../http/validate.js';

export interface BenchServerOptions {
  model?: string;
  size: string;
  type: string;
  arch: string;
  threads: number;
  prompt: number;
  gen: number;
  reps: number;
  concurrency: number[];
}

export interface BenchServerResult {
  model: string;
  threads: number;
  promptTokens: number;
  genTokens: number;
  engineTokensPerS: number;
  httpStreamTokensPerS: number;
  /** 1 - http / engine: the share of speed the HTTP layer loses. */
  httpOverhead: number;
  concurrency: {
    streams: number;
    /** All generated tokens over the wall time of the round, prompts included. */
    aggregateTokensPerS: number;
    perStreamTokensPerS: number;
    /** Tokens after each stream's first, over first-token-to-last-token time: generation only. */
    generationTokensPerS: number;
    wallMs: number;
  }[];
}

const GREEDY: SamplingSettings = {
  temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: 1, logitBias: new Map(),
};


function promptTokens(rt: ModelRuntime, n: number): number[] {
  const nv = rt.tokenizer.nVocab;
  // Spread over the vocabulary, away from the control tokens at the start.
  return Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % (nv - 3)));
}

/** Engine alone on slot 0: prefill, then gen single-token decodes with the same sampler. Returns tokens/s of the generation part. */
async function engineAlone(rt: ModelRuntime, prompt: number[], gen: number): Promise<number> {
  const ctx = rt.ctx;
  const eos = rt.tokenizer.eosId;
  const settings: SamplingSettings = { ...GREEDY, logitBias: new Map(eos >= 0 ? [[eos, -100]] : []) };
  const pick = rt.makePicker({ settings, seed: 1, prompt, topLogprobs: null });
  ctx.truncate(0, 0);
  const n = prompt.length;
  const want = new Uint8Array(n);
  want[n - 1] = 1;
  let logits = await ctx.decode({ tokens: Int32Array.from(prompt), positions: Int32Array.from(prompt, (_, i) => i), seqIds: new Int32Array(n), wantLogits: want });
  let tok = pick(logits).token;
  const one = { tokens: new Int32Array(1), positions: new Int32Array(1), seqIds: new Int32Array(1), wantLogits: Uint8Array.of(1) };
  const t0 = performance.now();
  // The first token came from the prefill; gen - 1 decodes make the rest, as in the server.
  for (let i = 1; i < gen; i++) {
    one.tokens[0] = tok;
    one.positions[0] = n + i - 1;
    logits = await ctx.decode(one);
    tok = pick(logits).token;
  }
  const ms = performance.now() - t0;
  ctx.truncate(0, 0);
  return ((gen - 1) * 1000) / ms;
}

/** One streaming request; resolves with [time of first token, time of last token, tokens]. */
async function stream(url: string, model: string, prompt: number[], gen: number, eos: number): Promise<[number, number, number]> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: gen, temperature: 0, stream: true, logit_bias: eos >= 0 ? { [eos]: -100 } : {}, stream_options: { include_usage: true } }),
  });
  if (!res.ok || !res.body) throw new Error(`bench request failed: ${res.status} ${await res.text()}`);
  let first = 0;
  let last = 0;
  let tokens = 0;
  let buf = '';
  const dec = new TextDecoder();
  for await (const part of res.body) {
    buf += dec.decode(part as Uint8Array, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const obj = JSON.parse(ev.slice(6)) as { choices: { text: string }[]; usage?: { completion_tokens: number } };
      const now = performance.now();
      if (obj.usage) tokens = obj.usage.completion_tokens;
      else if (obj.choices[0]?.text) {
        if (first === 0) first = now;
        last = now;
      }
    }
  }
  return [first, last, tokens];
}

interface StreamJob {
  url: string;
  model: string;
  prompt: number[];
  gen: number;
  eos: number;
  /** Concurrent streams. */
  streams: number;
}

type StreamResult = [number, number, number];

// Worker side: runs the client streams of one job and posts their timings back.
if (!isMainThread && (workerData as { benchServerClient?: boolean } | null)?.benchServerClient) {
  parentPort!.on('message', async (job: StreamJob) => {
    try {
      const t0 = performance.now();
      const results = await Promise.all(Array.from({ length: job.streams }, () => stream(job.url, job.model, job.prompt, job.gen, job.eos)));
      // performance.now() differs between threads: report relative to the job start.
      parentPort!.postMessage({ wallMs: performance.now() - t0, results });
    } catch (err) {
      parentPort!.postMessage({ error: (err as Error).message });
    }
  });
}

/** The client thread: one job at a time. */
class ClientThread {
  private readonly w = new Worker(new URL(import.meta.url), { workerData: { benchServerClient: true } });
  run(job: StreamJob): Promise<{ wallMs: number; results: StreamResult[] }> {
    return new Promise((resolve, reject) => {
      this.w.once('message', (m: { wallMs: number; results: StreamResult[]; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m)));
      this.w.once('error', reject);
      this.w.postMessage(job);
    });
  }
  close(): Promise<number> {
    return this.w.terminate();
  }
}

export async function runBenchServer(o: BenchServerOptions): Promise<BenchServerResult> {
  const path = o.model ?? (await benchModelPath(o));
  const maxStreams = Math.max(1, ...o.concurrency);
  const rt = await createRuntime({ modelPath: path, alias: 'bench', parallel: maxStreams, ctxSize: o.prompt + o.gen + 8, threads: o.threads, batchSize: Math.max(512, maxStreams) });
  const app = await buildApp({ runtime: rt, ownsRuntime: false, defaultMetrics: false, maxQueue: maxStreams });
  try {
    await app.modelReady;
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    let engineBest = 0;
    let httpBest = 0;
    const concurrency: BenchServerResult['concurrency'] = [];
    const prompt = promptTokens(rt, o.prompt);
    const eos = rt.tokenizer.eosId;
    const client = new ClientThread();
    try {
      const job = (gen: number, streams: number): StreamJob => ({ url, model: 'bench', prompt, gen, eos, streams });
      // Warm up both paths (page in weights, spin up threads, JIT the JS).
      await engineAlone(rt, prompt, Math.min(8, o.gen));
      await client.run(job(Math.min(8, o.gen), 1));
      // Interleaved repetitions so both see the same machine conditions; best of each.
      for (let r = 0; r < o.reps; r++) {
        engineBest = Math.max(engineBest, await engineAlone(rt, prompt, o.gen));
        const [[first, last, tokens]] = (await client.run(job(o.gen, 1))).results;
        // Tokens after the first, over the time between first and last (prefill excluded, as for the engine).
        if (tokens > 1 && last > first) httpBest = Math.max(httpBest, ((tokens - 1) * 1000) / (last - first));
      }
      for (const k of o.concurrency) {
        const { wallMs, results } = await client.run(job(o.gen, k));
        const total = results.reduce((a, r) => a + r[2], 0);
        const genMs = Math.max(...results.map((r) => r[1])) - Math.min(...results.map((r) => r[0]));
        concurrency.push({
          streams: k,
          aggregateTokensPerS: (total * 1000) / wallMs,
          perStreamTokensPerS: (total * 1000) / wallMs / k,
          generationTokensPerS: ((total - k) * 1000) / genMs,
          wallMs,
        });
      }
    } finally {
      await client.close();
    }
    return {
      model: path,
      threads: o.threads,
      promptTokens: o.prompt,
      genTokens: o.gen,
      engineTokensPerS: engineBest,
      httpStreamTokensPerS: httpBest,
      httpOverhead: 1 - httpBest / engineBest,
      concurrency,
    };
  } finally {
    await app.close();
    rt.dispose();
  }
}

export function formatBenchServer(r: BenchServerResult): string {
  const lines = [
    `model               ${r.model} (threads ${r.threads}, prompt ${r.promptTokens}, gen ${r.genTokens})`,
    `engine alone        ${r.engineTokensPerS.toFixed(1)} tokens/s`,
    `streaming endpoint  ${r.httpStreamTokensPerS.toFixed(1)} tokens/s  (HTTP layer costs ${(100 * r.httpOverhead).toFixed(1)}%)`,
    `streams  aggregate tokens/s (per stream) incl. prefill   generation-only tokens/s   wall`,
  ];
  for (const c of r.concurrency) {
    lines.push(`  ${String(c.streams).padStart(2)}     ${`${c.aggregateTokensPerS.toFixed(1)} (${c.perStreamTokensPerS.toFixed(1)})`.padEnd(40)} ${c.generationTokensPerS.toFixed(1).padEnd(26)} ${c.wallMs.toFixed(0)} ms`);
  }
  return lines.join('\n');
}

export function registerBenchServer(program: Command): void {
  program
    .command('bench-server')
    .description('HTTP-layer cost (streaming endpoint vs engine alone) and batching gain at 1/2/4/8 streams')
    .option('--model <file>', 'GGUF model (default: a synthetic model of --size/--type)')
    .option('--size <size>', 'synthetic model size: tiny, small, 1b, 7b', 'small')
    .option('--type <type>', 'synthetic model weight type', 'q4_0')
    .option('--arch <arch>', 'synthetic model architecture', 'bamboo')
    .option('--threads <n>', 'compute threads', (v) => parseInt(v, 10), 2)
    .option('--prompt <n>', 'prompt tokens', (v) => parseInt(v, 10), 32)
    .option('--gen <n>', 'generated tokens per stream', (v) => parseInt(v, 10), 64)
    .option('--reps <n>', 'repetitions of the engine/HTTP comparison (best of each)', (v) => parseInt(v, 10), 3)
    .option('--concurrency <list>', 'stream counts', (v) => v.split(',').map((x) => parseInt(x, 10)), [1, 2, 4, 8])
    .option('--json', 'print one JSON object')
    .action(async (opts) => {
      const r = await runBenchServer(opts as BenchServerOptions);
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : formatBenchServer(r)) + '\n');
    });
}
