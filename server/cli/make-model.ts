// `relu-serve make-model`: write a synthetic, seeded GGUF model (llama or bamboo shape,
// any supported weight type) for tests and benchmarks. Same arguments -> same bytes.
// See server/gguf/synthetic-model.ts for shapes, weight scales and type choices.
import type { Command } from 'commander';
import { rename, rm, stat } from 'node:fs/promises';
import { ARCHS, SIZES, WEIGHT_TYPES, syntheticModelSpec, type ModelArch, type ModelSize } from '../gguf/synthetic-model.js';
import { writeGguf } from '../gguf/writer.js';
import { sparseModelSpec } from '../gguf/synthetic-sparse.js';
import type { PredictorMode } from '../gguf/synthetic-sparse-design.js';

export interface MakeModelOptions {
  /** llama | bamboo */
  arch: string;
  /** tiny | small | 1b | 7b */
  size: string;
  /** f32 | f16 | bf16 | q8_0 | q4_0 | q4_k | q5_k | q6_k */
  type: string;
  seed: number | bigint;
  out: string;
  vocabSize?: number;
  /** llama: a ReLU-gated FFN model (named like ReluLLaMA). bamboo is ReLU already. */
  relu?: boolean;
  /** Tie the output projection to the token embedding (no output.weight). */
  tied?: boolean;
  /** Stored as tokenizer.chat_template. */
  chatTemplate?: string;
  onTensor?: (index: number, count: number, name: string) => void;
  /** Write a PowerInfer (PWRI) file with predictors and power-law FFN activity. */
  sparse?: boolean;
  /** --sparse: mean fraction of zero FFN neurons per token (default 0.9). */
  sparsity?: number;
  /** --sparse: exact (recall 100%, default) or lowrank. */
  predictor?: string;
  /** --sparse: predictor hidden size (default n_embd / 64 + 1, at least 17). */
  predictorRank?: number;
  /** --sparse: powerinfer.sparse_threshold (default depends on the predictor). */
  threshold?: number;
}

export interface MakeModelResult {
  path: string;
  tensors: number;
  bytes: number;
}

/**
 * Write the model to `out` (via a temporary file renamed at the end, so a failed or
 * interrupted run never leaves a half-written model under the real name).
 */
export async function makeModel(opts: MakeModelOptions): Promise<MakeModelResult> {
  if (!(ARCHS as readonly string[]).includes(opts.arch)) {
    throw new RangeError(`--arch: unknown architecture ${JSON.stringify(opts.arch)} (expected ${ARCHS.join(', ')})`);
  }
  if (!(SIZES as readonly string[]).includes(opts.size)) {
    throw new RangeError(`--size: unknown size ${JSON.stringify(opts.size)} (expected ${SIZES.join(', ')})`);
  }
  if (!(WEIGHT_TYPES as readonly string[]).includes(opts.type)) {
    throw new RangeError(`--type: unknown weight type ${JSON.stringify(opts.type)} (expected ${WEIGHT_TYPES.join(', ')})`);
  }
  if (!opts.out) throw new RangeError('--out: an output file is required');
  if (!opts.sparse && (opts.sparsity !== undefined || opts.predictor !== undefined || opts.predictorRank !== undefined || opts.threshold !== undefined)) {
    throw new RangeError('--sparsity, --predictor, --predictor-rank and --threshold need --sparse');
  }
  if (opts.sparse && opts.tied) throw new RangeError('--sparse models have their own output.weight; drop --tied');
  const common = {
    arch: opts.arch as ModelArch,
    size: opts.size as ModelSize,
    type: opts.type,
    seed: opts.seed,
    vocabSize: opts.vocabSize,
    relu: opts.relu,
    tied: opts.tied,
    chatTemplate: opts.chatTemplate,
    onTensor: opts.onTensor,
  };
  const spec = opts.sparse
    ? await sparseModelSpec({
        ...common,
        sparsity: opts.sparsity,
        predictor: opts.predictor as PredictorMode | undefined,
        predictorRank: opts.predictorRank,
        threshold: opts.threshold,
      })
    : await syntheticModelSpec(common);
  const tmp = `${opts.out}.tmp-${process.pid}`;
  try {
    const layout = await writeGguf(tmp, spec);
    await rename(tmp, opts.out);
    return { path: opts.out, tensors: layout.tensors.length, bytes: (await stat(opts.out)).size };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

function parseSeed(v: string): bigint {
  if (!/^-?\d+$/.test(v)) throw new Error(`--seed: ${JSON.stringify(v)} is not an integer`);
  return BigInt(v);
}

function parseNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: ${JSON.stringify(v)} is not a number`);
    return n;
  };
}

function parsePositiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: ${JSON.stringify(v)} is not a positive integer`);
    return n;
  };
}

export function registerMakeModel(program: Command): void {
  program
    .command('make-model')
    .description('write a synthetic GGUF model with seeded random weights (for tests and benchmarks)')
    .requiredOption('--out <file>', 'output GGUF file')
    .option('--arch <arch>', `architecture: ${ARCHS.join(', ')}`, 'llama')
    .option('--size <size>', 'tiny (64 wide, 2 layers), small (256, 4), 1b (2048, 16), 7b (Bamboo-7B shape)', 'tiny')
    .option('--type <type>', `weight type: ${WEIGHT_TYPES.join(', ')}`, 'f16')
    .option('--seed <n>', 'random seed (u64, default 0)', parseSeed)
    .option('--vocab-size <n>', 'vocabulary size (default: the tokenizer fixture for tiny/small, 32000 otherwise)', parsePositiveInt('--vocab-size'))
    .option('--relu', 'llama: ReLU-gated FFN (the file is named like a ReluLLaMA model)')
    .option('--tied', 'no output.weight: the output projection reuses the token embedding')
    .option('--sparse', 'PowerInfer file (PWRI) with predictors; FFN neurons fire by a power law (see server/gguf/synthetic-sparse.ts)')
    .option('--sparsity <x>', '--sparse: mean fraction of zero FFN neurons per token (default 0.9)', parseNumber('--sparsity'))
    .option('--predictor <mode>', '--sparse: exact (never misses an active neuron; default) or lowrank (misses a few, like a trained predictor)')
    .option('--predictor-rank <r>', '--sparse: predictor hidden size, rows of fc1 (default n_embd/64 + 1, at least 17)', parsePositiveInt('--predictor-rank'))
    .option('--threshold <t>', '--sparse: powerinfer.sparse_threshold (default -0.05 exact, -0.1 lowrank, -0.25 K-quant gates)', parseNumber('--threshold'))
    .option('--quiet', 'no progress on stderr')
    .action(async (o) => {
      const t0 = Date.now();
      const r = await makeModel({
        arch: o.arch,
        size: o.size,
        type: o.type,
        // No commander default: its --help prints defaults with JSON.stringify, which throws on a BigInt.
        seed: o.seed ?? 0n,
        out: o.out,
        vocabSize: o.vocabSize,
        relu: Boolean(o.relu),
        tied: Boolean(o.tied),
        sparse: Boolean(o.sparse),
        sparsity: o.sparsity,
        predictor: o.predictor,
        predictorRank: o.predictorRank,
        threshold: o.threshold,
        onTensor: o.quiet
          ? undefined
          : (i, n, name) => {
              if (process.stderr.isTTY) process.stderr.write(`\r${i + 1}/${n} ${name}`.padEnd(60));
            },
      });
      if (!o.quiet && process.stderr.isTTY) process.stderr.write('\n');
      const mib = (r.bytes / 2 ** 20).toFixed(1);
      process.stdout.write(`wrote ${r.path}: ${r.tensors} tensors, ${mib} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    });
}
