// `relu-serve train-predictor`: trains PowerInfer activation predictors for a ReLU or
// dReLU model and writes the model in PowerInfer's format with them (server/training/).

import { InvalidArgumentError, type Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { progressLine } from '../profiler/profile-run.js';
import { tokenize } from './profile.js';
import { checkTrainable, formatLayer, trainPredictors, type TrainReport } from '../training/train-predictors.js';
import { evaluatePredictorFile, type EvalReport } from '../training/evaluate.js';

export interface TrainPredictorCliOptions {
  model: string;
  out: string;
  corpus?: string[];
  tokens: number;
  rank: string;
  targetRecall: number;
  seed: number;
  epochs: number;
  lr: number;
  heldoutShare: number;
  ctx: number;
  batch: number;
  threads?: number;
  ffnActivation: string;
  evalFile?: string;
  evalTokens: number;
  report?: string;
  /** Skip collection and training: evaluate an existing --out file against --model. */
  evaluateOnly?: boolean;
  rounds: number;
}

export interface TrainIo {
  out: (s: string) => void;
  err: (s: string) => void;
  tty: boolean;
  signal?: AbortSignal;
}

export function formatReport(r: TrainReport | undefined, e?: EvalReport): string {
  const lines = !r ? [] : [
    `model      ${r.model} -> ${r.out} (${r.fileBytes} bytes, predictors ${r.predictorType}, threshold ${r.threshold})`,
    `rows       ${r.tokens} collected (${r.trainRows} train, ${r.heldoutRows} held out)${r.interrupted ? ', collection interrupted' : ''}`,
    `time       collect ${r.collectSeconds.toFixed(1)} s, train ${r.trainSeconds.toFixed(1)} s`,
    ...r.layers.map(formatLayer),
  ];
  if (e) {
    const s = e.decodeTokensPerSecond;
    lines.push(
      `held-out   ${e.tokens} tokens: perplexity dense ${e.perplexityDense.toFixed(3)}, predictor ${e.perplexityPredictor.toFixed(3)} ` +
        `(${(100 * (e.perplexityPredictor / e.perplexityDense - 1)).toFixed(2)}%); teacher-forced top-1 agreement ${(100 * e.agreement).toFixed(2)}%`,
      `decode     ${e.decodeSteps} steps, median of ${e.decodeRounds} interleaved rounds: dense ${s.dense.toFixed(1)} tok/s, exact ${s.exact.toFixed(1)} tok/s ` +
        `(trained file: ${s.exactTrained.toFixed(1)}), predictor ${s.predictor.toFixed(1)} tok/s`,
    );
  }
  return lines.join('\n') + '\n';
}

export async function trainPredictorCommand(o: TrainPredictorCliOptions, io: TrainIo): Promise<{ train?: TrainReport; eval?: EvalReport }> {
  const rank = o.rank === 'auto' ? 'auto' : Number(o.rank);
  if (rank !== 'auto' && !(Number.isInteger(rank) && rank > 0)) throw new Error(`--rank must be a positive integer or auto, got '${o.rank}'`);
  const { Model } = await import('../engine/engine.js');
  let train: TrainReport | undefined;
  if (o.evaluateOnly && !o.evalFile) throw new Error('--evaluate-only needs --eval-file');
  if (!o.evaluateOnly) {
    const model = await Model.load(o.model, { ffnActivation: o.ffnActivation as 'auto' });
    try {
      checkTrainable(model); // before reading the corpus
      const { ids, source } = await tokenize(model, { corpus: o.corpus, tokens: o.tokens }, io);
      const nCtx = Math.min(o.ctx, model.info.nCtxTrain);
      io.err(`collecting from ${source}: ${ids.length} tokens, windows of ${nCtx}\n`);
      let lastDraw = 0;
      train = await trainPredictors(model, {
        modelPath: o.model, out: o.out, tokens: ids, rank, targetRecall: o.targetRecall, seed: o.seed, epochs: o.epochs, lr: o.lr,
        heldoutShare: o.heldoutShare, nCtx, nBatch: o.batch, threads: o.threads, signal: io.signal,
        onProgress: (p) => {
          const now = performance.now();
          if (now - lastDraw > (io.tty ? 150 : 5000) || p.done === p.total) {
            io.err(io.tty ? `\r${progressLine(p)}` : `${progressLine(p)}\n`);
            lastDraw = now;
          }
        },
        log: (s) => io.err((io.tty ? '\n' : '') + s),
      });
    } finally {
      model.dispose();
    }
  }
  let ev: EvalReport | undefined;
  if (o.evalFile) {
    const text = readFileSync(o.evalFile, 'utf8');
    const m = await Model.load(o.model);
    let ids: Int32Array;
    try {
      const { SpmTokenizer } = await import('../tokenizer/spm.js');
      ids = Int32Array.from(SpmTokenizer.fromMetadata(m.metadata).encode(text, { addBos: false }).slice(0, o.evalTokens));
    } finally {
      m.dispose();
    }
    io.err(`evaluating on ${ids.length} tokens of ${o.evalFile} (dense vs predictor mode)\n`);
    ev = await evaluatePredictorFile(o.model, o.out, ids, { threads: o.threads, rounds: o.rounds });
  }
  const text = formatReport(train, ev);
  io.out(text);
  const reportPath = o.report ?? `${o.out}.report.json`;
  writeFileSync(reportPath, JSON.stringify({ train, eval: ev }, null, 2) + '\n');
  io.out(`${o.evaluateOnly ? 'evaluated' : 'wrote'} ${o.out}; report ${reportPath}\n`);
  return { train, eval: ev };
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};
const frac = (name: string) => (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`${name} must be between 0 and 1, got ${JSON.stringify(v)}`);
  return n;
};

export function registerTrainPredictor(program: Command): void {
  program
    .command('train-predictor')
    .description('train activation predictors for a ReLU/dReLU model and write it in PowerInfer format')
    .requiredOption('--model <file>', 'GGUF model with a ReLU-gated or dReLU FFN')
    .requiredOption('--out <file>', 'the PowerInfer-format model to write (.powerinfer.gguf)')
    .option('--corpus <file...>', 'plain-text files to collect activations from (default: a built-in sample text)')
    .option('--tokens <n>', 'collect at most n tokens (the built-in sample repeats to reach n)', int('--tokens'), 20000)
    .option('--rank <r>', "predictor rank, or 'auto' (smallest rank per layer that meets the target on held-out rows)", '64')
    .option('--target-recall <x>', 'share of active neurons the predictor must select on held-out rows', frac('--target-recall'), 0.99)
    .option('--seed <n>', 'training seed (same inputs and seed: same file)', int('--seed'), 1)
    .option('--epochs <n>', 'passes over the training rows', int('--epochs'), 8)
    .option('--lr <x>', "Adam's learning rate (decays linearly to a tenth)", (v: string) => {
      const n = Number(v);
      if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`--lr must be between 0 and 1, got ${JSON.stringify(v)}`);
      return n;
    }, 1e-2)
    .option('--heldout-share <x>', 'share of the collected rows held out (the last ones)', frac('--heldout-share'), 0.1)
    .option('--ctx <n>', 'window length for collection (at most the model context)', int('--ctx'), 512)
    .option('--batch <n>', 'tokens per decode call while collecting', int('--batch'), 512)
    .option('--threads <n>', 'compute threads (default: all cores)', int('--threads'))
    .option('--ffn-activation <act>', 'override the FFN activation: auto, relu_glu, drelu, swiglu', 'auto')
    .option('--eval-file <text>', 'held-out text: also measure perplexity, teacher-forced agreement and decode speed against the dense model')
    .option('--eval-tokens <n>', 'evaluate on at most n tokens of --eval-file', int('--eval-tokens'), 4000)
    .option('--rounds <n>', 'decode speed: interleaved rounds of each mode (median reported)', int('--rounds'), 7)
    .option('--evaluate-only', 'skip training: evaluate the existing --out file against --model on --eval-file', false)
    .option('--report <file>', 'where to write the JSON report (default: <out>.report.json)')
    .action(async (opts: TrainPredictorCliOptions) => {
      const ac = new AbortController();
      let interrupts = 0;
      const onSigint = () => {
        interrupts++;
        if (interrupts > 1) process.exit(130);
        process.stderr.write('\nstopping collection after the current batch; training on what was collected (Ctrl-C again to quit)\n');
        ac.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        await trainPredictorCommand(opts, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), tty: process.stderr.isTTY === true, signal: ac.signal });
      } catch (e) {
        process.stderr.write(`train-predictor: ${(e as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
