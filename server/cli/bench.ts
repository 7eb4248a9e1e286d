// `relu-serve bench`: prompt and generation speed of the engine on one model, measured
// side by side with this machine's memory read bandwidth in the same run, so the
// ratios hold even on a noisy machine.
import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../engine/binding.js';
import { Model, sequenceBatch } from '../engine/engine.js';
import type { Isa } from '../engine/types.js';
import { makeModel } from './make-model.js';

export interface BenchOptions {
  model?: string;
  size: string;
  type: string;
  arch: string;
  threads: number;
  prompt: number;
  gen: number;
  reps: number;
  isa: Isa;
  bandwidthMb: number;
  json: boolean;
}

export interface BenchResult {
  model: string;
  arch: string;
  weightTypes: Record<string, number>;
  threads: number;
  isa: string;
  params: number;
  bytesPerToken: number;
  promptTokens: number;
  promptTokensPerS: number;
  promptGflops: number;
  genTokens: number;
  genTokensPerS: number;
  bandwidthGBs: number;
  bandwidthLimitTokensPerS: number;
  genFractionOfLimit: number;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Where bench and tests keep generated models (ignored by git). */
export function modelCacheDir(): string {
  const dir = join(process.cwd(), 'models', '.cache');
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function ensureModel(o: BenchOptions): Promise<string> {
  if (o.model) return o.model;
  const path = join(modelCacheDir(), `bench-${o.arch}-${o.size}-${o.type}.gguf`);
  if (!existsSync(path)) {
    process.stderr.write(`writing ${path} (once; later runs reuse it)\n`);
    await makeModel({ arch: o.arch, size: o.size, type: o.type, seed: 1, out: path });
  }
  return path;
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const path = await ensureModel(o);
  const model = await Model.load(path);
  const info = model.info;
  const weightTypes: Record<string, number> = {};
  for (const t of model.tensors) if (t.shape.length === 2) weightTypes[t.typeName] = (weightTypes[t.typeName] ?? 0) + t.bytes;
  const ctx = await model.createContext({ nSeq: 1, nCtx: o.prompt + o.gen + 8, nBatch: Math.max(o.prompt, 1), threads: o.threads, isa: o.isa });
  try {
    // Deterministic prompt tokens spread over the vocabulary (not BOS/EOS).
    const prompt = Array.from({ length: o.prompt }, (_, i) => 3 + ((i * 7919) % (info.nVocab - 3)));
    // Warm up: page in the weights and spin up the threads.
    await ctx.decode(sequenceBatch(prompt.slice(0, 4), 0, 0));
    let bestPrompt = Infinity;
    let bestGen = Infinity;
    for (let r = 0; r < o.reps; r++) {
      ctx.truncate(0, 0);
      let t0 = performance.now();
      let logits = await ctx.decode(sequenceBatch(prompt, 0, 0));
      bestPrompt = Math.min(bestPrompt, performance.now() - t0);
      let tok = argmax(logits);
      t0 = performance.now();
      for (let i = 0; i < o.gen; i++) {
        logits = await ctx.decode(sequenceBatch([tok], 0, o.prompt + i));
        tok = argmax(logits);
      }
      bestGen = Math.min(bestGen, performance.now() - t0);
    }
    const bw = await native.measureBandwidth(o.threads, o.bandwidthMb, 5);
    const stats = ctx.stats();
    // Weight bytes read per generated token plus its KV cache reads (small at this length).
    const kvBytes = 2 * info.nLayer * (info.nEmbd / info.nHead) * info.nHeadKv * 2 * (o.prompt + o.gen / 2);
    const limit = (bw * 1e9) / (info.bytesPerToken + kvBytes);
    const genTps = (o.gen * 1000) / bestGen;
    const ppTps = (o.prompt * 1000) / bestPrompt;
    // 2 flops per weight per token in the matrix products (the embedding is a lookup).
    const matParams = info.nParams - info.nVocab * info.nEmbd + (info.tiedOutput ? info.nVocab * info.nEmbd : 0);
    return {
      model: path,
      arch: info.arch,
      weightTypes,
      threads: stats.threads,
      isa: stats.isa,
      params: info.nParams,
      bytesPerToken: info.bytesPerToken,
      promptTokens: o.prompt,
      promptTokensPerS: ppTps,
      promptGflops: (2 * matParams * ppTps) / 1e9,
      genTokens: o.gen,
      genTokensPerS: genTps,
      bandwidthGBs: bw,
      bandwidthLimitTokensPerS: limit,
      genFractionOfLimit: genTps / limit,
    };
  } finally {
    ctx.dispose();
    model.dispose();
  }
}

function report(r: BenchResult): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const types = Object.entries(r.weightTypes).map(([t, b]) => `${t} ${mib(b)}`).join(', ');
  return [
    `model              ${r.model} (${r.arch}, ${(r.params / 1e6).toFixed(0)}M params; ${types})`,
    `threads / isa      ${r.threads} / ${r.isa}`,
    `prompt             ${r.promptTokens} tokens: ${r.promptTokensPerS.toFixed(1)} tokens/s, ${r.promptGflops.toFixed(1)} GFLOP/s`,
    `generation         ${r.genTokens} tokens: ${r.genTokensPerS.toFixed(2)} tokens/s`,
    `memory bandwidth   ${r.bandwidthGBs.toFixed(1)} GB/s (${r.threads} threads, streaming read)`,
    `bandwidth limit    ${r.bandwidthLimitTokensPerS.toFixed(2)} tokens/s (${mib(r.bytesPerToken)} of weights read per token)`,
    `generation / limit ${(100 * r.genFractionOfLimit).toFixed(1)}%`,
  ].join('\n');
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure prompt and generation speed against the memory-bandwidth limit')
    .option('--model <file>', 'GGUF model to measure (default: a synthetic model of --size/--type)')
    .option('--size <size>', 'synthetic model size: tiny, small, 1b, 7b', '1b')
    .option('--type <type>', 'synthetic model weight type', 'q4_0')
    .option('--arch <arch>', 'synthetic model architecture', 'bamboo')
    .option('--threads <n>', 'compute threads', (v) => parseInt(v, 10), 2)
    .option('--prompt <n>', 'prompt tokens', (v) => parseInt(v, 10), 128)
    .option('--gen <n>', 'generated tokens', (v) => parseInt(v, 10), 32)
    .option('--reps <n>', 'repetitions (best is reported)', (v) => parseInt(v, 10), 2)
    .option('--isa <isa>', 'instruction-set cap: scalar, avx2, avx512, best', 'best')
    .option('--bandwidth-mb <n>', 'bandwidth test buffer size in MiB', (v) => parseInt(v, 10), 1024)
    .option('--json', 'print one JSON object')
    .action(async (opts) => {
      const r = await runBench({ ...opts, json: Boolean(opts.json) } as BenchOptions);
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : report(r)) + '\n');
    });
}
