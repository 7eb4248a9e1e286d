// Structured-output overhead: ms per generated token with and without a JSON schema
// constraint, same model, prompt (kept in the prefix cache) and token count, through
// the HTTP layer. The constrained requests use a JSON grammar that never closes (a list
// of objects with string and number fields), so every request runs to max_tokens like
// the free ones. The first constrained request (vocabulary trie, first masks) is timed
// apart from the steady state, where the per-state masks are cached.
//
//   node dist/server/cli/bench-structured.js [--size small|1b] [--tokens 64] [--reps 5] [--threads N]

import { parseArgs } from 'node:util';
import { benchModelPath } from './bench-models.js';
import { buildApp } from '../app.js';
import { createRuntime } from '../scheduler/load.js';

const GRAMMAR = `root ::= "{\\"items\\": [" item ( "," ws item )*
item ::= "{" ws "\\"name\\":" ws string "," ws "\\"n\\":" ws number ws "}"
ws ::= " "?
string ::= "\\"" char* "\\""
char ::= [^"\\\\\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})
number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})?
`;

export async function benchStructured(o: { size: string; tokens: number; reps: number; threads: number }): Promise<Record<string, unknown>> {
  const modelPath = await benchModelPath({ arch: 'bamboo', size: o.size, type: 'q4_0' });
  const runtime = await createRuntime({ modelPath, parallel: 1, ctxSize: 512, threads: o.threads, batchSize: 512 });
  const app = await buildApp({ runtime, defaultMetrics: false });
  await app.modelReady;
  const eos = runtime.tokenizer.eosId;
  const ask = async (structured: boolean, seed: number) => {
    const payload: Record<string, unknown> = { prompt: 'Here is the list:', max_tokens: o.tokens, temperature: 1, seed, logit_bias: { [eos]: -100 } };
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
  for (let r = 1; r <= o.reps; r++) {
    free.push(await ask(false, r));
    constrained.push(await ask(true, r));
  }
  await app.close();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const f = med(free);
  const c = med(constrained);
  return { model: modelPath, nVocab: runtime.tokenizer.nVocab, tokens: o.tokens, freeMsPerToken: f, constrainedMsPerToken: c, overhead: c / f - 1, firstConstrainedMsPerToken: first };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { size: { type: 'string', default: 'small' }, tokens: { type: 'string', default: '64' }, reps: { type: 'string', default: '5' }, threads: { type: 'string', default: '2' } } });
  console.log(JSON.stringify(await benchStructured({ size: values.size!, tokens: Number(values.tokens), reps: Number(values.reps), threads: Number(values.threads) }), null, 2));
}
