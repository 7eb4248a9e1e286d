// Decode and prompt speed of relu-serve against llama.cpp on the same GGUF file and
// thread count, in alternating rounds in one process (this machine is noisy: the ratio
// of each round, measured side by side, is the figure; the median of those is printed).
// llama.cpp comes from the npm package node-llama-cpp (prebuilt llama.cpp CPU builds),
// installed outside the repo (it is ~700 MB): see README.md here.
//
//   node tools/llama-cpp-compare/compare.mjs --llama-dir DIR --model FILE.gguf
//        [--threads 2] [--rounds 5] [--gen 32] [--prompt 128] [--ffn-mode dense]
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const { values: o } = parseArgs({
  options: {
    'llama-dir': { type: 'string' },
    model: { type: 'string' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    gen: { type: 'string', default: '32' },
    prompt: { type: 'string', default: '128' },
    'ffn-mode': { type: 'string', default: 'dense' },
  },
});
if (!o['llama-dir'] || !o.model) {
  console.error('usage: compare.mjs --llama-dir DIR --model FILE.gguf [--threads N] [--rounds N] [--gen N] [--prompt N]');
  process.exit(2);
}
const threads = Number(o.threads), rounds = Number(o.rounds), nGen = Number(o.gen), nPrompt = Number(o.prompt);
const root = resolve(new URL('../..', import.meta.url).pathname);
const { Model, sequenceBatch } = await import(pathToFileURL(join(root, 'dist/server/engine/engine.js')).href);
const req = createRequire(join(resolve(o['llama-dir']), 'package.json'));
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(req.resolve('node-llama-cpp')).href);

// The same token ids for both: ids below the vocabulary size of any real model.
const promptIds = Array.from({ length: nPrompt }, (_, i) => 1 + ((i * 37 + 11) % 997));
const decodeIds = Array.from({ length: nGen }, (_, i) => 1 + ((i * 53 + 5) % 997));

// relu-serve: the prompt in one batch, then nGen single-token steps (fixed ids: the
// speed of a step does not depend on which token it is, and both engines get the same).
const ours = await Model.load(resolve(o.model));
async function runOurs() {
  const ctx = await ours.createContext({ nSeq: 1, nCtx: nPrompt + nGen + 8, nBatch: Math.max(nPrompt, 1), threads, ffnMode: o['ffn-mode'] });
  try {
    let t = performance.now();
    await ctx.decode(sequenceBatch(promptIds, 0, 0));
    const promptMs = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < nGen; i++) await ctx.decode(sequenceBatch([decodeIds[i]], 0, nPrompt + i));
    return { prompt: nPrompt / promptMs * 1e3, gen: nGen / (performance.now() - t) * 1e3 };
  } finally {
    ctx.dispose();
  }
}

// llama.cpp through node-llama-cpp's low-level sequence API: the same ids, one
// evaluation of the prompt, then one evaluation per token.
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const theirs = await llama.loadModel({ modelPath: resolve(o.model), gpuLayers: 0 });
async function runTheirs() {
  const ctx = await theirs.createContext({ contextSize: nPrompt + nGen + 8, threads, batchSize: Math.max(nPrompt, 1) });
  try {
    const seq = ctx.getSequence();
    let t = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(promptIds);
    const promptMs = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < nGen; i++) await seq.evaluateWithoutGeneratingNewTokens([decodeIds[i]]);
    return { prompt: nPrompt / promptMs * 1e3, gen: nGen / (performance.now() - t) * 1e3 };
  } finally {
    await ctx.dispose();
  }
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const rows = [];
await runOurs(); await runTheirs(); // warm-up: page cache, repacking, thread start
for (let r = 0; r < rounds; r++) {
  const a = await runOurs(), b = await runTheirs();
  rows.push({ a, b });
  console.log(`round ${r + 1}: decode ${a.gen.toFixed(2)} vs ${b.gen.toFixed(2)} tok/s (x${(a.gen / b.gen).toFixed(2)}), ` +
    `prompt ${a.prompt.toFixed(1)} vs ${b.prompt.toFixed(1)} tok/s (x${(a.prompt / b.prompt).toFixed(2)})`);
}
console.log(JSON.stringify({
  model: o.model, threads, prompt_tokens: nPrompt, gen_tokens: nGen, ffn_mode: o['ffn-mode'],
  decode_ratio_median: +median(rows.map((x) => x.a.gen / x.b.gen)).toFixed(3),
  prompt_ratio_median: +median(rows.map((x) => x.a.prompt / x.b.prompt)).toFixed(3),
  ours_decode_median: +median(rows.map((x) => x.a.gen)).toFixed(2), llama_cpp_decode_median: +median(rows.map((x) => x.b.gen)).toFixed(2),
  ours_prompt_median: +median(rows.map((x) => x.a.prompt)).toFixed(1), llama_cpp_prompt_median: +median(rows.map((x) => x.b.prompt)).toFixed(1),
}));
await theirs.dispose();
ours.dispose();
