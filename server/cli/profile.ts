// `relu-serve profile`: measure how often each FFN neuron fires over a text corpus and
// write our stats file, the locality table (stdout) and chart (SVG next to the stats).
// Also converts PowerInfer's activation_{i}.pt statistics in either direction.

import { InvalidArgumentError, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { describeModelFile, type DescribedModel } from '../profiler/model-file.js';
import { formatLocalityTable } from '../profiler/locality.js';
import { localitySvg } from '../profiler/svg-chart.js';
import { writeFileAtomic } from '../profiler/binary-io.js';
import { exportPowerInferDir, importPowerInferDir } from '../profiler/powerinfer-pt.js';
import { writeStatsFile, type ActivationStats } from '../profiler/stats-format.js';
import { SAMPLE_TEXT, SAMPLE_TEXT_NAME } from '../profiler/sample-text.js';
import { compareSpeed, progressLine, runProfile } from '../profiler/profile-run.js';

export interface ProfileCommandOptions {
  model: string;
  out: string;
  corpus?: string[];
  tokens?: number;
  ctx: number;
  batch: number;
  threads?: number;
  ffnActivation?: string;
  svg?: string;
  importPowerinfer?: string;
  exportPowerinfer?: string;
  speedCheck: boolean;
}

export interface CommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether stderr is a terminal (progress redrawn in place) or a log (a line per 10%). */
  tty: boolean;
  signal?: AbortSignal;
}

export function svgPathFor(statsPath: string): string {
  const ext = extname(statsPath);
  return (ext ? statsPath.slice(0, -ext.length) : statsPath) + '.svg';
}

function finish(stats: ActivationStats, o: ProfileCommandOptions, io: CommandIo): void {
  writeStatsFile(o.out, stats);
  const svg = o.svg ?? svgPathFor(o.out);
  writeFileAtomic(svg, localitySvg(stats));
  io.out(formatLocalityTable(stats) + '\n');
  io.out(`wrote ${o.out} (stats) and ${svg} (locality chart)\n`);
  if (o.exportPowerinfer) {
    const files = exportPowerInferDir(o.exportPowerinfer, stats);
    io.out(`wrote ${files.length} PowerInfer activation files to ${o.exportPowerinfer}\n`);
  }
}

export async function tokenize(model: { metadata: Map<string, unknown> }, o: Pick<ProfileCommandOptions, 'corpus' | 'tokens'>, io: Pick<CommandIo, 'err'>): Promise<{ ids: Int32Array; source: string }> {
  const { SpmTokenizer } = await import('../tokenizer/spm.js');
  const { vocabFromMetadata } = await import('../tokenizer/vocab.js');
  const tok = new SpmTokenizer(vocabFromMetadata(model.metadata as never));
  const texts = o.corpus?.length
    ? o.corpus.map((f) => {
        try {
          return readFileSync(f, 'utf8');
        } catch (e) {
          throw new Error(`cannot read corpus file ${f}: ${(e as Error).message}`);
        }
      })
    : [SAMPLE_TEXT];
  const source = o.corpus?.length ? o.corpus.map((f) => basename(f)).join(', ') : SAMPLE_TEXT_NAME;
  let ids: number[] = [];
  for (const t of texts) for (const id of tok.encode(t)) ids.push(id);
  if (ids.length === 0) throw new Error('the corpus is empty');
  if (o.tokens !== undefined) {
    if (o.tokens > ids.length && !o.corpus?.length) {
      // The built-in sample is short: repeat it (each copy starts a new document).
      const one = ids;
      while (ids.length < o.tokens) ids = ids.concat(one);
    } else if (o.tokens > ids.length) {
      io.err(`note: the corpus has ${ids.length} tokens, fewer than --tokens ${o.tokens}; profiling all of them\n`);
    }
    ids = ids.slice(0, o.tokens);
  }
  return { ids: Int32Array.from(ids), source };
}

async function profileWithEngine(desc: DescribedModel, o: ProfileCommandOptions, io: CommandIo): Promise<void> {
  const { Model } = await import('../engine/engine.js');
  const model = await Model.load(o.model, { ffnActivation: (o.ffnActivation ?? 'auto') as 'auto' });
  try {
    if (model.info.nLayer !== desc.nLayer || model.info.nFf !== desc.nFf) {
      throw new Error(`engine and header disagree on the model shape (${model.info.nLayer}x${model.info.nFf} vs ${desc.nLayer}x${desc.nFf})`);
    }
    if (model.info.ffnActivation === 'swiglu') {
      io.err(
        'warning: this model uses SwiGLU (not a ReLU model), so almost every neuron is non-zero on every token; ' +
          'pass --ffn-activation relu_glu or drelu if the model was trained with ReLU\n',
      );
    }
    const { ids, source } = await tokenize(model, o, io);
    const ctx = await model.createContext({ nSeq: 1, nCtx: o.ctx, nBatch: Math.min(o.batch, o.ctx), threads: o.threads });
    try {
      io.err(`profiling ${desc.name}: ${ids.length} tokens from ${source}, windows of ${o.ctx}, FFN computed densely\n`);
      let lastDraw = 0;
      let lastTenth = -1;
      const run = await runProfile(ctx, ids, {
        nCtx: o.ctx,
        nBatch: Math.min(o.batch, o.ctx),
        signal: io.signal,
        onProgress: (p) => {
          const now = performance.now();
          const tenth = Math.floor((10 * p.done) / p.total);
          if (io.tty && (now - lastDraw > 150 || p.done === p.total)) {
            io.err(`\r${progressLine(p)}`);
            lastDraw = now;
          } else if (!io.tty && tenth !== lastTenth) {
            io.err(`${progressLine(p)}\n`);
            lastTenth = tenth;
          }
        },
      });
      if (io.tty) io.err('\n');
      if (run.interrupted) io.err(`interrupted: keeping the ${run.tokens} tokens counted so far\n`);
      const profileRate = run.elapsedMs > 0 ? (1000 * run.tokens) / run.elapsedMs : 0;
      io.err(`profiled ${run.tokens} tokens in ${(run.elapsedMs / 1000).toFixed(1)} s (${profileRate.toFixed(1)} tok/s)\n`);
      if (o.speedCheck && !run.interrupted && run.tokens > 0) {
        // Same windows and batches with counting off and on, on up to two windows.
        const sample = ids.subarray(0, Math.min(ids.length, 2 * o.ctx));
        const s = await compareSpeed(ctx, sample, { nCtx: o.ctx, nBatch: Math.min(o.batch, o.ctx) });
        io.err(
          `speed check on the first ${sample.length} tokens: plain prompt processing ${s.plain.toFixed(1)} tok/s, ` +
            `with counting ${s.counting.toFixed(1)} tok/s: profiling runs at ${(s.counting / s.plain).toFixed(2)}x of it\n`,
        );
      }
      if (desc.tensors.some((t) => /\.fc1\.weight$/.test(t.name)) && !run.predictor) {
        io.err('note: this model has predictors, but the engine does not evaluate them yet: no recall/precision recorded\n');
      }
      finish({ identity: desc.identity, tokens: run.tokens, source: `profile: ${source}`, counts: run.counts, predictor: run.predictor }, o, io);
    } finally {
      ctx.dispose();
    }
  } finally {
    model.dispose();
  }
}

export async function profileCommand(o: ProfileCommandOptions, io: CommandIo): Promise<void> {
  for (const [k, v] of [['--ctx', o.ctx], ['--batch', o.batch]] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${k} must be a positive integer`);
  }
  if (o.tokens !== undefined && (!Number.isSafeInteger(o.tokens) || o.tokens <= 0)) throw new Error('--tokens must be a positive integer');
  const desc = await describeModelFile(o.model);
  if (o.importPowerinfer) {
    const { stats, scale } = importPowerInferDir(o.importPowerinfer, desc);
    if (scale !== 1) io.err(`note: the PowerInfer files hold frequencies, not counts; scaled by ${scale} and rounded\n`);
    finish(stats, o, io);
    return;
  }
  await profileWithEngine(desc, o, io);
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  // commander prints InvalidArgumentError as a usage error instead of a stack trace.
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

export function registerProfile(program: Command): void {
  program
    .command('profile')
    .description('count how often each FFN neuron fires over a text corpus (stats file, table, SVG chart)')
    .requiredOption('--model <file>', 'GGUF model')
    .requiredOption('--out <stats>', 'stats file to write (.rsst); the chart goes next to it as .svg')
    .option('--corpus <file...>', 'plain-text files to run (default: a built-in sample text)')
    .option('--tokens <n>', 'profile at most n tokens (the built-in sample repeats to reach n)', int('--tokens'))
    .option('--ctx <n>', 'window length: the KV cache is cleared every n tokens', int('--ctx'), 512)
    .option('--batch <n>', 'tokens per decode call', int('--batch'), 512)
    .option('--threads <n>', 'compute threads (default: all cores)', int('--threads'))
    .option('--ffn-activation <act>', 'override the FFN activation: auto, relu_glu, drelu, swiglu', 'auto')
    .option('--svg <file>', 'where to write the chart (default: next to --out)')
    .option('--import-powerinfer <dir>', "convert PowerInfer's activation/activation_{i}.pt instead of running the model")
    .option('--export-powerinfer <dir>', 'also write the counts as activation_{i}.pt files')
    .option('--speed-check', 'afterwards, time plain prompt processing against profiling on the first windows (7 extra passes)', false)
    .action(async (opts: ProfileCommandOptions) => {
      const ac = new AbortController();
      let interrupts = 0;
      const onSigint = () => {
        interrupts++;
        if (interrupts > 1) process.exit(130);
        process.stderr.write('\nstopping after the current batch (Ctrl-C again to quit without saving)\n');
        ac.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        await profileCommand(opts, {
          out: (s) => process.stdout.write(s),
          err: (s) => process.stderr.write(s),
          tty: process.stderr.isTTY === true,
          signal: ac.signal,
        });
      } catch (e) {
        process.stderr.write(`relu-serve profile: ${(e as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
