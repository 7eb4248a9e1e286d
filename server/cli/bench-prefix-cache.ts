// Prefix-cache measurement: how long the server takes to process a prompt that shares a
// long prefix with the previous request, against the same prompt with cache_prompt
// false. Prompt processing time is the time to the first token of a max_tokens 1
// request (all prompt, one sampled token), through the real HTTP layer (app.inject).
//
//   node dist/server/cli/bench-prefix-cache.js [--size small|1b] [--prefix 1000] [--reps 3] [--threads N]

import { parseArgs } from 'node:util';
import { benchModelPath } from './bench-models.js';
import { buildApp } from '../app.js';
import { createRuntime } from '../scheduler/load.js';

export interface PrefixCacheResult {
  model: string;
  prefixTokens: number;
  /** Median ms to process prefix + a 16-token suffix from scratch. */
  coldMs: number;
  /** Median ms when the prefix is in a slot's cache. */
  cachedMs: number;
  cachedTokens: number;
  speedup: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function benchPrefixCache(o: { size: string; prefix: number; reps: number; threads: number }): Promise<PrefixCacheResult> {
  const modelPath = await benchModelPath({ arch: 'bamboo', size: o.size, type: 'q4_0' });
  const runtime = await createRuntime({ modelPath, parallel: 1, ctxSize: o.prefix + 64, threads: o.threads, batchSize: 512 });
  const app = await buildApp({ runtime, defaultMetrics: false });
  await app.modelReady;
  const nv = runtime.tokenizer.nVocab;
  const prefix = Array.from({ length: o.prefix }, (_, i) => 3 + ((i * 7919) % (nv - 3)));
  const suffix = (k: number) => Array.from({ length: 16 }, (_, i) => 3 + ((k * 131 + i * 17) % (nv - 3)));
  const ask = async (prompt: number[], cache: boolean) => {
    const t0 = performance.now();
    const res = await app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt, max_tokens: 1, temperature: 0, cache_prompt: cache } });
    const ms = performance.now() - t0;
    if (res.statusCode !== 200) throw new Error(`request failed: ${res.body}`);
    return { ms, cached: (res.json() as { usage: { prompt_tokens_details: { cached_tokens: number } } }).usage.prompt_tokens_details.cached_tokens };
  };
  const cold: number[] = [];
  const warm: number[] = [];
  let cachedTokens = 0;
  await ask([...prefix, ...suffix(0)], true); // warm-up: pages in the model
  for (let r = 1; r <= o.reps; r++) {
    cold.push((await ask([...prefix, ...suffix(r)], false)).ms);
    // The cold request left prefix + suffix(r) in the slot; this one shares the prefix.
    const w = await ask([...prefix, ...suffix(r + 100)], true);
    warm.push(w.ms);
    cachedTokens = w.cached;
  }
  await app.close();
  const coldMs = median(cold);
  const cachedMs = median(warm);
  return { model: modelPath, prefixTokens: o.prefix, coldMs, cachedMs, cachedTokens, speedup: coldMs / cachedMs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { size: { type: 'string', default: 'small' }, prefix: { type: 'string', default: '1000' }, reps: { type: 'string', default: '3' }, threads: { type: 'string', default: '2' } } });
  const r = await benchPrefixCache({ size: values.size!, prefix: Number(values.prefix), reps: Number(values.reps), threads: Number(values.threads) });
  console.log(JSON.stringify(r, null, 2));
}
