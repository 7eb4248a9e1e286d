// `relu-serve perplexity`: how well a model predicts a text file, computed by the engine.
//
// Protocol (the same as tools/train/reference.py, so the two can be compared): encode the
// whole text without <s>; cut the ids into consecutive chunks of ctx-1 tokens (the last may
// be shorter); put <s> in front of each chunk and decode it from position 0 with logits for
// every row; score each chunk token by the log-softmax of the row before it.
// ppl = exp(mean NLL). With the cpu backend it also reports, per layer, the fraction of FFN
// neurons that were exactly zero over the decoded rows (activation sparsity).
import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { Model, sequenceBatch } from '../engine/engine.js';
import type { Isa } from '../engine/types.js';
import { SpmTokenizer } from '../tokenizer/spm.js';

export interface PerplexityOptions {
  model: string;
  file: string;
  /** Chunk length including the <s>; default and maximum: the model's training context. */
  ctx?: number;
  /** Stop after this many text tokens (0: all). */
  maxTokens?: number;
  threads?: number;
  backend?: 'cpu' | 'ref';
  isa?: Isa;
}

export interface PerplexityResult {
  model: string;
  file: string;
  ctx: number;
  textTokens: number;
  scoredTokens: number;
  chunks: number;
  meanNll: number;
  perplexity: number;
  /** Per layer; absent with the ref backend, which does not count activations. */
  ffnZeroFractionPerLayer?: number[];
  seconds: number;
}

/** -log p(target) from one row of logits, in double precision. */
export function negLogProb(logits: Float32Array, offset: number, nVocab: number, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < nVocab; i++) if (logits[offset + i] > max) max = logits[offset + i];
  let sum = 0;
  for (let i = 0; i < nVocab; i++) sum += Math.exp(logits[offset + i] - max);
  return Math.log(sum) + max - logits[offset + target];
}

export async function runPerplexity(o: PerplexityOptions): Promise<PerplexityResult> {
  let text: string;
  try {
    if (!statSync(o.file).isFile()) throw new Error('not a regular file');
    text = readFileSync(o.file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read text file '${o.file}': ${(err as Error).message}`);
  }
  const t0 = performance.now();
  const model = await Model.load(o.model);
  try {
    const info = model.info;
    const ctxLen = o.ctx ?? info.nCtxTrain;
    if (!Number.isInteger(ctxLen) || ctxLen < 2) throw new Error(`--ctx must be an integer >= 2, got ${o.ctx}`);
    if (ctxLen > info.nCtxTrain) {
      throw new Error(`--ctx ${ctxLen} exceeds the model's training context ${info.nCtxTrain}`);
    }
    const tok = SpmTokenizer.fromMetadata(model.metadata);
    const bos = model.metadata.get('tokenizer.ggml.bos_token_id');
    if (typeof bos !== 'number') throw new Error('the model has no tokenizer.ggml.bos_token_id');
    let ids = tok.encode(text, { addBos: false });
    if (o.maxTokens && o.maxTokens > 0) ids = ids.slice(0, o.maxTokens);
    if (ids.length === 0) throw new Error(`'${o.file}' holds no text to score`);

    const backend = o.backend ?? 'cpu';
    const ctx = await model.createContext({
      nSeq: 1, nCtx: ctxLen, nBatch: ctxLen, threads: o.threads ?? 0, isa: o.isa ?? 'best', backend,
    });
    try {
      if (backend === 'cpu') ctx.setActivationCounting(true);
      const body = ctxLen - 1;
      let nll = 0;
      let scored = 0;
      let chunks = 0;
      for (let s = 0; s < ids.length; s += body) {
        const chunk = [bos, ...ids.slice(s, s + body)];
        ctx.truncate(0, 0);
        const logits = await ctx.decode(sequenceBatch(chunk, 0, 0, true));
        for (let j = 1; j < chunk.length; j++) nll += negLogProb(logits, (j - 1) * info.nVocab, info.nVocab, chunk[j]);
        scored += chunk.length - 1;
        chunks++;
      }
      const result: PerplexityResult = {
        model: o.model,
        file: o.file,
        ctx: ctxLen,
        textTokens: ids.length,
        scoredTokens: scored,
        chunks,
        meanNll: nll / scored,
        perplexity: Math.exp(nll / scored),
        seconds: 0,
      };
      if (backend === 'cpu') {
        const counts = ctx.activationCounts();
        result.ffnZeroFractionPerLayer = counts.layers.map((layer) => {
          let fired = 0;
          for (const c of layer) fired += c;
          return 1 - fired / (counts.rows * info.nFf);
        });
      }
      result.seconds = (performance.now() - t0) / 1000;
      return result;
    } finally {
      ctx.dispose();
    }
  } finally {
    model.dispose();
  }
}

function report(r: PerplexityResult): string {
  const lines = [
    `model        ${r.model}`,
    `text         ${r.file}: ${r.textTokens} tokens, ${r.chunks} chunks of up to ${r.ctx} positions`,
    `perplexity   ${r.perplexity.toFixed(4)} (mean NLL ${r.meanNll.toFixed(5)} over ${r.scoredTokens} tokens)`,
  ];
  if (r.ffnZeroFractionPerLayer) {
    lines.push(`FFN zeros    ${r.ffnZeroFractionPerLayer.map((z) => `${(100 * z).toFixed(1)}%`).join(' ')} (per layer)`);
  }
  lines.push(`time         ${r.seconds.toFixed(1)} s`);
  return lines.join('\n');
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

export function registerPerplexity(program: Command): void {
  program
    .command('perplexity')
    .description('perplexity of a model on a text file (chunks of the context length, each opened by <s>)')
    .requiredOption('--file <text>', 'UTF-8 text file to score')
    .option('--model <file>', 'GGUF model', 'models/bamboo-kjv-mini.gguf')
    .option('--ctx <n>', 'chunk length including <s> (default: the model context length)', positiveInt('--ctx'))
    .option('--max-tokens <n>', 'score at most this many text tokens (0: all)', positiveInt('--max-tokens'), 0)
    .option('--threads <n>', 'compute threads (0: all cores)', positiveInt('--threads'), 0)
    .option('--backend <name>', 'cpu or ref (the plain reference kernels)', 'cpu')
    .option('--isa <isa>', 'instruction-set cap: scalar, avx2, avx512, best', 'best')
    .option('--json', 'print one JSON object')
    .action(async (opts) => {
      if (opts.backend !== 'cpu' && opts.backend !== 'ref') {
        throw new Error(`--backend must be cpu or ref, got '${opts.backend}'`);
      }
      const r = await runPerplexity(opts as PerplexityOptions);
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : report(r)) + '\n');
    });
}
