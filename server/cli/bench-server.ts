// `relu-serve bench-server`: what the HTTP layer costs and what batching buys.
//  1. Generation tokens/s of the engine alone (decode + the same sampler, one sequence)
//     against the same model through the streaming /v1/completions endpoint on loopback,
//     in one run, on one loaded model and context.
//  2. Aggregate generated tokens/s with 1, 2, 4 and 8 concurrent streams, each against
//     the engine alone decoding the same number of sequences in one batch (same prompt,
//     same sampler, one row per sequence per step): what the server keeps of the batched
//     engine's speed (issue 12's target: >= 90% at 8 streams).
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

/**
 * Tokens/s of one round of k sequences: all generated tokens over the whole round; and
 * generation only: the tokens made once every sequence has its first (all prompts in),
 * over the time from then to the last token.
 */
export interface RoundRates {
  aggregateTokensPerS: number;
  generationTokensPerS: number;
  /** Tokens generated in the round (k x gen when nothing stopped early). */
  tokens: number;
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
    /** Generation only: the tokens after every stream has its first, over the time from then to the last token. */
    generationTokensPerS: number;
    wallMs: number;
    /** Tokens the streams received (usage.completion_tokens summed). */
    tokens: number;
    /** The engine alone, the same k sequences in one batch (best of reps). */
    engine: RoundRates;
    /** Served / engine aggregate tokens/s (prompts included). */
    aggregateShare: number;
    /** Served / engine generation-only tokens/s. */
    generationShare: number;
  }[];
}

const GREEDY: SamplingSettings = {
  temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, seed: 1, logitBias: new Map(),
};


/** Greedy, with EOS banned so that every sequence generates its full length. */
function greedyNoEos(eos: number): SamplingSettings {
  return { ...GREEDY, logitBias: new Map(eos >= 0 ? [[eos, -100]] : []) };
}

function promptTokens(rt: ModelRuntime, n: number): number[] {
  const nv = rt.tokenizer.nVocab;
  // Spread over the vocabulary, away from the control tokens at the start.
  return Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % (nv - 3)));
}

/** Engine alone on slot 0: prefill, then gen single-token decodes with the same sampler. Returns tokens/s of the generation part. */
async function engineAlone(rt: ModelRuntime, prompt: number[], gen: number): Promise<number> {
  const ctx = rt.ctx;
  const eos = rt.tokenizer.eosId;
  const settings = greedyNoEos(eos);
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

/**
 * The engine alone with k sequences in one batch, as the server runs k streams: the k
 * prompts prefilled together (in chunks of the context's batch size), then gen - 1 steps
 * of one row per sequence, each sampled by its own greedy picker.
 */
async function engineBatch(rt: ModelRuntime, prompt: number[], gen: number, k: number): Promise<RoundRates> {
  const ctx = rt.ctx;
  const nv = rt.tokenizer.nVocab;
  const eos = rt.tokenizer.eosId;
  const settings = greedyNoEos(eos);
  const picks = Array.from({ length: k }, () => rt.makePicker({ settings, seed: 1, prompt, topLogprobs: null }));
  for (let s = 0; s < k; s++) ctx.truncate(s, 0);
  const n = prompt.length;
  const toks = new Int32Array(k);
  let made = 0; // tokens sampled, counted as they are made
  const t0 = performance.now();
  // Prefill: row s * n + i is token i of sequence s; the last row of each is sampled.
  for (let r0 = 0, picked = 0; r0 < k * n; r0 += rt.nBatch) {
    const m = Math.min(rt.nBatch, k * n - r0);
    const b = { tokens: new Int32Array(m), positions: new Int32Array(m), seqIds: new Int32Array(m), wantLogits: new Uint8Array(m) };
    for (let j = 0; j < m; j++) {
      const r = r0 + j;
      b.tokens[j] = prompt[r % n];
      b.positions[j] = r % n;
      b.seqIds[j] = Math.floor(r / n);
      b.wantLogits[j] = r % n === n - 1 ? 1 : 0;
    }
    const logits = await ctx.decode(b);
    for (let q = 0; q < logits.length / nv; q++, picked++, made++) toks[picked] = picks[picked](logits.subarray(q * nv, (q + 1) * nv)).token;
  }
  const t1 = performance.now();
  const step = { tokens: toks, positions: new Int32Array(k), seqIds: Int32Array.from({ length: k }, (_, s) => s), wantLogits: new Uint8Array(k).fill(1) };
  for (let i = 1; i < gen; i++) {
    step.positions.fill(n + i - 1);
    const logits = await ctx.decode(step);
    for (let s = 0; s < k; s++, made++) toks[s] = picks[s](logits.subarray(s * nv, (s + 1) * nv)).token;
  }
  const t2 = performance.now();
  for (let s = 0; s < k; s++) ctx.truncate(s, 0);
  return { aggregateTokensPerS: (made * 1000) / (t2 - t0), generationTokensPerS: ((made - k) * 1000) / (t2 - t1), tokens: made };
}

/**
 * Rates of one served round from each stream's text events (arrival times, one clock)
 * and its token count (usage). Generation only counts the events after the last stream's
 * first: an event usually carries one token (one held back by a stop sequence or a split
 * UTF-8 character comes with the next, so this can undercount, never overcount).
 */
export function servedRates(results: StreamResult[], wallMs: number): RoundRates {
  const total = results.reduce((a, r) => a + r.tokens, 0);
  const start = Math.max(...results.map((r) => r.times[0] ?? Infinity));
  const end = Math.max(...results.map((r) => r.times[r.times.length - 1] ?? -Infinity));
  const after = results.reduce((a, r) => a + r.times.filter((t) => t > start).length, 0);
  return { aggregateTokensPerS: (total * 1000) / wallMs, generationTokensPerS: end > start ? (after * 1000) / (end - start) : 0, tokens: total };
}

/** One stream's text events: their arrival times (performance.now() of the client thread), and the tokens usage counted. */
export interface StreamResult {
  times: number[];
  tokens: number;
}

/** One streaming request. */
async function stream(url: string, model: string, prompt: number[], gen: number, eos: number): Promise<StreamResult> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // cache_prompt false: every stream prefills its prompt as the engine runs do. It is also
    // needed for correctness here: the engine runs share the context and clear its
    // sequences, which the server's prompt cache cannot know (with reuse on, the second
    // served round failed: "position 31 ... must be 0").
    body: JSON.stringify({ model, prompt, max_tokens: gen, temperature: 0, stream: true, cache_prompt: false, logit_bias: eos >= 0 ? { [eos]: -100 } : {}, stream_options: { include_usage: true } }),
  });
  if (!res.ok || !res.body) throw new Error(`bench request failed: ${res.status} ${await res.text()}`);
  const times: number[] = [];
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
      const obj = JSON.parse(ev.slice(6)) as { choices?: { text: string }[]; usage?: { completion_tokens: number }; error?: { message: string } };
      // A failure after the headers arrives as an error event in the stream.
      if (obj.error) throw new Error(`bench stream failed: ${obj.error.message}`);
      const now = performance.now();
      if (obj.usage) tokens = obj.usage.completion_tokens;
      else if (obj.choices?.[0]?.text) {
        times.push(now);
      }
    }
  }
  return { times, tokens };
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
        const { wallMs, results } = await client.run(job(o.gen, 1));
        // Tokens after the first, over the time between first and last (prefill excluded, as for the engine).
        httpBest = Math.max(httpBest, servedRates(results, wallMs).generationTokensPerS);
      }
      // Each stream count against the engine batching the same count, interleaved; best of reps.
      for (const k of o.concurrency) {
        let engine: RoundRates | null = null;
        let served: (RoundRates & { wallMs: number }) | null = null;
        for (let r = 0; r < o.reps; r++) {
          const e = await engineBatch(rt, prompt, o.gen, k);
          if (!engine || e.aggregateTokensPerS > engine.aggregateTokensPerS) engine = e;
          const { wallMs, results } = await client.run(job(o.gen, k));
          const sr = { ...servedRates(results, wallMs), wallMs };
          if (!served || sr.aggregateTokensPerS > served.aggregateTokensPerS) served = sr;
        }
        concurrency.push({
          streams: k,
          aggregateTokensPerS: served!.aggregateTokensPerS,
          perStreamTokensPerS: served!.aggregateTokensPerS / k,
          generationTokensPerS: served!.generationTokensPerS,
          wallMs: served!.wallMs,
          tokens: served!.tokens,
          engine: engine!,
          aggregateShare: served!.aggregateTokensPerS / engine!.aggregateTokensPerS,
          generationShare: served!.generationTokensPerS / engine!.generationTokensPerS,
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
    `streams  served aggregate tokens/s (per stream) incl. prefill   engine batch   share   served generation-only   engine   share   wall`,
  ];
  for (const c of r.concurrency) {
    const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
    lines.push(
      `  ${String(c.streams).padStart(2)}     ${`${c.aggregateTokensPerS.toFixed(1)} (${c.perStreamTokensPerS.toFixed(1)})`.padEnd(48)} ` +
        `${c.engine.aggregateTokensPerS.toFixed(1).padEnd(14)} ${pct(c.aggregateShare).padEnd(7)} ${c.generationTokensPerS.toFixed(1).padEnd(24)} ` +
        `${c.engine.generationTokensPerS.toFixed(1).padEnd(8)} ${pct(c.generationShare).padEnd(7)} ${c.wallMs.toFixed(0)} ms`,
    );
  }
  return lines.join('\n');
}

export function registerBenchServer(program: Command): void {
  program
    .command('bench-server')
    .description('HTTP-layer cost (streaming endpoint vs engine alone) and served 1/2/4/8 streams vs the engine batching as many sequences')
    .option('--model <file>', 'GGUF model (default: a synthetic model of --size/--type)')
    .option('--size <size>', 'synthetic model size: tiny, small, 1b, 7b', 'small')
    .option('--type <type>', 'synthetic model weight type', 'q4_0')
    .option('--arch <arch>', 'synthetic model architecture', 'bamboo')
    .option('--threads <n>', 'compute threads', (v) => parseInt(v, 10), 2)
    .option('--prompt <n>', 'prompt tokens', (v) => parseInt(v, 10), 32)
    .option('--gen <n>', 'generated tokens per stream', (v) => parseInt(v, 10), 64)
    .option('--reps <n>', 'repetitions of each engine/HTTP comparison (best of each)', (v) => parseInt(v, 10), 3)
    .option('--concurrency <list>', 'stream counts', (v) => v.split(',').map((x) => parseInt(x, 10)), [1, 2, 4, 8])
    .option('--json', 'print one JSON object')
    .action(async (opts) => {
      const r = await runBenchServer(opts as BenchServerOptions);
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : formatBenchServer(r)) + '\n');
    });
}
