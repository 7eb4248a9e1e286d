// Runs the built engine (dist/) on what tools/train/reference.json describes and prints
// one JSON object: the engine's perplexity on the held-out text, its greedy continuations
// of the same prompt ids, and the TS tokenizer's ids for the tokenizer samples.
// Used by test_engine_agreement.py; run from the repository root:
//   node tools/train/engine_probe.mjs <model.gguf> <reference.json> <tokenizer_samples.json>
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const dist = (p) => pathToFileURL(resolve('dist', p)).href;
const { Model, sequenceBatch } = await import(dist('server/engine/engine.js'));
const { runPerplexity } = await import(dist('server/cli/perplexity.js'));
const { SpmTokenizer } = await import(dist('server/tokenizer/spm.js'));

const [modelPath, refPath, samplesPath] = process.argv.slice(2);
if (!modelPath || !refPath || !samplesPath) {
  process.stderr.write('usage: node tools/train/engine_probe.mjs <model.gguf> <reference.json> <tokenizer_samples.json>\n');
  process.exit(2);
}
const ref = JSON.parse(readFileSync(refPath, 'utf8'));
const samples = JSON.parse(readFileSync(samplesPath, 'utf8')).samples;
const backend = process.env.PROBE_BACKEND ?? 'cpu';

const ppl = await runPerplexity({ model: modelPath, file: ref.heldout_file, backend, threads: 1 });

const model = await Model.load(modelPath);
const tok = SpmTokenizer.fromMetadata(model.metadata);
const nVocab = model.info.nVocab;
const ctx = await model.createContext({ nSeq: 1, nCtx: model.info.nCtxTrain, nBatch: 64, threads: 1, backend });
const argmax = (x) => {
  let b = 0;
  for (let i = 1; i < nVocab; i++) if (x[i] > x[b]) b = i;
  return b;
};
const greedy = [];
for (const g of ref.greedy) {
  ctx.truncate(0, 0);
  let logits = await ctx.decode(sequenceBatch(g.prompt_ids, 0, 0));
  const out = [];
  for (let i = 0; i < g.greedy_ids.length; i++) {
    const t = argmax(logits);
    out.push(t);
    if (i + 1 < g.greedy_ids.length) logits = await ctx.decode(sequenceBatch([t], 0, g.prompt_ids.length + i));
  }
  greedy.push({ prompt: g.prompt, prompt_ids_ts: tok.encode(g.prompt, { addBos: true }), greedy_ids: out, text: tok.decode(out) });
}
ctx.dispose();
model.dispose();

const tokenizer = samples.map((s) => tok.encode(s.text, { addBos: false }));
process.stdout.write(JSON.stringify({ perplexity: ppl, greedy, tokenizer }) + '\n');
