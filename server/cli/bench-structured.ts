// Structured-output overhead: ms per generated token with and without a grammar, same
// model, prompt (kept in the prefix cache) and token count, through the HTTP layer. The
// constrained requests use a JSON grammar that never closes (a list of objects with
// string and number fields), so every request runs to max_tokens like the free ones.
// The first constrained request (vocabulary trie, first masks) is timed apart.
//
// The machine may be shared, so one timing says little: each rep runs a free and a
// constrained request back to back (the order alternating between reps) and the figure
// is the ratio within each pair, reported as median and spread. The constraint's own
// cost is also timed in-process, without the model: its apply + accept per token over
// random logits (uniform logits draw rare tokens, so this is a worst case for the
// per-state caches).
//
// --vocab-size N writes (once, under models/.cache/) a model of that size with an N-token
// vocabulary: real models have 32000 or more, the constraint's masks scale with it.
//
//   node dist/server/cli/bench-structured.js [--size small|1b] [--vocab-size N] [--tokens 64] [--reps 10] [--temperature 1] [--threads N]
//
// At temperature > 0 the free requests' sampler weighs every token while the constrained
// ones skip the masked ones, so the end-to-end ratio can fall below 1; --temperature 0
// (argmax either way) compares like with like.

import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { benchModelPath } from './bench-models.js';
import { makeModel } from './make-model.js';
import { buildApp } from '../app.js';
import { createRuntime } from '../scheduler/load.js';
import { makeConstraint } from '../grammar/picker.js';
import { Sampler } from '../sampling/sampler.js';
import type { RuntimeTokenizer } from '../scheduler/runtime.js';

const GRAMMAR = `root ::= "{\\"items\\": [" item ( "," ws item )*
item ::= "{" ws "\\"name\\":" ws string "," ws "\\"n\\":" ws number ws "}"
ws ::= " "?
string ::= "\\"" char* "\\""
char ::= [^"\\\\\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})
number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})?
`;

export async function benchStructured(o: { size: string; vocabSize?: number; tokens: number; reps: number; threads: number; temperature?: number }): Promise<Record<string, unknown>> {
  let modelPath: string;
  if (o.vocabSize === undefined) modelPath = await benchModelPath({ arch: 'bamboo', size: o.size, type: 'q4_0' });
  else {
    modelPath = join(process.cwd(), 'models', '.cache', `bench-structured-bamboo-${o.size}-q4_0-v${o.vocabSize}.gguf`);
    if (!existsSync(modelPath)) await makeModel({ arch: 'bamboo', size: o.size, type: 'q4_0', seed: 1, vocabSize: o.vocabSize, out: modelPath });
  }
  const runtime = await createRuntime({ modelPath, parallel: 1, ctxSize: 512, threads: o.threads, batchSize: 512 });
  const app = await buildApp({ runtime, defaultMetrics: false });
  await app.modelReady;
  const eos = runtime.tokenizer.eosId;
  const ask = async (structured: boolean, seed: number) => {
    const payload: Record<string, unknown> = { prompt: 'Here is the list:', max_tokens: o.tokens, temperature: o.temperature ?? 1, seed, logit_bias: { [eos]: -100 } };
    if (structured) payload.grammar = GRAMMAR;
    const t0 = performance.now();
    const res = await app.inject({ method: 'POST', url: '/v1/completions', payload });
    const ms = performance.now() - t0;
    const u = (res.json() as { usage: { completion_tokens: number } }).usage;
    return ms / u.completion_tokens;
  };
  await ask(false, 0);
  const first = await ask(true, 0); // builds the vocabulary trie and the first masks
  const free: number[] = [];
  const constrained: number[] = [];
  const ratios: number[] = [];
  for (let r = 1; r <= o.reps; r++) {
    let f: number;
    let c: number;
    if (r % 2 === 1) {
      f = await ask(false, r);
      c = await ask(true, r);
    } else {
      c = await ask(true, r);
      f = await ask(false, r);
    }
    free.push(f);
    constrained.push(c);
    ratios.push(c / f);
  }
  await app.close();
  const own = constraintCost(runtime.tokenizer, o.tokens);
  const fm = quantile(free, 0.5);
  return {
    model: modelPath,
    nVocab: runtime.tokenizer.nVocab,
    tokens: o.tokens,
    reps: o.reps,
    temperature: o.temperature ?? 1,
    freeMsPerToken: fm,
    constrainedMsPerToken: quantile(constrained, 0.5),
    ratio: { median: quantile(ratios, 0.5), q25: quantile(ratios, 0.25), q75: quantile(ratios, 0.75), min: Math.min(...ratios), max: Math.max(...ratios) },
    firstConstrainedMsPerToken: first,
    constraintUsPerToken: own,
    constraintShareOfFreeToken: own / 1000 / fm,
  };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = q * (s.length - 1);
  const lo = Math.floor(at);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo);
}

/** Microseconds per token of the constraint alone (apply + accept), steady state, random logits. */
function constraintCost(tok: RuntimeTokenizer, tokens: number): number {
  const n = tok.nVocab;
  let x = 12345;
  const logits = new Float32Array(n);
  const run = (seqs: number): number => {
    let spent = 0;
    let steps = 0;
    for (let q = 0; q < seqs; q++) {
      const c = makeConstraint(tok, GRAMMAR, true);
      const s = new Sampler({ temperature: 1, seed: q }, n);
      for (let i = 0; i < tokens; i++) {
        for (let t = 0; t < n; t++) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          logits[t] = (x / 4294967296) * 8;
        }
        const t0 = performance.now();
        c.apply(logits);
        const t1 = performance.now();
        const tok = s.sample(logits).token;
        const t2 = performance.now();
        if (!c.accept(tok)) throw new Error(`the grammar refused token ${tok} it allowed`);
        spent += t1 - t0 + (performance.now() - t2);
        steps++;
      }
    }
    return (spent / steps) * 1000;
  };
  run(40); // warm the per-state caches, as the HTTP runs above did for their own states
  return run(40);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { size: { type: 'string', default: 'small' }, 'vocab-size': { type: 'string' }, tokens: { type: 'string', default: '64' }, reps: { type: 'string', default: '10' }, threads: { type: 'string', default: '2' }, temperature: { type: 'string', default: '1' } } });
  console.log(JSON.stringify(await benchStructured({ size: values.size!, ...(values['vocab-size'] ? { vocabSize: Number(values['vocab-size']) } : {}), tokens: Number(values.tokens), reps: Number(values.reps), threads: Number(values.threads), temperature: Number(values.temperature) }), null, 2));
}
