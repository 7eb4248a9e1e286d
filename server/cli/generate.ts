// `relu-serve generate`: one prompt in, a completion out, streamed to stdout as it is
// decoded (or one JSON object with --json). The prompt is processed as one batch
// (matrix-matrix), then one token per step.
import type { Command } from 'commander';
import { Model, sequenceBatch } from '../engine/engine.js';
import type { Device, DeviceInfo, FfnActivation, FfnMode, HybridStats, Isa, SparsityStats } from '../engine/types.js';
import { native } from '../engine/binding.js';
import { resolveDevice } from '../engine/device-options.js';
import { parseByteSize } from '../profiler/vram-costs.js';
import { SpmTokenizer } from '../tokenizer/spm.js';
import { Sampler } from '../sampling/sampler.js';
import { defaultConfigPath, readConfigFile } from '../config.js';

export interface GenerateOptions {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  seed?: number;
  threads: number;
  ctxSize: number;
  ffnActivation: 'auto' | FfnActivation;
  ffnMode: FfnMode;
  sparseThreshold?: number;
  isa: Isa;
  bos: boolean;
  json: boolean;
  device?: Device;
  vramBudget?: string;
  placement?: string;
  stats?: string;
  emuMemory?: string;
  emuLatencyUs?: number;
}

export interface GenerateResult {
  prompt: string;
  promptTokens: number[];
  tokens: number[];
  text: string;
  finishReason: 'stop' | 'length';
  timings: { loadMs: number; promptMs: number; promptTokensPerS: number; genMs: number; genTokensPerS: number };
  model: { path: string; arch: string; ffnActivation: string; ffnActivationFrom: string; params: number };
  /** FFN neurons computed per layer (last step and average over the whole run). */
  sparsity: SparsityStats;
  /** Where it ran and what sat in device memory. */
  device: DeviceInfo;
  /** The hybrid runtime's work per side (zeros on the CPU). */
  hybrid: HybridStats;
  seed: string;
}

/** Generates a completion; `onText` receives the text as soon as each piece is complete UTF-8. */
export async function generate(o: GenerateOptions, onText?: (s: string) => void): Promise<GenerateResult> {
  const t0 = performance.now();
  const model = await Model.load(o.model, { ffnActivation: o.ffnActivation });
  const loadMs = performance.now() - t0;
  const tok = SpmTokenizer.fromMetadata(model.metadata);
  const promptTokens = tok.encode(o.prompt, { addBos: o.bos });
  if (promptTokens.length === 0) throw new Error('the prompt encodes to no tokens (give a prompt, or keep BOS)');
  const nCtx = Math.min(o.ctxSize, promptTokens.length + o.maxTokens);
  if (promptTokens.length >= o.ctxSize) {
    throw new Error(`the prompt has ${promptTokens.length} tokens, more than the context size ${o.ctxSize} allows`);
  }
  const nBatch = Math.min(512, promptTokens.length);
  const dev = await resolveDevice(
    {
      device: o.device ?? 'auto',
      vramBudget: o.vramBudget ?? null,
      placement: o.placement ?? null,
      stats: o.stats ?? null,
      emuMemory: o.emuMemory ? parseByteSize(o.emuMemory) : undefined,
      emuLatencyUs: o.emuLatencyUs,
    },
    { modelPath: o.model, nSeq: 1, nCtx, nBatch, ffnMode: o.ffnMode, hasPredictors: model.info.hasPredictors },
    () => native.cuda.devices(),
    (d, emu) => native.deviceMemory(d, emu),
  );
  for (const note of dev.notes) process.stderr.write(`relu-serve: ${note}\n`);
  const ctx = await model.createContext({
    ...dev.options,
    nSeq: 1,
    nCtx,
    nBatch,
    threads: o.threads,
    isa: o.isa,
    ffnMode: o.ffnMode,
    sparseThreshold: o.sparseThreshold,
  });
  const sampler = new Sampler(
    { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repeatPenalty, seed: o.seed },
    model.info.nVocab,
  );
  sampler.acceptMany(promptTokens);
  const eos = model.metadata.get('tokenizer.ggml.eos_token_id');
  const stream = tok.streamDecoder({ continuation: true });
  const out: number[] = [];
  let text = '';
  const emit = (s: string) => {
    if (!s) return;
    text += s;
    onText?.(s);
  };
  try {
    const tp = performance.now();
    let logits: Float32Array = new Float32Array(0);
    for (let i = 0; i < promptTokens.length; i += nBatch) {
      logits = await ctx.decode(sequenceBatch(promptTokens.slice(i, i + nBatch), 0, i));
    }
    const promptMs = performance.now() - tp;
    const tg = performance.now();
    let finishReason: 'stop' | 'length' = 'length';
    while (out.length < o.maxTokens) {
      const { token } = sampler.sample(logits);
      if (token === eos) {
        finishReason = 'stop';
        break;
      }
      out.push(token);
      emit(stream.push(token));
      const pos = promptTokens.length + out.length - 1;
      if (out.length >= o.maxTokens || pos >= nCtx) break; // no room to decode it: stop at length
      logits = await ctx.decode(sequenceBatch([token], 0, pos));
    }
    emit(stream.flush());
    const genMs = performance.now() - tg;
    return {
      prompt: o.prompt,
      promptTokens,
      tokens: out,
      text,
      finishReason,
      timings: {
        loadMs,
        promptMs,
        promptTokensPerS: (promptTokens.length * 1000) / promptMs,
        genMs,
        // The first generated token comes from the prompt's logits: it costs no decode.
        genTokensPerS: out.length > 1 ? ((out.length - 1) * 1000) / genMs : 0,
      },
      model: {
        path: o.model,
        arch: model.info.arch,
        ffnActivation: model.info.ffnActivation,
        ffnActivationFrom: model.info.ffnActivationFrom,
        params: model.info.nParams,
      },
      sparsity: ctx.sparsity(),
      device: ctx.device(),
      hybrid: ctx.hybridStats(),
      seed: sampler.seed.toString(),
    };
  } finally {
    ctx.dispose();
    model.dispose();
  }
}

const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : 0);

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`not an integer: ${v}`);
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${v}`);
  return n;
};

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('generate a completion for a prompt')
    .option('-m, --model <file>', 'GGUF model (default: the config file\'s model, the embedded default model)')
    .requiredOption('-p, --prompt <text>', 'prompt text')
    .option('-n, --max-tokens <n>', 'most tokens to generate', int, 64)
    .option('--temperature <t>', 'sampling temperature (0: greedy)', num, 0.8)
    .option('--top-k <k>', 'top-k (0: off)', int, 40)
    .option('--top-p <p>', 'top-p (1: off)', num, 0.95)
    .option('--min-p <p>', 'min-p (0: off)', num, 0.05)
    .option('--repeat-penalty <r>', 'repetition penalty (1: off)', num, 1.1)
    .option('-s, --seed <n>', 'random seed (default: random)', int)
    .option('-t, --threads <n>', 'compute threads (0: all cores)', int, 0)
    .option('-c, --ctx-size <n>', 'context size', int, 2048)
    .option('--ffn-activation <act>', 'auto, swiglu, relu_glu or drelu (see README)', 'auto')
    .option('--ffn-mode <mode>', 'FFN: auto, dense, exact or predictor (see README "Sparse inference")', 'auto')
    .option('--sparse-threshold <t>', "predictor threshold (default: the file's powerinfer.sparse_threshold)", num)
    .option('--isa <isa>', 'instruction-set cap: scalar, avx2, avx512, best', 'best')
    .option('--device <device>', 'auto|cpu|cuda|emu (README "Hybrid CPU/GPU")', 'auto')
    .option('--vram-budget <size>', 'device memory to use: bytes (8GiB) or a share of free memory (40%)')
    .option('--placement <file>', 'hot neurons: .rspl from `relu-serve place` or PowerInfer .generated.gpuidx')
    .option('--stats <file>', 'activation statistics from `relu-serve profile`: hot neurons solved at load')
    .option('--emu-memory <size>', 'emulated device: its memory (default 8GiB)')
    .option('--emu-latency-us <us>', 'emulated device: delay before each operation', int)
    .option('--no-bos', 'do not prepend BOS')
    .option('--json', 'print one JSON object (tokens, text, timings)')
    .action(async (opts) => {
      const model = opts.model ?? readConfigFile(defaultConfigPath).model;
      if (!model) throw new Error('no model: give --model FILE');
      const o = { ...opts, model, json: Boolean(opts.json) } as GenerateOptions;
      if (o.json) {
        process.stdout.write(JSON.stringify(await generate(o), null, 2) + '\n');
        return;
      }
      process.stdout.write(o.prompt);
      const r = await generate(o, (s) => process.stdout.write(s));
      const t = r.timings;
      process.stdout.write('\n');
      process.stderr.write(
        `\n[${r.promptTokens.length} prompt tokens: ${t.promptTokensPerS.toFixed(1)} tokens/s; ` +
          `${r.tokens.length} generated: ${t.genTokensPerS.toFixed(2)} tokens/s; finish: ${r.finishReason}; seed ${r.seed}; ` +
          `FFN ${r.sparsity.ffnMode}, ${(100 * mean(r.sparsity.avgActiveRatio)).toFixed(1)}% of neurons computed` +
          (r.device.device === 'cpu' ? ']\n' : `; ${r.device.name}: ${(100 * r.device.bytes.ffn / Math.max(1, r.device.ffnAll)).toFixed(1)}% of the FFN on the device, ` +
            `${r.hybrid.neuronsDevice} neuron computations there and ${r.hybrid.neuronsHost} on the CPU]\n`),
      );
    });
}
